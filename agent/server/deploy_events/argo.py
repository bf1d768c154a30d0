"""Argo Rollouts and Argo CD notifications (the bodies of the templates Vigil ships)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import Field

from agent.server.deploy_events.model import (
    DeployEvent,
    Images,
    Incoming,
    Kind,
    OptStep,
    OptStrategy,
    OptText,
    OptTime,
    OptUrl,
    OptVersion,
    Text,
    Version,
    WebhookRejected,
    validated,
)

ROLLOUT_KIND: dict[str, Kind] = {
    "on-rollout-updated": "started",
    "on-rollout-step-completed": "progressing",
    "on-rollout-completed": "succeeded",
    "on-rollout-paused": "paused",
    "on-rollout-aborted": "aborted",
    "on-analysis-run-failed": "failed",
}
ARGOCD_KIND: dict[str, Kind] = {
    "on-sync-running": "started",
    "on-sync-succeeded": "progressing",
    "on-deployed": "succeeded",
    "on-sync-failed": "failed",
    "on-health-degraded": "failed",
}


class _ArgoBody(Incoming):
    trigger: Text
    revision: Version
    service: OptText = None  # optional overrides a user may add to the template
    environment: OptText = None
    version: OptVersion = None
    url: OptUrl = None
    at: OptTime = None
    phase: OptText = None


class _RolloutBody(_ArgoBody):
    rollout: Text
    namespace: OptText = None
    step: OptStep = None
    strategy: OptStrategy = None
    images: Images = Field(default_factory=list)


class _ArgoCDBody(_ArgoBody):
    app: Text
    sync_status: OptText = None
    health: OptText = None
    started_at: OptTime = None


def _trigger(source: str, data: dict[str, Any], known: Mapping[str, Kind]) -> Kind:
    trigger = data.get("trigger")
    if trigger is None:
        raise WebhookRejected(422, "field 'trigger': Field required")
    if not isinstance(trigger, str):
        raise WebhookRejected(422, "field 'trigger': Input should be a valid string")
    if trigger.strip() not in known:
        raise WebhookRejected(
            400,
            f"unknown event type: {source} trigger {trigger.strip()[:60]!r}"
            f" (Vigil maps {', '.join(known)})",
        )
    return known[trigger.strip()]


def _image_version(image: str) -> str:
    """`registry:5000/team/app:v1.4.2@sha256:…` → `v1.4.2`; no tag → the digest or the name."""
    ref, _, digest = image.partition("@")
    _, colon, tag = ref.rpartition(":")
    if colon and "/" not in tag:
        return tag
    return digest or ref


def from_argo_rollouts(data: dict[str, Any], now: datetime) -> DeployEvent:
    kind = _trigger("argo-rollouts", data, ROLLOUT_KIND)
    body = validated(_RolloutBody, data)
    if body.version is None and not body.images:
        raise WebhookRejected(422, "field 'version': required when 'images' is empty")
    where = f"{body.namespace}:" if body.namespace else ""
    deploy_id = f"argo-rollouts:{where}{body.rollout}:{body.revision}"
    at = body.at or now
    step = "-" if body.step is None else str(body.step)
    return DeployEvent(
        source="argo-rollouts",
        kind=kind,
        service=body.service or body.rollout,
        environment=body.environment,
        deploy_id=deploy_id,
        version=body.version or _image_version(body.images[0]),
        started_at=at,  # the rollout object has no start time; the store keeps the first
        at=at,
        strategy=body.strategy,
        url=body.url,
        dedup_key=f"{deploy_id}:{body.trigger}:{step}",
    )


def _looks_like_commit(revision: str) -> bool:
    return 7 <= len(revision) <= 40 and all(c in "0123456789abcdef" for c in revision)


def from_argocd(data: dict[str, Any], now: datetime) -> DeployEvent:
    kind = _trigger("argocd", data, ARGOCD_KIND)
    body = validated(_ArgoCDBody, data)
    deploy_id = f"argocd:{body.app}:{body.revision}"
    commit = body.revision if _looks_like_commit(body.revision) else None
    operation = body.started_at.isoformat() if body.started_at else "-"
    at = body.at or now
    return DeployEvent(
        source="argocd",
        kind=kind,
        service=body.service or body.app,
        environment=body.environment,
        deploy_id=deploy_id,
        version=body.version or (body.revision[:12] if commit else body.revision),
        started_at=body.started_at or at,
        at=at,
        commit=commit,
        url=body.url,
        dedup_key=f"{deploy_id}:{body.trigger}:{operation}",
    )
