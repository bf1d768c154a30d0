"""The search for a quieter rule: thresholds, `for:` durations and event minimums.

Candidates come from the history itself: the high quantiles of the signal outside incidents,
the low quantiles inside them, and the points between. Every candidate is replayed, and the
best is the one that (1) leaves the fewest known incidents uncaught within the maximum delay,
(2) raises the fewest false alarms, (3) fires soonest (median, then worst delay, to the minute).
Among rules that do equally well, the threshold in the (geometric) middle of the equally good
ones is kept, so it sits as far from the noise as from the incidents. `for:` is at least a
minute: one sample never pages.

With seasonal traffic each band of hours gets its own threshold, searched band by band (the
incidents that start in that band), and the combined rule is replayed as a whole.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from agent.errors import VigilError
from agent.thresholds_history import KnownIncident, SignalHistory
from agent.thresholds_rule import (
    ALL_HOURS,
    Band,
    BoolArray,
    FloatArray,
    Op,
    Outcome,
    Prepared,
    ThresholdRule,
    condition,
    replay,
    score,
)

FOR_CANDIDATES_S = (60.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1200.0, 1800.0)
NORMAL_LEVELS = (0.5, 0.75, 0.9, 0.95, 0.975, 0.99, 0.995, 0.998, 0.999, 1.0)
INCIDENT_LEVELS = (0.05, 0.1, 0.25, 0.5)
GUARD_LEVELS = (0.01, 0.05, 0.1, 0.2)
PEAK_SHARE = 0.5  # an hour is peak when its median traffic is at least half the busiest hour's
SEASONAL_RATIO = 2.0  # busiest hour / quietest hour for traffic to count as seasonal
MIN_SAMPLES_PER_HOUR = 3

Key = tuple[int, int, int, int]


def rank(outcome: Outcome) -> Key:
    """Smaller is better: uncaught incidents, false alarms, median and worst delay (minutes)."""
    return (
        outcome.not_caught,
        outcome.false_positives,
        _minutes(outcome.median_delay_s),
        _minutes(outcome.max_delay_s),
    )


def _hour(moment: float) -> int:
    return int(moment // 3600) % 24


def _minutes(seconds: float | None) -> int:
    return 0 if seconds is None else math.ceil(seconds / 60 - 1e-9)


def nice(value: float) -> float:
    """Two significant digits: thresholds people can read and remember."""
    if value == 0 or not math.isfinite(value):
        return value
    digits = 1 - math.floor(math.log10(abs(value)))
    return round(value, digits)


@dataclass(frozen=True)
class DailyBands:
    peak: tuple[int, ...]
    off_peak: tuple[int, ...]
    busiest: float  # median traffic of the busiest hour
    quietest: float  # ... and of the quietest


def daily_bands(traffic: SignalHistory, exclude: Sequence[KnownIncident]) -> DailyBands | None:
    """Peak and off-peak UTC hours when traffic has a daily pattern; None when it has none
    (or when the history does not cover every hour of the day)."""
    t, v = traffic.t, traffic.v
    keep = np.isfinite(v)
    for inc in exclude:
        keep &= (t < inc.start) | (t > inc.end)
    hour = ((t // 3600) % 24).astype(int)
    medians = []
    for h in ALL_HOURS:
        values = v[keep & (hour == h)]
        if len(values) < MIN_SAMPLES_PER_HOUR:
            return None
        medians.append(float(np.median(values)))
    busiest, quietest = max(medians), min(medians)
    if busiest <= 0 or busiest < SEASONAL_RATIO * max(quietest, 0.0):
        return None
    peak = tuple(h for h in ALL_HOURS if medians[h] >= PEAK_SHARE * busiest)
    off = tuple(h for h in ALL_HOURS if medians[h] < PEAK_SHARE * busiest)
    if not peak or not off:
        return None
    return DailyBands(peak=peak, off_peak=off, busiest=busiest, quietest=quietest)


def _thresholds(prep: Prepared, band: BoolArray, normal: BoolArray, op: Op) -> list[float]:
    """Candidate thresholds for one band, ascending."""
    finite = np.isfinite(prep.v)
    calm = prep.v[band & normal & finite]
    hurt = prep.v[band & ~normal & finite]
    down = op.startswith("<")
    values: list[float] = []
    if len(calm):
        levels = [1 - q for q in NORMAL_LEVELS] if down else list(NORMAL_LEVELS)
        values += [float(x) for x in np.quantile(calm, levels)]
    if len(hurt):
        levels = [1 - q for q in INCIDENT_LEVELS] if not down else list(INCIDENT_LEVELS)
        values += [float(x) for x in np.quantile(hurt, levels)]
    ordered = sorted(set(values))
    between = [(a + b) / 2 for a, b in itertools.pairwise(ordered)]
    return sorted({nice(x) for x in ordered + between})


def guard_candidates(events: FloatArray | None, normal: BoolArray) -> list[float | None]:
    """Minimum event levels to try; the smallest first (kept when it costs nothing), then
    none, then stricter ones."""
    if events is None:
        return [None]
    values = events[normal & np.isfinite(events)]
    values = values[values > 0]
    if not len(values):
        return [None]
    levels = sorted({nice(float(x)) for x in np.quantile(values, GUARD_LEVELS) if x > 0})
    if not levels:
        return [None]
    return [levels[0], None, *levels[1:]]


@dataclass(frozen=True)
class Found:
    rule: ThresholdRule
    outcome: Outcome


def search(
    prep: Prepared,
    *,
    signal: str,
    op: Op,
    bands: Sequence[tuple[int, ...]],
    events_signal: str | None,
    target_starts: Sequence[float],
) -> Found:
    """The best rule with one threshold per band (a single band of all hours: a static rule)."""
    normal = ~prep.in_spans(prep.incident_spans)
    targets = prep.targets
    guards = guard_candidates(prep.events, normal) if events_signal else [None]
    fors = [f for f in FOR_CANDIDATES_S if f <= prep.max_delay_s]
    band_masks = [np.isin(prep.hour, list(hours)) for hours in bands]
    band_targets = [
        targets[[_hour(start) in hours for start in target_starts]] if len(targets) else targets
        for hours in bands
    ]
    thresholds = [_thresholds(prep, mask, normal, op) for mask in band_masks]
    best: Found | None = None
    best_key: Key | None = None
    for for_s in fors:
        for guard in guards:
            chosen = []
            for hours, cands, goals in zip(bands, thresholds, band_targets, strict=True):
                chosen.append(_best_threshold(prep, signal, op, hours, cands, goals, for_s, guard))
            if any(c is None for c in chosen):
                continue
            rule = ThresholdRule(
                signal=signal,
                op=op,
                bands=tuple(
                    Band(hours=h, threshold=c)
                    for h, c in zip(bands, chosen, strict=True)
                    if c is not None
                ),
                for_s=for_s,
                events_signal=events_signal if guard is not None else None,
                min_events=guard,
            )
            outcome = replay(prep, rule)
            key = rank(outcome)
            if best_key is None or key < best_key:
                best, best_key = Found(rule, outcome), key
    if best is None:  # no candidate at all: the history has no finite value in some band
        raise VigilError(f"{signal}: not enough samples to search thresholds on")
    return best


def _best_threshold(
    prep: Prepared,
    signal: str,
    op: Op,
    hours: tuple[int, ...],
    candidates: list[float],
    goals: FloatArray,
    for_s: float,
    guard: float | None,
) -> float | None:
    """For one band (the other hours silent): the middle of the thresholds that catch the
    most incidents in time with the fewest false alarms."""
    if not candidates:
        return None
    keys: list[tuple[int, int]] = []
    for value in candidates:
        rule = ThresholdRule(
            signal=signal,
            op=op,
            bands=(Band(hours=hours, threshold=value),),
            for_s=for_s,
            min_events=guard,
        )
        outcome = score(prep, condition(prep, rule), for_s, goals)
        keys.append((outcome.not_caught, outcome.false_positives))
    top = min(keys)
    return middle([c for c, k in zip(candidates, keys, strict=True) if k == top])


def middle(values: Sequence[float]) -> float:
    """The value nearest the geometric middle of the positive values (the arithmetic middle
    when none is positive): as far, in ratio, from the noise below as from the incidents
    above."""
    lo, hi = min(values), max(values)
    if hi > 0:
        lo = min(v for v in values if v > 0)  # a ratio that is often exactly 0
        centre = math.sqrt(lo * hi)
    else:
        centre = (lo + hi) / 2
    return min(values, key=lambda v: (abs(v - centre), v))
