"""Window tests at one look: how much worse is the current stretch than its reference?"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from agent.judge.prepared import CountStats, LevelStats, PreparedSignal, Track
from agent.judge.stats import count_excess_pvalue, normal_sf, rate_interval


@dataclass(frozen=True, slots=True)
class WindowTest:
    """One current window compared with one reference, in the bad direction."""

    window: str  # short | mid | long
    lo: int  # slice of the current track
    hi: int
    p_value: float
    current: float  # estimate in the judged space (bad fraction, or the raw value)
    reference: float
    effect: float  # relative change in the bad direction
    past_slo: bool
    excess_events: float  # bad events beyond what the reference rate expects (counts only)
    events: float | None
    interval: tuple[float, float] | None
    samples: int
    halves_p: float = 0.0  # long windows: the larger p of the two halves tested on their own


def _relative(current: float, reference: float, sign: int) -> float:
    if reference == 0:
        return math.inf if sign * current > 0 else 0.0
    return sign * (current - reference) / abs(reference)


def _past(value: float, slo: float | None, sign: int) -> bool:
    if slo is None:
        return False
    return value > slo if sign > 0 else value < slo


def _keep_mask(values: np.ndarray, drop: int, sign: int) -> np.ndarray:
    """Mask dropping the `drop` worst samples (bursts), so one blip cannot carry a window."""
    n = values.shape[0]
    keep = np.ones(n, dtype=bool)
    if drop > 0 and n > drop:
        # Stable order, so ties drop the same samples on every run (determinism).
        worst = np.argsort(values if sign > 0 else -values, kind="stable")[n - drop :]
        keep[worst] = False
    return keep


def _newest_past(values: np.ndarray, slo: float | None, sign: int, partial: bool) -> bool:
    """Are the newest samples (all but the oldest of the window, unless `partial` is off)
    each past the objective?"""
    if slo is None:
        return False
    rest = values[1:] if partial and values.shape[0] > 1 else values
    return bool(np.all(rest > slo)) if sign > 0 else bool(np.all(rest < slo))


def short_test(
    sig: PreparedSignal,
    track: Track,
    hi: int,
    k: int,
    ref: CountStats | LevelStats,
    sign: int,
    *,
    partial: bool = True,
) -> WindowTest | None:
    """Each of the last k samples on its own must be worse: persistence without a lag.

    The oldest sample of a step change is usually only partly affected (the change began
    inside its scrape interval), so it must be significantly worse but need not be past the
    objective on its own: the window is past it when the pooled window and each newer
    sample are (every sample, when `partial` is off). The estimate and effect are the pooled
    window's.
    """
    lo = hi - k
    if lo < 0:
        return None
    x = track.x[lo:hi]
    if isinstance(ref, CountStats):
        assert track.events is not None
        ev = track.events[lo:hi]
        rate = ref.rate
        p = max(
            count_excess_pvalue(
                float(x[i] * ev[i]), float(ev[i]), ref.bad, ref.events, ref.dispersion
            )
            for i in range(k)
        )
        bad, events = float((x * ev).sum()), float(ev.sum())
        pooled = bad / events if events > 0 else float(x.mean())
        return WindowTest(
            "short",
            lo,
            hi,
            p,
            pooled,
            rate,
            _relative(pooled, rate, 1),
            _past(pooled, sig.slo_bad, 1) and _newest_past(x, sig.slo_bad, 1, partial),
            bad - events * rate,
            events,
            rate_interval(bad, events, ref.dispersion),
            k,
        )
    least = float(x.min()) if sign > 0 else float(x.max())
    z = sign * (least - ref.centre) / ref.scale
    pooled = float(x.mean())
    return WindowTest(
        "short",
        lo,
        hi,
        normal_sf(z),
        pooled,
        ref.centre,
        _relative(pooled, ref.centre, sign),
        _past(pooled, sig.slo_bad, sign) and _newest_past(x, sig.slo_bad, sign, partial),
        math.inf,
        None,
        (pooled - 1.96 * ref.scale, pooled + 1.96 * ref.scale),
        k,
    )


def aggregate_test(
    sig: PreparedSignal,
    name: str,
    track: Track,
    lo: int,
    hi: int,
    drop: int,
    ref: CountStats | LevelStats,
    sign: int,
) -> WindowTest | None:
    """A trimmed window (its worst samples dropped) against the reference."""
    x = track.x[lo:hi]
    keep = _keep_mask(x, drop, sign if not sig.counted else 1)
    n = int(keep.sum())
    if n < 2:
        return None
    if isinstance(ref, CountStats):
        assert track.events is not None
        ev = track.events[lo:hi][keep]
        events = float(ev.sum())
        bad = float((x[keep] * ev).sum())
        if events <= 0:
            return None
        cur = bad / events
        disp = ref.window_dispersion if n > 1 else ref.dispersion
        p = count_excess_pvalue(bad, events, ref.bad, ref.events, disp)
        return WindowTest(
            name,
            lo,
            hi,
            p,
            cur,
            ref.rate,
            _relative(cur, ref.rate, 1),
            _past(cur, sig.slo_bad, 1),
            bad - events * ref.rate,
            events,
            rate_interval(bad, events, disp),
            n,
        )
    cur = float(np.add.reduce(x[keep])) / n
    se = ref.scale * math.sqrt(ref.inflation / n + ref.inflation / max(ref.samples, 1))
    z = sign * (cur - ref.centre) / se
    return WindowTest(
        name,
        lo,
        hi,
        normal_sf(z),
        cur,
        ref.centre,
        _relative(cur, ref.centre, sign),
        _past(cur, sig.slo_bad, sign),
        math.inf,
        None,
        (cur - 1.96 * se, cur + 1.96 * se),
        n,
    )


def cohort_pvalue(sig: PreparedSignal, test: WindowTest, sign: int) -> tuple[float, float]:
    """(p, effect): is the canary worse than the baseline cohort over the same stretch of time?"""
    control = sig.control
    if control is None or control.t.shape[0] == 0:
        return 1.0, 0.0
    t0, t1 = sig.current.t[test.lo], sig.current.t[test.hi - 1]
    a = int(control.t.searchsorted(t0 - 1e-6))
    b = int(control.t.searchsorted(t1 + 1e-6))
    if b - a < 1:
        return 1.0, 0.0
    ref = sig.base
    cx = control.x[a:b]
    if sig.counted and isinstance(ref, CountStats):
        assert control.events is not None and sig.current.events is not None
        cev = control.events[a:b]
        ev = sig.current.events[test.lo : test.hi]
        bad = float((sig.current.x[test.lo : test.hi] * ev).sum())
        control_bad, control_events = float((cx * cev).sum()), float(cev.sum())
        p = count_excess_pvalue(
            bad, float(ev.sum()), control_bad, control_events, ref.window_dispersion
        )
        control_rate = (control_bad + 0.5) / (control_events + 1.0)
        return p, _relative(bad / max(float(ev.sum()), 1e-12), control_rate, 1)
    if not isinstance(ref, LevelStats):
        return 1.0, 0.0
    cur = sig.current.x[test.lo : test.hi]
    infl = 1.0 if test.window == "short" else ref.inflation
    se = ref.scale * math.sqrt(infl / cur.shape[0] + infl / cx.shape[0])
    if test.window == "short":
        diff = float((sign * cur).min()) - float((sign * cx).max())
        se = ref.scale * math.sqrt(2.0)
    else:
        diff = sign * (float(cur.mean()) - float(cx.mean()))
    level = abs(float(cx.mean())) or 1.0
    return normal_sf(diff / se), diff / level


def recent_pvalue(sig: PreparedSignal, test: WindowTest, sign: int) -> tuple[float, float]:
    """(p, effect) of the current window against the minutes right before the deploy."""
    ref = sig.recent
    if ref is None:
        return 0.0, math.inf
    if isinstance(ref, CountStats):
        events = test.events or 0.0
        bad = test.current * events
        return (
            count_excess_pvalue(bad, events, ref.bad, ref.events, ref.window_dispersion),
            _relative(test.current, ref.rate, 1),
        )
    se = ref.scale * math.sqrt(ref.inflation / test.samples + ref.inflation / ref.samples)
    return (
        normal_sf(sign * (test.current - ref.centre) / se),
        _relative(test.current, ref.centre, sign),
    )


def control_vs_history(sig: PreparedSignal, test: WindowTest, sign: int) -> tuple[float, float]:
    """(p, effect): is the baseline cohort itself worse than the pre-deploy history over the
    test's stretch of time? Then something beside the deploy is hurting every pod."""
    control, ref = sig.control, sig.base
    if control is None or ref is None or control.t.shape[0] == 0:
        return 1.0, 0.0
    t0, t1 = sig.current.t[test.lo], sig.current.t[test.hi - 1]
    a = int(control.t.searchsorted(t0 - 1e-6))
    b = int(control.t.searchsorted(t1 + 1e-6))
    if b - a < 1:
        return 1.0, 0.0
    x = control.x[a:b]
    if isinstance(ref, CountStats):
        assert control.events is not None
        ev = control.events[a:b]
        bad, events = float((x * ev).sum()), float(ev.sum())
        if events <= 0:
            return 1.0, 0.0
        disp = ref.window_dispersion if b - a > 1 else ref.dispersion
        p = count_excess_pvalue(bad, events, ref.bad, ref.events, disp)
        return p, _relative(bad / events, ref.rate, 1)
    n = b - a
    cur = float(np.add.reduce(x)) / n
    se = ref.scale * math.sqrt(ref.inflation / n + ref.inflation / max(ref.samples, 1))
    return normal_sf(sign * (cur - ref.centre) / se), _relative(cur, ref.centre, sign)
