"""Alertmanager webhook payloads (version 4), typed, and the incident they describe."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.errors import InputError
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
        annotations={**first.annotations, **payload.commonAnnotations},
    )


def _line_of(text: str, loc: tuple[int | str, ...]) -> int | None:
    """Best-effort line of a field path in JSON text: the key's occurrence for its list index."""
    line: int | None = None
    offset = 0
    for i, part in enumerate(loc):
        if isinstance(part, int):
            continue
        index = next((p for p in reversed(loc[:i]) if isinstance(p, int)), 0)
        pos = offset
        for _ in range(index + 1):
            found = text.find(f'"{part}"', pos)
            if found == -1:
                return line
            pos = found + 1
        offset = pos - 1
        line = text.count("\n", 0, offset) + 1
    return line


def load_alert_file(path: Path) -> AlertmanagerPayload:
    """An Alertmanager payload from a file; malformed input names the file, line and field."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text: {exc}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON: {exc.msg}", line=exc.lineno) from None
    try:
        return AlertmanagerPayload.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = tuple(err["loc"])
        field = ".".join(str(p) for p in loc) or None
        raise InputError(path, err["msg"], line=_line_of(text, loc), field=field) from None
