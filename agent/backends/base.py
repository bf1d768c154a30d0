"""Interfaces behind the tools. A real deployment plugs Prometheus, Loki, git and Argo in
here; a bundle plugs in for replay and tests. Every call takes explicit times: nothing reads
a clock on its own, so an investigation can be replayed at any moment without look-ahead."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from agent.bundle.model import LogLine
from agent.errors import VigilError


class SourceUnavailable(VigilError):
    """A backend could not answer (not configured, unreachable, or no such data)."""


class MetricPoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    t: float
    v: float | None  # None: no sample (a scrape gap), never a zero


class MetricSeries(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    points: list[MetricPoint]


class DeployInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    service: str
    environment: str | None = None
    version: str
    previous_version: str | None = None
    started_at: datetime
    finished_at: datetime | None = None
    strategy: str | None = None


class ActionOutcome(BaseModel):
    """What an actuator did. `changed` is False for a no-op (already done, or dry run)."""

    model_config = ConfigDict(frozen=True)

    action: str
    service: str
    deploy_id: str | None
    changed: bool
    detail: str


class MetricsSource(Protocol):
    def query_range(self, query: str, start: float, end: float, step: float) -> list[MetricSeries]:
        """Samples of `query` from start to end (inclusive) on a step grid."""
        ...

    def signal_names(self) -> list[str]:
        """Named signals this source knows (queries may also be raw PromQL)."""
        ...


class LogSource(Protocol):
    def read(
        self,
        service: str,
        start: float,
        end: float,
        *,
        contains: str | None = None,
        levels: tuple[str, ...] | None = None,
        limit: int = 1000,
    ) -> list[LogLine]:
        """Log lines of `service` in [start, end], oldest first."""
        ...


class ChangeSource(Protocol):
    def diff(self, deploy: DeployInfo) -> str:
        """The unified diff between the deploy's previous version and its version."""
        ...


class DeploySource(Protocol):
    def deploys(self, service: str, since: float, until: float) -> list[DeployInfo]:
        """Deploys of `service` that started in [since, until], newest first."""
        ...


class Actuator(Protocol):
    def pause(self, deploy: DeployInfo, *, dry_run: bool) -> ActionOutcome: ...

    def rollback(self, deploy: DeployInfo, *, dry_run: bool) -> ActionOutcome: ...


class Escalator(Protocol):
    def escalate(self, service: str, summary: str, severity: str) -> ActionOutcome: ...

    def notify(self, service: str, message: str) -> ActionOutcome: ...
