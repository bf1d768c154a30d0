"""The judge's answer: a tier, and for every signal the numbers behind it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

TIER_NAMES = {0: "healthy", 1: "warn", 2: "pause", 3: "roll back"}

FindingStatus = Literal[
    "ok", "warn", "regressed", "breach", "trend", "not_deploy_caused", "insufficient", "no_data"
]
Comparison = Literal["history", "cohort", "recent", "trend", "none"]
VerdictStatus = Literal["judged", "insufficient_evidence", "not_started"]


@dataclass(frozen=True, slots=True)
class SignalFinding:
    """What the judge saw in one signal at one moment."""

    signal: str
    kind: str
    critical: bool
    status: FindingStatus
    tier: int
    reason: str
    window: str = "none"  # short | mid | long | trend | none
    comparison: Comparison = "none"
    baseline: float | None = None  # baseline estimate (ratio, seconds, … in the signal's unit)
    current: float | None = None  # current estimate, same unit
    baseline_samples: int = 0
    current_samples: int = 0
    baseline_events: float | None = None  # events behind the baseline estimate (ratio signals)
    current_events: float | None = None
    effect: float | None = None  # relative change in the bad direction (0.5 = 50 % worse)
    interval: tuple[float, float] | None = None  # ~95 % interval of the current estimate
    p_value: float | None = None
    threshold: float | None = None  # the p-value this signal had to beat (Holm)
    slo: float | None = None
    past_slo: bool = False
    deploy_caused: bool | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """A tier for the deploy at one moment, with its evidence."""

    service: str
    deploy_id: str
    at: float
    tier: int
    status: VerdictStatus
    deploy_caused: bool | None
    reasons: tuple[str, ...]
    findings: tuple[SignalFinding, ...] = field(default_factory=tuple)

    @property
    def tier_name(self) -> str:
        return TIER_NAMES[self.tier]

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "deploy_id": self.deploy_id,
            "at": datetime.fromtimestamp(self.at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tier": self.tier,
            "tier_name": self.tier_name,
            "status": self.status,
            "deploy_caused": self.deploy_caused,
            "reasons": list(self.reasons),
            "findings": [
                {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(f).items()}
                for f in self.findings
            ],
        }
