"""GitHub's `deployment_status` (and `deployment`) webhooks."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BeforeValidator, Field

from agent.server.deploy_events.model import (
    DeployEvent,
    Ignored,
    Incoming,
    Kind,
    OptStrategy,
    OptText,
    OptUrl,
    OptVersion,
    ParsedWebhook,
    Ping,
    Text,
    WebhookRejected,
    lowercase,
    validated,
)


class _DeployHints(Incoming):
    """`deployment.payload`: free-form, but these keys, when present, must be sensible."""

    service: OptText = None
    version: OptVersion = None
    previous_version: OptVersion = None
    strategy: OptStrategy = None


def _payload_object(value: object) -> object:
    # The REST API takes `payload` as an object or a JSON string; anything else is not ours.
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return None
    return value if isinstance(value, dict) else None


class _GitHubRepository(Incoming):
    name: Text
    full_name: OptText = None


class _GitHubDeployment(Incoming):
    id: int = Field(ge=1)
    sha: Text
    ref: OptText = None
    environment: Text
    payload: Annotated[_DeployHints | None, BeforeValidator(_payload_object)] = None
    created_at: AwareDatetime


GitHubState = Literal[
    "queued", "pending", "in_progress", "success", "failure", "error", "inactive", "waiting"
]
_GITHUB_KIND: dict[str, Kind] = {
    "queued": "started",
    "pending": "started",
    "in_progress": "progressing",
    "success": "succeeded",
    "failure": "failed",
    "error": "failed",
}
_GITHUB_IGNORED = {
    "inactive": "deployment_status 'inactive': a newer deployment superseded this one",
    "waiting": "deployment_status 'waiting': the deployment awaits approval and has not started",
}


class _GitHubStatus(Incoming):
    id: int = Field(ge=1)
    state: Annotated[GitHubState, BeforeValidator(lowercase)]
    environment: OptText = None
    created_at: AwareDatetime
    log_url: OptUrl = None
    target_url: OptUrl = None


class _GitHubDeploymentStatusEvent(Incoming):
    deployment_status: _GitHubStatus
    deployment: _GitHubDeployment
    repository: _GitHubRepository


class _GitHubDeploymentEvent(Incoming):
    action: OptText = None
    deployment: _GitHubDeployment
    repository: _GitHubRepository


def _github_event(
    deployment: _GitHubDeployment,
    repository: _GitHubRepository,
    *,
    kind: Kind,
    at: datetime,
    environment: str,
    url: str | None,
    dedup: str,
) -> DeployEvent:
    hints = deployment.payload or _DeployHints()
    return DeployEvent(
        source="github",
        kind=kind,
        service=hints.service or repository.name,
        environment=environment,
        deploy_id=f"github:{deployment.id}",
        version=hints.version or deployment.sha[:12],
        previous_version=hints.previous_version,
        started_at=deployment.created_at,
        at=at,
        strategy=hints.strategy,
        commit=deployment.sha,
        url=url,
        dedup_key=dedup,
    )


def from_github(event: str, data: dict[str, Any]) -> ParsedWebhook:
    if event == "ping":
        hook_id = data.get("hook_id")
        return Ping(hook_id=hook_id if type(hook_id) is int else None)
    if event == "deployment_status":
        body = validated(_GitHubDeploymentStatusEvent, data)
        status, deployment = body.deployment_status, body.deployment
        if status.state in _GITHUB_IGNORED:
            return Ignored(source="github", reason=_GITHUB_IGNORED[status.state])
        return _github_event(
            deployment,
            body.repository,
            kind=_GITHUB_KIND[status.state],
            at=status.created_at,
            environment=status.environment or deployment.environment,
            url=status.log_url or status.target_url,
            dedup=f"github:{deployment.id}:status:{status.id}:{status.state}",
        )
    if event == "deployment":
        created = validated(_GitHubDeploymentEvent, data)
        if created.action not in (None, "created"):
            return Ignored(source="github", reason=f"deployment action {created.action!r}")
        deployment = created.deployment
        return _github_event(
            deployment,
            created.repository,
            kind="started",
            at=deployment.created_at,
            environment=deployment.environment,
            url=None,
            dedup=f"github:{deployment.id}:created",
        )
    raise WebhookRejected(
        400,
        f"unknown event type: GitHub event {event[:60]!r}"
        " (Vigil reads deployment, deployment_status and ping)",
    )
