"""The reference judges on hand-built deploys: each one's defining rule, exactly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from agent.bundle import Bundle, BundleManifest
from agent.judge.reference import FlaggerJudge, KayentaJudge, StaticThresholdJudge
from agent.judge.replay import DeployJudge, ReplayResult, look_times, replay
from tests.builders import ERRORS, LATENCY, MEMORY, START, STEP, TRAFFIC, bundle, manifest, service
from tests.builders import times as grid

T0 = START.timestamp()
Values = Callable[[np.ndarray], np.ndarray]  # seconds after the deploy start -> values

SUCCESS = {
    "name": "checkout_success_ratio",
    "kind": "business",
    "unit": "ratio",
    "bad_direction": "down",
    "slo": 0.99,
    "critical": True,
}


def make(
    signals: list[dict[str, Any]],
    values: dict[str, Values],
    *,
    cohorts: dict[str, dict[str, Values]] | None = None,
    before_min: float = 30,
) -> Bundle:
    """Exact series on the 15 s grid (whole service, plus optional per-cohort ones)."""
    t = grid(before_min=before_min)
    r = t - T0
    series: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for name, fn in values.items():
        series.setdefault(name, {})[""] = (t, np.asarray(fn(r), dtype=float))
    for name, by_cohort in (cohorts or {}).items():
        post = r >= 0
        for cohort, fn in by_cohort.items():
            series.setdefault(name, {})[cohort] = (t[post], np.asarray(fn(r[post]), dtype=float))
    return bundle(manifest(signals), series)


def errors(fn: Values, *, unit: str = "ratio") -> Bundle:
    spec = {**ERRORS, "unit": unit}
    return make([TRAFFIC, spec], {"request_rate": lambda r: 200.0 + 0 * r, "error_ratio": fn})


def latency(fn: Values, name: str = "latency_p95") -> Bundle:
    spec = {**LATENCY, "name": name}
    return make([spec], {name: fn})


def expecting(b: Bundle, tier: int, onset_rel: float | None = None) -> Bundle:
    expect: dict[str, Any] = {"tier": tier, "deploy_caused": tier == 3}
    if onset_rel is not None:
        expect["onset"] = T0 + onset_rel
    m = BundleManifest.model_validate({**b.manifest.model_dump(), "expect": expect})
    return Bundle(manifest=m, signals=b.signals)


def rollback_at(b: Bundle, judge: DeployJudge) -> float | None:
    """Seconds after the deploy start of the first tier 3, or None."""
    at = replay(b, judge).first_at[3]
    return None if at is None else at - T0


def wiggle(r: np.ndarray, base: float, spread: float) -> np.ndarray:
    """Distinct, deterministic values around `base` (no ties), a fixed pattern in time."""
    i = np.round(r / STEP)
    return base + spread * np.sin(1.7 * i + 0.3) + spread * 1e-3 * (i % 97)


# ============================================================================= static


def test_static_rolls_back_after_five_minutes_of_errors_above_ten_percent() -> None:
    b = errors(lambda r: np.where(r >= 60, 0.5, 0.002))
    judge = StaticThresholdJudge()
    tier_at = judge.watch(b)
    # Breaching samples from +60 s; the whole 5-minute window [at - 300, at] breaches
    # first at +360 s.
    assert tier_at(T0 + 345) == 0
    assert tier_at(T0 + 360) == 3
    assert rollback_at(b, judge) == 360.0


@pytest.mark.parametrize(
    ("value", "fires"),
    [(0.0999, False), (0.10, False), (0.1001, True)],
)
def test_static_error_threshold_is_strictly_above_ten_percent(value: float, fires: bool) -> None:
    b = errors(lambda r: np.where(r >= 60, value, 0.002))
    assert rollback_at(b, StaticThresholdJudge()) == (360.0 if fires else None)


@pytest.mark.parametrize(("value", "fires"), [(9.9, False), (10.0, False), (10.5, True)])
def test_static_error_threshold_in_percent(value: float, fires: bool) -> None:
    b = errors(lambda r: np.where(r >= 60, value, 0.2), unit="percent")
    assert rollback_at(b, StaticThresholdJudge()) == (360.0 if fires else None)


@pytest.mark.parametrize(("value", "fires"), [(4.99, False), (5.0, False), (5.01, True)])
def test_static_latency_threshold_is_strictly_above_five_seconds(value: float, fires: bool) -> None:
    b = latency(lambda r: np.where(r >= 120, value, 0.2))
    assert rollback_at(b, StaticThresholdJudge()) == (420.0 if fires else None)


def test_static_a_four_minute_breach_does_not_fire() -> None:
    # 0.5 errors on samples +60 .. +285 s (16 samples, 4 minutes), then healthy again.
    b = errors(lambda r: np.where((r >= 60) & (r < 300), 0.5, 0.002))
    assert replay(b, StaticThresholdJudge()).max_tier == 0


def test_static_the_breach_must_span_the_whole_window_first_to_last() -> None:
    # Breaching samples +60 .. +345 s: 285 s from first to last, one sample short.
    short = errors(lambda r: np.where((r >= 60) & (r <= 345), 0.5, 0.002))
    assert replay(short, StaticThresholdJudge()).max_tier == 0
    # +60 .. +360 s: the first and last breaching samples are 300 s apart.
    held = errors(lambda r: np.where((r >= 60) & (r <= 360), 0.5, 0.002))
    assert rollback_at(held, StaticThresholdJudge()) == 360.0


def test_static_one_good_sample_restarts_the_five_minutes() -> None:
    b = errors(lambda r: np.where((r >= 60) & (r != 240), 0.5, 0.002))
    # The good sample at +240 s must leave the window: first at +255 + 300 = +555 s.
    assert rollback_at(b, StaticThresholdJudge()) == 555.0


def test_static_counts_only_post_deploy_time() -> None:
    # Breaching since long before the deploy: still 5 minutes after the start at the earliest.
    b = errors(lambda r: np.full(r.shape, 0.5))
    tier_at = StaticThresholdJudge().watch(b)
    assert tier_at(T0) == 0
    assert tier_at(T0 + 285) == 0
    assert rollback_at(b, StaticThresholdJudge()) == 300.0


def test_static_ignores_the_slo() -> None:
    # 5 % errors is five times the 1 % SLO and 4.5 s latency nine times the 0.5 s SLO.
    b = make(
        [TRAFFIC, ERRORS, LATENCY],
        {
            "request_rate": lambda r: 200.0 + 0 * r,
            "error_ratio": lambda r: np.where(r >= 0, 0.05, 0.002),
            "latency_p95": lambda r: np.where(r >= 0, 4.5, 0.2),
        },
    )
    result = replay(b, StaticThresholdJudge())
    assert result.max_tier == 0
    assert result.first_at == {1: None, 2: None, 3: None}


@pytest.mark.parametrize(
    ("name", "at"),
    [("latency_p95", 300.0), ("latency_p99", 300.0), ("latency_max", 300.0), ("latency_p50", None)],
)
def test_static_checks_tail_latencies_not_the_median(name: str, at: float | None) -> None:
    b = latency(lambda r: np.full(r.shape, 9.0), name)
    assert rollback_at(b, StaticThresholdJudge()) == at


def test_static_ignores_other_kinds_and_units() -> None:
    memory = {**MEMORY, "slo": 1.0}
    b = make([memory], {"memory_bytes": lambda r: np.full(r.shape, 1e12)})
    assert replay(b, StaticThresholdJudge()).max_tier == 0
    ms = {**LATENCY, "unit": "count"}
    b = make([ms], {"latency_p95": lambda r: np.full(r.shape, 9000.0)})
    assert replay(b, StaticThresholdJudge()).max_tier == 0


def test_static_only_ever_answers_0_or_3() -> None:
    b = errors(lambda r: np.where(r >= 60, 0.5, 0.002))
    result = replay(b, StaticThresholdJudge())
    assert result.first_at == {1: T0 + 360, 2: T0 + 360, 3: T0 + 360}
    tiers = {StaticThresholdJudge().watch(b)(at) for at in look_times(b)}
    assert tiers == {0, 3}


def test_static_judges_the_canary_when_there_is_one() -> None:
    fine = lambda r: np.full(r.shape, 0.002)  # noqa: E731
    bad = lambda r: np.where(r >= 60, 0.5, 0.002)  # noqa: E731
    spec: list[dict[str, Any]] = [TRAFFIC, ERRORS]
    rate = {"request_rate": lambda r: 200.0 + 0 * r}
    sick_canary = make(
        spec,
        {**rate, "error_ratio": fine},
        cohorts={"error_ratio": {"canary": bad, "baseline": fine}},
    )
    assert rollback_at(sick_canary, StaticThresholdJudge()) == 360.0
    # The whole service breaches but the canary does not: the canary is what is judged.
    sick_whole = make(
        spec,
        {**rate, "error_ratio": bad},
        cohorts={"error_ratio": {"canary": fine, "baseline": fine}},
    )
    assert replay(sick_whole, StaticThresholdJudge()).max_tier == 0


def test_static_custom_thresholds() -> None:
    b = errors(lambda r: np.where(r >= 60, 0.05, 0.002))
    assert rollback_at(b, StaticThresholdJudge(error_ratio=0.02, hold_s=60)) == 120.0
    assert replay(b, StaticThresholdJudge()).max_tier == 0


# ============================================================================= flagger


def by_minute(bad: set[int], high: float = 0.03, low: float = 0.0) -> Values:
    """`high` on the samples of the given post-deploy minutes (k: (60(k-1), 60k]), else `low`.

    Flagger's check k averages [60(k-1), 60k]: a bad minute k alone gives (4 x 0.03) / 5 =
    0.024 > 1 %, and check k+1 then sees one bad sample in five, 0.006 < 1 %.
    """

    def values(r: np.ndarray) -> np.ndarray:
        minute = np.ceil(r / 60.0).astype(int)
        hit = np.isin(minute, sorted(bad)) & (r > 0)
        return np.where(hit, high, low)

    return values


def test_flagger_checks_once_a_minute_and_rolls_back_on_the_first_failure() -> None:
    b = errors(by_minute({3}))
    judge = FlaggerJudge()
    tier_at = judge.watch(b)
    # The minute's first bad sample is at +135 s, but nothing is checked until +180 s.
    assert tier_at(T0 + 135) == 0
    assert tier_at(T0 + 179.9) == 0
    assert tier_at(T0 + 180) == 3
    assert rollback_at(b, judge) == 180.0


def test_flagger_a_breach_in_the_first_seconds_waits_for_the_first_check() -> None:
    b = errors(lambda r: np.where(r >= 0, 0.5, 0.0))
    assert FlaggerJudge().watch(b)(T0 + 45) == 0
    assert rollback_at(b, FlaggerJudge()) == 60.0


def test_flagger_averages_over_the_interval() -> None:
    # One sample at 3 % per minute: every sample breaches at some point but no average does.
    b = errors(lambda r: np.where((r > 0) & (r % 60 == 30), 0.03, 0.0))
    assert replay(b, FlaggerJudge()).max_tier == 0
    # Same shape, 6 % on one sample: (0.06) / 5 = 1.2 % > 1 % fails every check.
    b = errors(lambda r: np.where((r > 0) & (r % 60 == 30), 0.06, 0.0))
    assert rollback_at(b, FlaggerJudge()) == 60.0


def test_flagger_average_at_the_slo_passes() -> None:
    # 0.25 is exact in binary, so the mean of five samples is exactly the SLO.
    spec = {**ERRORS, "slo": 0.25}
    at_slo = make(
        [TRAFFIC, spec],
        {"request_rate": lambda r: 200.0 + 0 * r, "error_ratio": lambda r: np.full(r.shape, 0.25)},
    )
    assert replay(at_slo, FlaggerJudge()).max_tier == 0
    above = make(
        [TRAFFIC, spec],
        {
            "request_rate": lambda r: 200.0 + 0 * r,
            "error_ratio": lambda r: np.full(r.shape, 0.2500001),
        },
    )
    assert rollback_at(above, FlaggerJudge()) == 60.0


def test_flagger_the_sample_at_the_check_moment_counts() -> None:
    # Only the sample at exactly +120 s is bad: 0.1 / 5 = 2 % fails check 2, at +120 s.
    b = errors(lambda r: np.where(r == 120, 0.1, 0.0))
    assert rollback_at(b, FlaggerJudge()) == 120.0


@pytest.mark.parametrize(
    ("bad", "threshold", "at"),
    [
        ({2, 5, 9}, 3, 540.0),  # failures separated by passing checks still add up
        ({2, 3, 4}, 3, 240.0),
        ({2, 5}, 3, None),  # two failures never reach three
        ({2, 5}, 2, 300.0),
        ({4}, 1, 240.0),
        ({4}, 2, None),
        ({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, 20, 1200.0),
        ({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, 21, None),
    ],
)
def test_flagger_failed_checks_accumulate_to_the_threshold(
    bad: set[int], threshold: int, at: float | None
) -> None:
    b = errors(by_minute(bad))
    assert rollback_at(b, FlaggerJudge(threshold=threshold)) == at


def test_flagger_count_grows_by_one_per_failed_check() -> None:
    b = errors(by_minute({2, 5, 9}))
    for threshold, at in ((1, 120.0), (2, 300.0), (3, 540.0), (4, None)):
        assert rollback_at(b, FlaggerJudge(threshold=threshold)) == at


def test_flagger_a_check_fails_once_however_many_signals_fail() -> None:
    both = make(
        [TRAFFIC, ERRORS, LATENCY],
        {
            "request_rate": lambda r: 200.0 + 0 * r,
            "error_ratio": by_minute({2}),
            # check 2: (0.2 + 4 x 0.6) / 5 = 0.52 > 0.5; check 3: (0.6 + 4 x 0.2) / 5 = 0.28
            "latency_p95": by_minute({2}, high=0.6, low=0.2),
        },
    )
    assert replay(both, FlaggerJudge(threshold=2)).max_tier == 0
    assert rollback_at(both, FlaggerJudge(threshold=1)) == 120.0


def test_flagger_interval_sets_the_check_times() -> None:
    # Check 2 of a 2-minute interval averages [120, 240]: 4 bad samples of 9 -> 1.33 % > 1 %.
    b = errors(by_minute({3}))
    assert rollback_at(b, FlaggerJudge(interval_s=120.0)) == 240.0


def test_flagger_checks_only_critical_signals_with_an_slo() -> None:
    not_critical = {**ERRORS, "critical": False}
    no_slo = {**LATENCY, "slo": None}
    b = make(
        [TRAFFIC, not_critical, no_slo],
        {
            "request_rate": lambda r: 200.0 + 0 * r,
            "error_ratio": lambda r: np.where(r >= 0, 0.5, 0.0),
            "latency_p95": lambda r: np.where(r >= 0, 30.0, 0.2),
        },
    )
    assert replay(b, FlaggerJudge()).max_tier == 0


def test_flagger_bad_direction_down_fails_below_the_slo() -> None:
    low = make([SUCCESS], {"checkout_success_ratio": lambda r: np.where(r >= 0, 0.95, 0.999)})
    assert rollback_at(low, FlaggerJudge()) == 60.0
    high = make([SUCCESS], {"checkout_success_ratio": lambda r: np.full(r.shape, 0.999)})
    assert replay(high, FlaggerJudge()).max_tier == 0


def test_flagger_judges_the_canary_when_there_is_one() -> None:
    fine = lambda r: np.full(r.shape, 0.001)  # noqa: E731
    rate = {"request_rate": lambda r: 200.0 + 0 * r}
    b = make(
        [TRAFFIC, ERRORS],
        {**rate, "error_ratio": fine},
        cohorts={"error_ratio": {"canary": by_minute({2}), "baseline": fine}},
    )
    assert rollback_at(b, FlaggerJudge()) == 120.0


def test_flagger_no_samples_in_an_interval_is_not_a_failure() -> None:
    t = grid()
    keep = (t < T0) | (t > T0 + 600)
    m = manifest([{**ERRORS, "events": None}])
    b = bundle(m, {"error_ratio": {"": (t[keep], np.where(t[keep] < T0, 0.0, 0.5))}})
    assert rollback_at(b, FlaggerJudge()) == 660.0


# ============================================================================= kayenta


def test_kayenta_flags_a_shifted_distribution_against_the_pre_deploy_hour() -> None:
    # Whole service only: control = the 120 samples of the 30 min before the deploy.
    b = latency(lambda r: wiggle(r, 0.2, 0.02) + np.where(r >= 0, 0.5, 0.0))
    tier_at = KayentaJudge().watch(b)
    # 3 post-deploy samples are required; 3 above all 120 controls: exact two-sided
    # p = 2 / C(123, 3) = 6.6e-6.
    assert tier_at(T0) == 0
    # 2 samples would already be significant (2 / C(122, 2) = 2.7e-4) but are not judged.
    assert tier_at(T0 + 15) == 0
    assert tier_at(T0 + 30) == 3
    assert rollback_at(b, KayentaJudge()) == 30.0


def test_kayenta_passes_the_same_distribution() -> None:
    b = latency(lambda r: wiggle(r, 0.2, 0.02))
    assert replay(b, KayentaJudge()).max_tier == 0


def test_kayenta_canary_identical_to_baseline_passes() -> None:
    same = lambda r: wiggle(r, 0.2, 0.02)  # noqa: E731
    b = make(
        [LATENCY],
        {"latency_p95": lambda r: wiggle(r, 0.2, 0.02) + np.where(r >= 0, 1.0, 0.0)},
        cohorts={"latency_p95": {"canary": same, "baseline": same}},
    )
    # The whole service jumped, but canary and baseline are the same samples: p = 1.
    result = replay(b, KayentaJudge())
    assert result.max_tier == 0


def test_kayenta_canary_vs_baseline_needs_four_samples_each() -> None:
    # Canary above baseline on every sample. With 3 vs 3 the smallest exact two-sided
    # p-value is 2 / C(6, 3) = 0.1; with 4 vs 4 it is 2 / C(8, 4) = 0.029 < 0.05.
    b = make(
        [LATENCY],
        {"latency_p95": lambda r: wiggle(r, 0.2, 0.02)},
        cohorts={
            "latency_p95": {
                "canary": lambda r: wiggle(r, 0.5, 0.02),
                "baseline": lambda r: wiggle(r, 0.2, 0.02),
            }
        },
    )
    tier_at = KayentaJudge().watch(b)
    assert [tier_at(T0 + s) for s in (0, 15, 30, 45)] == [0, 0, 0, 3]
    assert rollback_at(b, KayentaJudge()) == 45.0


def test_kayenta_too_little_control_data_is_never_judged() -> None:
    # Only 2 pre-deploy samples and no baseline cohort: fewer than 3 controls. Judged, 80
    # samples above both controls would be significant (2 / C(82, 2) = 6e-4).
    b = make(
        [LATENCY],
        {"latency_p95": lambda r: np.where(r >= 0, 5.0 + r / 1e4, 0.2 + r / 1e4)},
        before_min=0.5,
    )
    assert len(b.signals.series("latency_p95", "").between(T0 - 3600, T0)) == 2  # type: ignore[union-attr]
    assert replay(b, KayentaJudge()).max_tier == 0


def test_kayenta_control_is_only_the_hour_before_the_deploy() -> None:
    # Shifted values long ago (more than an hour before) are not the control.
    b = make(
        [LATENCY],
        {
            "latency_p95": lambda r: (
                np.where(r < -3600, 0.9, wiggle(r, 0.2, 0.02)) + np.where(r >= 0, 0.5, 0.0)
            )
        },
        before_min=90,
    )
    assert rollback_at(b, KayentaJudge()) == 30.0


def test_kayenta_an_improvement_passes() -> None:
    b = latency(lambda r: wiggle(r, 0.2, 0.02) - np.where(r >= 0, 0.1, 0.0))
    assert replay(b, KayentaJudge()).max_tier == 0


def test_kayenta_bad_direction_both_fails_either_way() -> None:
    spec = {**MEMORY, "bad_direction": "both", "critical": True}
    for shift in (-1e8, 1e8):
        b = make([spec], {"memory_bytes": shifted(0, 5e8, 1e7, shift)})
        assert rollback_at(b, KayentaJudge()) == 30.0, shift


def shifted(phase: int, base: float, spread: float, shift: float) -> Values:
    """`wiggle` values (phase-shifted by `phase` seconds), plus `shift` from the deploy on."""
    return lambda r: wiggle(r + phase, base, spread) + np.where(r >= 0, shift, 0.0)


def non_critical(count: int, failing: int) -> Bundle:
    """`count` non-critical signals, the first `failing` of them shifted up after the deploy."""
    specs: list[dict[str, Any]] = [{**MEMORY, "name": f"m{i}"} for i in range(count)]
    values: dict[str, Values] = {
        f"m{i}": shifted(7 * i, 5e8, 1e7, 3e7 if i < failing else 0.0) for i in range(count)
    }
    return make(specs, values)


@pytest.mark.parametrize(
    ("count", "failing", "tier"),
    [
        (20, 1, 0),  # 95 % pass
        (19, 1, 1),  # 94.7 %: marginal
        (5, 1, 1),  # 80 %
        (4, 1, 1),  # 75 %: still marginal
        (3, 1, 3),  # 66.7 %: fail
        (2, 1, 3),
        (5, 0, 0),
    ],
)
def test_kayenta_score_bands(count: int, failing: int, tier: int) -> None:
    b = non_critical(count, failing)
    result = replay(b, KayentaJudge())
    assert result.max_tier == tier
    if tier:
        assert result.first_at[tier] == T0 + 30


def test_kayenta_a_failing_critical_signal_scores_zero() -> None:
    specs: list[dict[str, Any]] = [{**MEMORY, "name": f"m{i}"} for i in range(19)] + [LATENCY]
    values: dict[str, Values] = {f"m{i}": shifted(7 * i, 5e8, 1e7, 0.0) for i in range(19)}
    values["latency_p95"] = lambda r: wiggle(r, 0.2, 0.02) + np.where(r >= 0, 0.5, 0.0)
    b = make(specs, values)
    # 19 of 20 pass (95 %) but the failing one is critical: rollback.
    assert rollback_at(b, KayentaJudge()) == 30.0


@pytest.mark.parametrize("count", [4, 19])
def test_kayenta_signals_without_data_are_left_out_of_the_score(count: int) -> None:
    # 4 signals, 1 failing: 75 % (tier 1); were the silent one failing, 60 % (tier 3).
    # 19 signals, 1 failing: 94.7 % (tier 1); were the silent one passing, 95 % (tier 0).
    b = non_critical(count, 1)
    t = grid()
    pre = t < T0
    specs = [*(s.model_dump() for s in b.manifest.signals), {**MEMORY, "name": "silent"}]
    series = {n: {c: (s.t, s.v) for c, s in cs.items()} for n, cs in b.signals.items()}
    series["silent"] = {"": (t[pre], np.full(int(pre.sum()), 1.0))}
    assert replay(bundle(manifest(specs), series), KayentaJudge()).max_tier == 1


def test_kayenta_custom_alpha() -> None:
    # 3 post samples above 120 controls: p = 2 / C(123, 3) = 6.6e-6 (and 2 / C(124, 4) =
    # 2.6e-7 with a fourth sample).
    b = latency(lambda r: wiggle(r, 0.2, 0.02) + np.where(r >= 0, 0.5, 0.0))
    assert KayentaJudge(alpha=6e-6).watch(b)(T0 + 30) == 0
    assert KayentaJudge(alpha=7e-6).watch(b)(T0 + 30) == 3
    assert rollback_at(b, KayentaJudge(alpha=6e-6)) == 45.0


# ============================================================================= all three


JUDGES: list[Callable[[], DeployJudge]] = [StaticThresholdJudge, FlaggerJudge, KayentaJudge]


def _deploy(error_after: float) -> Bundle:
    return make(
        [TRAFFIC, ERRORS, LATENCY],
        {
            "request_rate": lambda r: 200.0 + 0 * r,
            "error_ratio": lambda r: wiggle(r, 0.002, 0.0005) + np.where(r >= 60, error_after, 0),
            "latency_p95": lambda r: wiggle(r, 0.2, 0.02),
        },
    )


def _bad() -> Bundle:
    return _deploy(0.5)


def _healthy() -> Bundle:
    return _deploy(0.0)


@pytest.mark.parametrize("factory", JUDGES)
def test_reference_judges_are_deterministic(factory: Callable[[], DeployJudge]) -> None:
    for b in (_bad(), service(seed=4), service(seed=5, error_fn=lambda t, r: 0.2 * (r >= 30))):
        first: ReplayResult = replay(b, factory())
        second: ReplayResult = replay(b, factory())
        judge = factory()
        assert first == second
        assert replay(b, judge) == replay(b, judge)  # a judge object can be reused


@pytest.mark.parametrize("factory", JUDGES)
def test_reference_judges_never_read_expect(factory: Callable[[], DeployJudge]) -> None:
    bad, healthy = _bad(), _healthy()
    bad_said_healthy = expecting(bad, 0)
    healthy_said_bad = expecting(healthy, 3, onset_rel=60.0)
    assert replay(bad_said_healthy, factory()) == replay(bad, factory())
    assert replay(bad_said_healthy, factory()).max_tier == 3
    assert replay(healthy_said_bad, factory()) == replay(healthy, factory())
    assert replay(healthy_said_bad, factory()).max_tier == 0


@pytest.mark.parametrize("factory", JUDGES)
def test_reference_judges_do_not_look_ahead(factory: Callable[[], DeployJudge]) -> None:
    b = _bad()
    first = replay(b, factory()).first_at[3]
    assert first is not None
    # Cut the data at the moment of the rollback: the same answer at that moment.
    cut = Bundle(manifest=b.manifest, signals=b.signals.until(first))
    assert factory().watch(cut)(first) == 3
    assert factory().watch(cut)(first - STEP) < 3


@pytest.mark.parametrize(
    ("factory", "name"),
    [(StaticThresholdJudge, "static"), (FlaggerJudge, "flagger"), (KayentaJudge, "kayenta")],
)
def test_reference_judge_names(factory: Callable[[], DeployJudge], name: str) -> None:
    assert factory().name == name
