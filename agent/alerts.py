"""Alertmanager webhook payloads (version 4), typed, and the incident they describe."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agent.incident import Incident

# Field names are Alertmanager's own (camelCase), so payloads validate as they are sent.


class Alert(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: str | None = None
    fingerprint: str | None = None


class AlertmanagerPayload(BaseModel):
    """What Alertmanager POSTs to a webhook receiver."""

    model_config = ConfigDict(extra="allow", frozen=True)

    version: Literal["4"]
    groupKey: str
    status: Literal["firing", "resolved"]
    receiver: str
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str | None = None
    truncatedAlerts: int = 0
    alerts: list[Alert] = Field(min_length=1)


SERVICE_LABELS = ("service", "app", "app_kubernetes_io_name", "job")
ENV_LABELS = ("env", "environment", "namespace_env")


def _first(labels: dict[str, str], keys: tuple[str, ...]) -> str | None:
    return next((labels[k] for k in keys if labels.get(k)), None)


def incident_from_alert(payload: AlertmanagerPayload) -> Incident:
    """The incident an alert group describes: service, environment, severity, start."""
    firing = [a for a in payload.alerts if a.status == "firing"] or payload.alerts
    common = payload.commonLabels
    first = firing[0]
    service = _first(common, SERVICE_LABELS) or _first(first.labels, SERVICE_LABELS)
    if service is None:
        service = "unknown"
    services = sorted({s for a in firing if (s := _first(a.labels, SERVICE_LABELS))})
    started = min(a.startsAt.timestamp() for a in firing)
    key = f"{payload.groupKey}|{started:.0f}".encode()
    summary = payload.commonAnnotations.get("summary") or first.annotations.get("summary", "")
    return Incident(
        id="inc-" + hashlib.sha256(key).hexdigest()[:12],
        service=service,
        environment=_first(common, ENV_LABELS) or _first(first.labels, ENV_LABELS),
        severity=common.get("severity") or first.labels.get("severity"),
        alertname=common.get("alertname") or first.labels.get("alertname"),
        summary=summary,
        started_at=started,
        services_affected=tuple(services),
    )
