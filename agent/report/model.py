"""The report's facts as typed records (what `report.json` holds)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

Decision = Literal["keep", "pause", "roll back"]

TOP_PATTERNS = 5
_DECISIONS: dict[int, Decision] = {0: "keep", 1: "keep", 2: "pause", 3: "roll back"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VerdictSummary(_Model):
    at: datetime
    tier: int
    tier_name: str
    status: str
    deploy_caused: bool | None
    reasons: tuple[str, ...]


class SignalRow(_Model):
    """One signal before and after the deploy, from the verdict's finding, in the signal's unit
    (a success ratio judged on its failures is shown as the success ratio)."""

    baseline: float | None
    current: float | None
    change: float | None  # (current - baseline) / |baseline|
    effect: float | None  # the judge's effect: relative change in the bad direction
    baseline_samples: int
    current_samples: int
    baseline_events: float | None
    current_events: float | None
    p_value: float | None
    threshold: float | None
    slo: float | None
    past_slo: bool
    tier: int
    status: str
    window: str
    comparison: str
    deploy_caused: bool | None
    reason: str


class Transition(_Model):
    at: datetime
    tier: int
    status: str


class SignalHistory(_Model):
    """The signal at every look from the deploy start to the report's moment."""

    onset: datetime | None  # the first look at tier >= 1
    first_at: dict[int, datetime | None]  # tier 1..3 -> first look at that tier or above
    peak_tier: int
    episodes: int  # stretches of looks at tier >= 1
    resolved_at: datetime | None  # back at tier 0 from this look to the end
    end_tier: int
    end_status: str
    transitions: tuple[Transition, ...]  # every change of tier or status


class SignalReport(_Model):
    name: str
    kind: str
    unit: str
    critical: bool
    row: SignalRow
    history: SignalHistory
    story: str  # what happened to the signal, in a sentence or two
    chart: str | None = None  # path of its chart, relative to the report


class LogPattern(_Model):
    status: str
    template: str
    example: str
    before: int
    after: int
    growth: float | None
    first_seen_after: datetime | None


class LogEvidence(_Model):
    before_from: datetime
    split: datetime
    after_to: datetime
    lines_before: int
    lines_after: int
    new: int
    grew: int
    patterns: tuple[LogPattern, ...]  # the most suspicious new or grown ones


class GroundTruth(_Model):
    """The bundle's `expect` (simulated or labelled deploys only); the judge never reads it."""

    tier: int
    onset: datetime | None
    deploy_caused: bool | None


class Conclusion(_Model):
    decision: Decision
    why: str
    decided_at: datetime | None  # the look at which the judge first reached the deciding tier


class HealthReport(_Model):
    bundle: str
    source: str
    service: str
    environment: str | None
    deploy_id: str
    version: str
    previous_version: str
    strategy: str
    commit: str | None
    started_at: datetime
    finished_at: datetime | None
    baseline_from: datetime
    at: datetime
    step_s: float
    looks: int
    verdict: VerdictSummary
    first_at: dict[int, datetime | None]  # the deploy: tier 1..3 -> first look at it or above
    peak_tier: int
    signals: tuple[SignalReport, ...]
    logs: LogEvidence | None
    logs_note: str | None  # why there is no log evidence
    missing: dict[str, str]  # sources that could not be read, and why
    expected: GroundTruth | None
    conclusion: Conclusion


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    json: Path
    html: Path
    charts: dict[str, Path]

    @property
    def paths(self) -> list[Path]:
        return [self.markdown, self.json, self.html, *self.charts.values()]
