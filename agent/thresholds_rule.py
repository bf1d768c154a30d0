"""An alert rule on one signal and how it would have behaved on a history.

A rule is a threshold per band of UTC hours (one band of all 24 hours for a static rule), a
`for:` duration and, for ratios, a minimum of events. It is replayed exactly as Prometheus
evaluates it at every sample: the condition must hold at every sample for `for:` before the
alert fires (a gap in the data starts over), and it fires until the condition stops holding.
A firing episode that overlaps no known incident is a false positive; an incident the rule
fires on within the maximum delay is caught, later is late, never is missed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from agent.bundle.model import SignalKind, SignalSpec, SignalUnit, parse_duration
from agent.errors import VigilError
from agent.thresholds_history import KnownIncident, SignalHistory

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Op = Literal[">", ">=", "<", "<="]

ALL_HOURS = tuple(range(24))
SEED_ERROR_RATIO = 0.10  # the seed thresholds (and the `static` reference judge's)
SEED_LATENCY_S = 5.0
SEED_FOR_S = 300.0


class Band(BaseModel):
    """A threshold for some hours of the day (UTC)."""

    model_config = ConfigDict(frozen=True)

    hours: tuple[int, ...] = Field(min_length=1)
    threshold: float

    @property
    def label(self) -> str:
        return hours_label(self.hours)


class ThresholdRule(BaseModel):
    model_config = ConfigDict(frozen=True)

    signal: str
    op: Op
    bands: tuple[Band, ...] = Field(min_length=1)
    for_s: float = Field(ge=0)
    events_signal: str | None = None
    min_events: float | None = None  # the events signal's own unit (requests/s for a rate)

    @property
    def direction(self) -> Literal["up", "down"]:
        return "down" if self.op.startswith("<") else "up"

    @property
    def time_of_day(self) -> bool:
        return len(self.bands) > 1

    def describe(self) -> str:
        """`error_ratio > 0.05 for 5m`, or one clause per band, and the events guard."""
        if len(self.bands) == 1 and len(self.bands[0].hours) == 24:
            cond = f"{self.signal} {self.op} {fmt_number(self.bands[0].threshold)}"
        else:
            cond = ", ".join(
                f"{self.signal} {self.op} {fmt_number(b.threshold)} ({b.label})" for b in self.bands
            )
        text = f"{cond} for {fmt_duration(self.for_s)}"
        if self.events_signal and self.min_events is not None:
            text += f" when {self.events_signal} >= {fmt_number(self.min_events)}"
        return text


def fmt_number(value: float) -> str:
    if value == 0 or not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def fmt_duration(seconds: float) -> str:
    """Prometheus style: 0s, 90s, 5m, 1h30m."""
    s = round(seconds)
    if s == 0:
        return "0s"
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{sec}s" if sec else "")


def hours_label(hours: Sequence[int]) -> str:
    """(20..23, 0..7) -> '20-08 UTC'; several runs are joined with '+'."""
    return "+".join(f"{a:02d}-{b % 24:02d}" for a, b in hour_runs(hours)) + " UTC"


def hour_runs(hours: Sequence[int]) -> list[tuple[int, int]]:
    """Hours as half-open runs [a, b), a run crossing midnight written as (a, b + 24)."""
    chosen = sorted(set(hours))
    if len(chosen) == 24:
        return [(0, 24)]
    runs: list[list[int]] = []
    for h in chosen:
        if runs and runs[-1][1] == h:
            runs[-1][1] = h + 1
        else:
            runs.append([h, h + 1])
    if len(runs) > 1 and runs[0][0] == 0 and runs[-1][1] == 24:
        last = runs.pop()
        runs[0] = [last[0], runs[0][1] + 24]
    return [(a, b) for a, b in runs]


# --- the current rule ------------------------------------------------------------------------

_CURRENT = re.compile(
    r"^\s*(?P<signal>[A-Za-z_][A-Za-z0-9_:.\-]*)\s*(?P<op>>=|<=|>|<)\s*"
    r"(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?P<pct>%?)"
    r"(?:\s+for\s+(?P<for>\S+))?\s*$"
)


def parse_current(text: str, specs: dict[str, SignalSpec]) -> ThresholdRule:
    """`error_ratio>0.05 for 5m` (or `> 5%`, `latency_p95 > 2 for 10m`) as a static rule."""
    match = _CURRENT.match(text)
    if match is None:
        raise VigilError(
            f"--current {text!r}: expected SIGNAL OP NUMBER [for DURATION], "
            "e.g. 'error_ratio>0.05 for 5m' or 'latency_p95 > 2 for 10m'"
        )
    name = match["signal"]
    if name not in specs:
        known = ", ".join(sorted(specs))
        raise VigilError(f"--current {text!r}: no signal {name!r} in the history ({known})")
    value = float(match["value"])
    if match["pct"]:
        if specs[name].unit == SignalUnit.RATIO:
            value /= 100
        elif specs[name].unit != SignalUnit.PERCENT:
            raise VigilError(f"--current {text!r}: {name} is in {specs[name].unit}, not a ratio")
    try:
        hold = parse_duration(match["for"]) if match["for"] else 0.0
    except ValueError as exc:
        raise VigilError(f"--current {text!r}: {exc}") from None
    op: Op = match["op"]  # type: ignore[assignment]  # the regex admits only the four
    return ThresholdRule(
        signal=name, op=op, bands=(Band(hours=ALL_HOURS, threshold=value),), for_s=hold
    )


def seed_rule(spec: SignalSpec) -> ThresholdRule | None:
    """The seed thresholds: an error ratio over 10 % or a p95 latency over 5 s, for 5 minutes."""
    if spec.kind == SignalKind.ERRORS and spec.unit in (SignalUnit.RATIO, SignalUnit.PERCENT):
        limit = SEED_ERROR_RATIO * (100.0 if spec.unit == SignalUnit.PERCENT else 1.0)
    elif (
        spec.kind == SignalKind.LATENCY
        and spec.unit == SignalUnit.SECONDS
        and ("p95" in spec.name or "p50" not in spec.name)
    ):
        limit = SEED_LATENCY_S
    else:
        return None
    return ThresholdRule(
        signal=spec.name, op=">", bands=(Band(hours=ALL_HOURS, threshold=limit),), for_s=SEED_FOR_S
    )


# --- replaying a rule ------------------------------------------------------------------------


class Outcome(BaseModel):
    """How a rule would have behaved on the history."""

    alerts: int  # firing episodes
    false_positives: int
    incidents: int  # known incidents this signal should catch
    caught: int  # fired within the maximum delay
    late: int  # fired during the incident, after the maximum delay
    missed: int  # never fired during the incident
    median_delay_s: float | None
    max_delay_s: float | None
    delays_s: list[float | None]  # per incident, in the order given; None: never fired
    false_positive_starts: list[float]  # when each false alarm fired (first 50)

    @property
    def not_caught(self) -> int:
        return self.late + self.missed


@dataclass(frozen=True)
class Prepared:
    """One signal's history as arrays the replay needs, computed once."""

    t: FloatArray
    v: FloatArray
    hour: npt.NDArray[np.int64]
    new_run: BoolArray  # a gap before this sample: a `for:` starts over
    events: FloatArray | None  # the events signal at the same moments (NaN: no sample)
    incident_spans: FloatArray  # every known incident, shape (n, 2): not a false positive
    targets: FloatArray  # the incidents this signal should catch, shape (m, 2)
    max_delay_s: float

    @classmethod
    def build(
        cls,
        signal: SignalHistory,
        *,
        step_s: float,
        incidents: Sequence[KnownIncident],
        targets: Sequence[KnownIncident],
        max_delay_s: float,
        events: SignalHistory | None = None,
    ) -> Prepared:
        t, v = signal.t, signal.v
        gaps = np.diff(t) > 2.5 * step_s
        new_run = np.concatenate([[True], gaps]) if len(t) else np.zeros(0, dtype=bool)
        ev = None
        if events is not None:
            ev = np.full(t.shape, np.nan)
            idx = np.searchsorted(events.t, t)
            ok = idx < len(events.t)
            ok[ok] = np.abs(events.t[idx[ok]] - t[ok]) < step_s / 2
            ev[ok] = events.v[idx[ok]]
        return cls(
            t=t,
            v=v,
            hour=((t // 3600) % 24).astype(np.int64),
            new_run=new_run.astype(bool),
            events=ev,
            incident_spans=_spans(incidents),
            targets=_spans(targets),
            max_delay_s=max_delay_s,
        )

    def in_spans(self, spans: FloatArray) -> BoolArray:
        mask = np.zeros(self.t.shape, dtype=bool)
        for a, b in spans:
            mask |= (self.t >= a) & (self.t <= b)
        return mask


def _spans(incidents: Sequence[KnownIncident]) -> FloatArray:
    return np.array([[i.start, i.end] for i in incidents], dtype=np.float64).reshape(-1, 2)


def condition(prep: Prepared, rule: ThresholdRule) -> BoolArray:
    """Where the rule's expression returns a sample (before `for:`)."""
    thr = np.full(24, np.nan)
    for band in rule.bands:
        thr[list(band.hours)] = band.threshold
    limit = thr[prep.hour]
    with np.errstate(invalid="ignore"):
        cond = _compare(prep.v, limit, rule.op)
        if rule.min_events is not None and prep.events is not None:
            cond &= prep.events >= rule.min_events
    return cond


def _compare(v: FloatArray, limit: FloatArray | float, op: Op) -> BoolArray:
    if op == ">":
        out = v > limit
    elif op == ">=":
        out = v >= limit
    elif op == "<":
        out = v < limit
    else:
        out = v <= limit
    return np.asarray(out, dtype=bool)


def episodes(
    prep: Prepared, cond: BoolArray, for_s: float
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(pending since, firing from, firing until) of every firing episode."""
    t = prep.t
    if not len(t):
        empty = np.zeros(0)
        return empty, empty, empty
    prev = np.concatenate([[False], cond[:-1]])
    nxt = np.concatenate([cond[1:], [False]])
    next_new = np.concatenate([prep.new_run[1:], [True]])
    first = np.flatnonzero(cond & (~prev | prep.new_run))
    last = np.flatnonzero(cond & (~nxt | next_new))
    keep = t[last] - t[first] >= for_s - 1e-6
    first, last = first[keep], last[keep]
    fire = t[np.searchsorted(t, t[first] + for_s - 1e-6)]
    return t[first], fire, t[last]


def score(
    prep: Prepared, cond: BoolArray, for_s: float, targets: FloatArray | None = None
) -> Outcome:
    """Replay `cond` with `for:` and count false alarms, caught, late and missed incidents."""
    pending, fire, until = episodes(prep, cond, for_s)
    spans = prep.incident_spans
    if len(spans):
        overlaps = (pending[:, None] <= spans[None, :, 1]) & (until[:, None] >= spans[None, :, 0])
        false = ~overlaps.any(axis=1)
    else:
        false = np.ones(pending.shape, dtype=bool)
    goals = prep.targets if targets is None else targets
    delays: list[float | None] = []
    for a, b in goals:
        during = (fire <= b) & (until >= a)
        delays.append(float(max(fire[during].min() - a, 0.0)) if during.any() else None)
    seen = [d for d in delays if d is not None]
    caught = sum(1 for d in seen if d <= prep.max_delay_s + 1e-6)
    return Outcome(
        alerts=len(pending),
        false_positives=int(false.sum()),
        incidents=len(goals),
        caught=caught,
        late=len(seen) - caught,
        missed=len(delays) - len(seen),
        median_delay_s=float(np.median(seen)) if seen else None,
        max_delay_s=float(max(seen)) if seen else None,
        delays_s=delays,
        false_positive_starts=[float(x) for x in fire[false][:50]],
    )


def replay(prep: Prepared, rule: ThresholdRule) -> Outcome:
    return score(prep, condition(prep, rule), rule.for_s)
