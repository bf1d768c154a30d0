"""Everything about a deploy the judge can compute once: baselines, aligned counts, cohorts.

Only samples before the deploy start go into baselines, so preparing at any look time
never reads the future; post-deploy arrays are cut at each look by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agent.bundle.model import Bundle, SignalKind, SignalSpec, SignalUnit
from agent.bundle.series import FloatArray, Series
from agent.judge.settings import JudgeSettings
from agent.judge.stats import (
    block_dispersion,
    count_excess_pvalue,
    lag1_autocorrelation,
    median,
    normal_sf,
    robust_dispersion,
    robust_location_scale,
    theil_sen,
    variance_inflation,
)

# Samples per block when a window's dispersion is measured directly on the baseline.
_DISPERSION_BLOCK = 8
# Samples right before the deploy that say how bad a pre-existing degradation had become.
_LATEST_SAMPLES = 4


@dataclass(frozen=True, slots=True)
class CountStats:
    """Bad events over all events in a stretch of samples."""

    bad: float
    events: float
    samples: int
    dispersion: float = 1.0  # per-sample overdispersion
    window_dispersion: float = 1.0  # for sums over several autocorrelated samples

    @property
    def rate(self) -> float:
        # A half-event prior keeps a zero-error baseline from claiming a zero rate.
        return (self.bad + 0.5) / (self.events + 1.0)


@dataclass(frozen=True, slots=True)
class LevelStats:
    """Robust level of a continuous signal over a stretch of samples."""

    centre: float
    scale: float
    samples: int
    inflation: float = 1.0  # variance inflation of a window mean (autocorrelation)


@dataclass(frozen=True, slots=True)
class Track:
    """Post-deploy samples of one cohort: times, values (bad fraction for counts), events."""

    t: FloatArray
    x: FloatArray
    events: FloatArray | None  # per-sample event counts (counted signals only)


@dataclass(frozen=True, slots=True)
class PreparedSignal:
    spec: SignalSpec
    counted: bool  # judged on event counts (ratio with `events`)
    sign: int  # +1 when higher is worse, -1 when lower is worse, 0 for both
    slo_bad: float | None  # objective in the judged space (bad fraction for counts)
    base: CountStats | LevelStats | None
    recent: CountStats | LevelStats | None  # last minutes before the deploy
    pre_existing: bool  # the recent minutes were already significantly worse
    base_slope: float  # Theil-Sen slope of the baseline (per second)
    current: Track  # whole service, or the canary cohort
    control: Track | None  # the baseline cohort beside a canary

    @property
    def extensive(self) -> bool:
        """Totals (req/s, counts) scale with a cohort's share of traffic; ratios do not."""
        return self.spec.unit in (SignalUnit.PER_SECOND, SignalUnit.COUNT)


@dataclass(frozen=True, slots=True)
class PreparedDeploy:
    service: str
    deploy_id: str
    start: float
    step: float
    warm_end: float  # end of the rollout warm-up
    rollout_end: float
    cohorts: bool
    signals: tuple[PreparedSignal, ...]

    @property
    def traffic(self) -> PreparedSignal | None:
        """The service's request rate, if the bundle has one."""
        for sig in self.signals:
            if sig.spec.kind == SignalKind.TRAFFIC and sig.extensive and not sig.counted:
                return sig
        return None


def _ratio_scale(spec: SignalSpec) -> float:
    return 0.01 if spec.unit == SignalUnit.PERCENT else 1.0


def _align_events(t: FloatArray, events: Series | None, step: float) -> FloatArray:
    """Events behind each sample: the events signal's rate at the same time x step."""
    out = np.full(t.shape[0], np.nan)
    if events is None or len(events) == 0 or t.shape[0] == 0:
        return out
    last = len(events) - 1
    idx = np.minimum(events.t.searchsorted(t), last)
    prev = np.maximum(idx - 1, 0)
    near = np.where(np.abs(events.t[idx] - t) <= np.abs(events.t[prev] - t), idx, prev)
    close = np.abs(events.t[near] - t) <= step / 2
    out[close] = np.maximum(events.v[near][close], 0.0) * step
    return out


def _track(
    series: Series | None, spec: SignalSpec, counted: bool, events: Series | None, step: float
) -> Track:
    if series is None:
        empty = np.empty(0)
        return Track(empty, empty, empty if counted else None)
    if not counted:
        return Track(series.t, series.v, None)
    ratio = np.minimum(np.maximum(series.v * _ratio_scale(spec), 0.0), 1.0)
    bad = ratio if spec.bad_direction == "up" else 1.0 - ratio
    ev = _align_events(series.t, events, step)
    keep = ~np.isnan(ev)
    return Track(series.t[keep], bad[keep], ev[keep])


def count_stats(track: Track, lo: int, hi: int, *, light: bool = False) -> CountStats | None:
    """Counts over samples lo..hi; `light` skips the dispersions (a screen needs the rate)."""
    if track.events is None or hi - lo < 4:
        return None
    ev = track.events[lo:hi]
    bad = track.x[lo:hi] * ev
    total_bad, total_ev = float(bad.sum()), float(ev.sum())
    if total_ev <= 0:
        return None
    if light:
        return CountStats(total_bad, total_ev, hi - lo)
    rate = (total_bad + 0.5) / (total_ev + 1.0)
    phi, rho = robust_dispersion(bad, ev, rate)
    # A window's dispersion: modelled from the per-sample one and the residuals' correlation,
    # and measured on blocks of the baseline; the larger one, so slow drifts count as noise.
    modelled = 1.0 + (phi - 1.0) * variance_inflation(rho)
    measured = block_dispersion(bad, ev, rate, _DISPERSION_BLOCK)
    return CountStats(total_bad, total_ev, hi - lo, phi, max(modelled, measured))


def level_stats(values: FloatArray, *, light: bool = False) -> LevelStats | None:
    """Robust level and noise of values; `light` gives the level only (for a screen)."""
    if values.shape[0] < 4:
        return None
    if light:
        return LevelStats(median(values), 0.0, int(values.shape[0]), 1.0)
    centre, scale = robust_location_scale(values)
    rho = lag1_autocorrelation(values)
    return LevelStats(centre, scale, int(values.shape[0]), variance_inflation(rho))


def _looks_worse(recent: CountStats | LevelStats, base: CountStats | LevelStats, sign: int) -> bool:
    """Cheap screen: is the recent stretch on the bad side of the whole baseline at all?"""
    if isinstance(recent, CountStats) and isinstance(base, CountStats):
        return recent.rate > base.rate
    if isinstance(recent, LevelStats) and isinstance(base, LevelStats):
        return sign == 0 or sign * (recent.centre - base.centre) > 0
    return False


def _worse_than(
    recent: CountStats | LevelStats,
    older: CountStats | LevelStats,
    sign: int,
    spec: SignalSpec,
    settings: JudgeSettings,
) -> bool:
    """Was the recent pre-deploy stretch already significantly and materially worse?"""
    gate = settings.pause_effect[spec.kind]
    if isinstance(recent, CountStats) and isinstance(older, CountStats):
        p = count_excess_pvalue(
            recent.bad, recent.events, older.bad, older.events, older.window_dispersion
        )
        return p < settings.alpha and recent.bad / recent.events >= older.rate * (1 + gate)
    if isinstance(recent, LevelStats) and isinstance(older, LevelStats):
        signs = (1, -1) if sign == 0 else (sign,)
        for s in signs:
            diff = s * (recent.centre - older.centre)
            se = older.scale * np.sqrt(older.inflation / recent.samples + 1.0 / older.samples)
            if normal_sf(diff / se) < settings.alpha and diff >= gate * abs(older.centre):
                return True
    return False


def _worst_recent(
    recent: CountStats | LevelStats,
    latest: CountStats | LevelStats | None,
    older: CountStats | LevelStats,
    sign: int,
) -> CountStats | LevelStats:
    """The reference for "was it already this bad?": the recent minutes, or the last one if
    that was worse (a degradation still ramping up when the deploy started). The last
    minute's level, with the noise measured on the longer stretches."""
    if isinstance(latest, CountStats) and isinstance(recent, CountStats):
        assert isinstance(older, CountStats)
        if latest.rate > recent.rate:
            return CountStats(
                latest.bad,
                latest.events,
                latest.samples,
                older.dispersion,
                older.window_dispersion,
            )
    if isinstance(latest, LevelStats) and isinstance(recent, LevelStats):
        assert isinstance(older, LevelStats)
        ahead = (
            sign * (latest.centre - recent.centre)
            if sign
            else abs(latest.centre - older.centre) - abs(recent.centre - older.centre)
        )
        if ahead > 0:
            return LevelStats(latest.centre, recent.scale, latest.samples, recent.inflation)
    return recent


def prepare_signal(
    bundle: Bundle, spec: SignalSpec, settings: JudgeSettings, start: float, step: float
) -> PreparedSignal:
    data = bundle.signals
    counted = spec.events is not None and spec.is_ratio and spec.bad_direction != "both"
    sign = {"up": 1, "down": -1, "both": 0}[spec.bad_direction]
    if counted:
        sign = 1  # bad fractions only ever go up when things get worse
    slo_bad = spec.slo
    if counted and slo_bad is not None:
        slo_bad *= _ratio_scale(spec)
        if spec.bad_direction == "down":
            slo_bad = 1.0 - slo_bad

    def ev(cohort: str) -> Series | None:
        if spec.events is None:
            return None
        return data.series(spec.events, cohort) or data.series(spec.events, "")

    whole = data.series(spec.name, "")
    canary = data.series(spec.name, "canary")
    pre_series = (
        whole
        if whole is not None and len(whole.until(start))
        else data.series(spec.name, "baseline")
    )
    pre_cohort = "" if pre_series is whole else "baseline"
    history = _track(pre_series, spec, counted, ev(pre_cohort), step)
    lo = int(history.t.searchsorted(start - settings.baseline_s))
    cut = int(history.t.searchsorted(start - settings.recent_pre_s))
    hi = int(history.t.searchsorted(start))

    def stats(a: int, b: int, light: bool = False) -> CountStats | LevelStats | None:
        if counted:
            return count_stats(history, a, b, light=light)
        return level_stats(history.x[a:b], light=light)

    base = stats(lo, hi)
    # The recent minutes, and the last one (a degradation that began a minute or two before
    # the deploy barely moves the median of five).
    screens = [stats(cut, hi, light=True), stats(max(cut, hi - _LATEST_SAMPLES), hi, light=True)]
    older = None
    if base is not None and any(r is not None and _looks_worse(r, base, sign) for r in screens):
        # Only then is the costlier comparison worth making. The older stretch ends one
        # recent-window earlier still, so a degradation that began shortly before the recent
        # minutes does not contaminate what it is compared with.
        gap = int(history.t.searchsorted(start - 2 * settings.recent_pre_s))
        older = stats(lo, gap)
    pre_existing = (
        older is not None
        and older.samples >= 20
        and any(r is not None and _worse_than(r, older, sign, spec, settings) for r in screens)
    )
    recent = None
    if pre_existing:
        assert older is not None
        base = older
        recent = stats(cut, hi)
        assert recent is not None
        recent = _worst_recent(recent, stats(max(cut, hi - _LATEST_SAMPLES), hi), older, sign)
    base_slope = 0.0
    if spec.kind == SignalKind.SATURATION and spec.unit == SignalUnit.BYTES and hi - lo >= 12:
        thin = max(
            1, (hi - lo) // 40
        )  # ~40 points fit a slope well enough, at a fraction of the cost
        base_slope = theil_sen(history.t[lo:hi][::thin], history.x[lo:hi][::thin])[0]

    if canary is not None:
        current = _track(canary, spec, counted, ev("canary"), step)
        control: Track | None = _track(
            data.series(spec.name, "baseline"), spec, counted, ev("baseline"), step
        )
    else:
        current = _track(whole, spec, counted, ev(""), step)
        control = None
    current = _after(current, start)
    if control is not None:
        control = _after(control, start)
    return PreparedSignal(
        spec,
        counted,
        sign,
        slo_bad,
        base,
        recent if pre_existing else None,
        pre_existing,
        base_slope,
        current,
        control,
    )


def _after(track: Track, start: float) -> Track:
    i = int(track.t.searchsorted(start))
    return Track(track.t[i:], track.x[i:], None if track.events is None else track.events[i:])


def prepare(bundle: Bundle, settings: JudgeSettings) -> PreparedDeploy:
    m = bundle.manifest
    start = m.deploy.started_at.timestamp()
    step = m.step_seconds
    finished = m.deploy.finished_at.timestamp() if m.deploy.finished_at else None
    rollout = (finished - start) if finished is not None else 0.0
    warm = min(
        max(settings.warmup_s, rollout + 30.0), max(settings.warmup_max_s, settings.warmup_s)
    )
    return PreparedDeploy(
        service=m.service,
        deploy_id=m.deploy.id,
        start=start,
        step=step,
        warm_end=start + warm,
        rollout_end=start + max(rollout, settings.warmup_s),
        cohorts=bundle.signals.has_cohorts,
        signals=tuple(prepare_signal(bundle, s, settings, start, step) for s in m.signals),
    )
