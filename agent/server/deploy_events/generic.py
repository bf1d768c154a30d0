"""The generic JSON deploy event any CI can send."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Annotated, Any

from pydantic import BeforeValidator

from agent.server.deploy_events.model import (
    DeployEvent,
    Incoming,
    Kind,
    OptStrategy,
    OptText,
    OptTime,
    OptUrl,
    OptVersion,
    Text,
    Version,
    WebhookRejected,
    lowercase,
    validated,
)


class _Generic(Incoming):
    id: OptText = None
    service: Text
    environment: OptText = None
    deploy_id: OptText = None
    version: Version
    previous_version: OptVersion = None
    kind: Annotated[Kind | None, BeforeValidator(lowercase)] = None
    status: Annotated[Kind | None, BeforeValidator(lowercase)] = None
    started_at: OptTime = None
    at: OptTime = None
    strategy: OptStrategy = None
    commit: OptText = None
    url: OptUrl = None


def from_generic(data: dict[str, Any], now: datetime) -> DeployEvent:
    body = validated(_Generic, data)
    if body.kind is None and body.status is None:
        raise WebhookRejected(422, "field 'kind': required (or 'status'), e.g. \"started\"")
    if body.kind is not None and body.status is not None and body.kind != body.status:
        raise WebhookRejected(422, f"field 'status': {body.status!r} disagrees with 'kind'")
    at = body.at or now
    env = f":{body.environment}" if body.environment else ""
    if body.id is not None:
        dedup = f"generic:id:{body.id}"
    else:
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        dedup = f"generic:body:{hashlib.sha256(canonical.encode()).hexdigest()[:32]}"
    return DeployEvent(
        source="generic",
        kind=body.kind or body.status or "started",
        service=body.service,
        environment=body.environment,
        deploy_id=body.deploy_id or f"generic:{body.service}{env}:{body.version}",
        version=body.version,
        previous_version=body.previous_version,
        started_at=body.started_at or at,
        at=at,
        strategy=body.strategy,
        commit=body.commit,
        url=body.url,
        dedup_key=dedup,
    )
