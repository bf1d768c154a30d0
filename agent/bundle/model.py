"""Typed model of `bundle.yaml` and of the optional bundle files (format version 1)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agent.bundle.series import SignalData

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$")


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus-style duration such as `15s`, `1m`, `1m30s` or `500ms`."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise ValueError(f"not a duration: {text!r} (expected e.g. 15s, 1m, 1m30s)")
    h, m, s, ms = (int(g) if g else 0 for g in match.groups())
    seconds = h * 3600 + m * 60 + s + ms / 1000
    if seconds <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    return float(seconds)


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, seconds precision unless fractions are present."""
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0") + "Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class SignalKind(StrEnum):
    ERRORS = "errors"
    LATENCY = "latency"
    TRAFFIC = "traffic"
    SATURATION = "saturation"
    BUSINESS = "business"
    DEPENDENCY = "dependency"


class SignalUnit(StrEnum):
    RATIO = "ratio"
    SECONDS = "seconds"
    PERCENT = "percent"
    BYTES = "bytes"
    COUNT = "count"
    PER_SECOND = "per_second"


class Strategy(StrEnum):
    ROLLING = "rolling"
    CANARY = "canary"
    BLUE_GREEN = "blue-green"


Cohort = Literal["", "baseline", "canary"]
BadDirection = Literal["up", "down", "both"]


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("time must carry a timezone (RFC 3339, e.g. 2026-02-08T13:45:00Z)")
    return value.astimezone(UTC)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeployInfo(_Strict):
    id: str = Field(min_length=1)
    version: str = Field(min_length=1)
    previous_version: str = Field(min_length=1)
    started_at: datetime
    finished_at: datetime | None = None
    strategy: Strategy
    commit: str | None = None

    _utc = field_validator("started_at", "finished_at")(lambda v: None if v is None else _aware(v))


class SignalSpec(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_:.\-]*$")
    kind: SignalKind
    unit: SignalUnit
    bad_direction: BadDirection
    slo: float | None = None
    critical: bool = False
    events: str | None = None
    query: str | None = None

    @property
    def is_ratio(self) -> bool:
        return self.unit in (SignalUnit.RATIO, SignalUnit.PERCENT)


class Expectation(_Strict):
    tier: int = Field(ge=0, le=3)
    onset: datetime | None = None
    deploy_caused: bool | None = None
    culprit_file: str | None = None
    log_signature: str | None = None

    _utc = field_validator("onset")(lambda v: None if v is None else _aware(v))


class BundleManifest(_Strict):
    """The contents of `bundle.yaml`."""

    format: Literal[1]
    name: str = Field(min_length=1)
    description: str | None = None
    service: str = Field(min_length=1)
    environment: str | None = None
    deploy: DeployInfo
    step: str
    watch_until: datetime
    signals: list[SignalSpec] = Field(min_length=1)
    expect: Expectation | None = None

    @field_validator("step")
    @classmethod
    def _step_is_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    _utc = field_validator("watch_until")(_aware)

    @model_validator(mode="after")
    def _consistent(self) -> BundleManifest:
        names = [s.name for s in self.signals]
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name in seen:
                raise ValueError(f"signals[{i}].name: duplicate signal name {name!r}")
            seen.add(name)
        for i, spec in enumerate(self.signals):
            if spec.events is not None and spec.events not in seen:
                raise ValueError(f"signals[{i}].events: {spec.events!r} is not a declared signal")
            if spec.events == spec.name:
                raise ValueError(f"signals[{i}].events: a signal cannot count its own events")
        if self.watch_until <= self.deploy.started_at:
            raise ValueError("watch_until: must be after deploy.started_at")
        return self

    @property
    def step_seconds(self) -> float:
        return parse_duration(self.step)

    def signal(self, name: str) -> SignalSpec:
        for spec in self.signals:
            if spec.name == name:
                return spec
        raise KeyError(name)


class LogLine(BaseModel):
    """One line of `logs.jsonl`; keys beyond the required three are kept."""

    model_config = ConfigDict(extra="allow", frozen=True)

    ts: datetime
    level: str
    message: str
    service: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    _utc = field_validator("ts")(_aware)


@dataclass(frozen=True)
class Bundle:
    """A whole deploy bundle: the manifest, its series and whatever optional files it has."""

    manifest: BundleManifest
    signals: SignalData
    path: Path | None = None
    logs: tuple[LogLine, ...] | None = None
    diff: str | None = None
    alert: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.manifest.name
