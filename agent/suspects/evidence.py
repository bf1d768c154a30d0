"""What the incident showed: the regressed signals and the text (logs, traces) the ranking
reads, and the ranked suspects it returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

from agent.bundle.model import SignalKind


class RegressedSignal(BaseModel):
    """A signal the judge found regressed, e.g. `latency_p95` of kind `latency`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: SignalKind


class Evidence(BaseModel):
    """What the incident shows: new or grown error text, regressed signals, free terms."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    messages: tuple[str, ...] = ()  # log messages of new or grown error patterns
    stack_traces: tuple[str, ...] = ()
    signals: tuple[RegressedSignal, ...] = ()
    terms: tuple[str, ...] = ()  # e.g. words of the alert's summary and description


@dataclass(frozen=True)
class Suspect:
    path: str
    score: float  # 0-1; scores of different files need not sum to 1
    reasons: tuple[str, ...] = field(default_factory=tuple)
