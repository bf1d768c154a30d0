"""Every judge rule on hand-built deploys with known truth."""

from __future__ import annotations

import numpy as np
import pytest

from agent.judge.core import judge
from agent.judge.replay import replay
from agent.judge.vigil import VigilJudge
from tests.builders import ERRORS, LATENCY, MEMORY, START, STEP, TRAFFIC, bundle, manifest, service
from tests.builders import times as grid

T0 = START.timestamp()


def first(b, tier):  # type: ignore[no-untyped-def]
    return replay(b, VigilJudge()).first_at[tier]


def test_healthy_deploy_stays_tier_0() -> None:
    for seed in range(5):
        assert replay(service(seed=seed), VigilJudge()).max_tier == 0


def test_error_step_past_slo_rolls_back_within_two_samples() -> None:
    onset = 100.0
    b = service(error_fn=lambda t, r: np.where(r >= onset, 0.05, 0.002))
    at = first(b, 3)
    assert at is not None
    assert at - (T0 + onset) <= 2 * STEP
    v = judge(b, at)
    assert v.tier == 3 and v.deploy_caused is True
    f = next(f for f in v.findings if f.signal == "error_ratio")
    assert f.past_slo and f.p_value is not None and f.threshold is not None
    assert f.p_value <= f.threshold
    assert f.baseline is not None and f.current is not None and f.current > 0.01


def test_counts_matter_same_ratio_different_evidence() -> None:
    # 7.5 % errors: at 3 req/s (45 per sample) far weaker evidence than at 300 req/s.
    def step(t: np.ndarray, r: np.ndarray) -> np.ndarray:
        return np.where(r >= 60, 0.075, 0.004)

    strong = service(rps=300, error_fn=step, seed=3)
    weak = service(rps=3, error_fn=step, seed=3)
    t_strong, t_weak = first(strong, 3), first(weak, 3)
    assert t_strong is not None and t_weak is not None
    assert t_weak - t_strong >= 2 * STEP
    probe = T0 + 60 + 2 * STEP
    v_strong, v_weak = judge(strong, probe), judge(weak, probe)
    p = {
        v: next(f.p_value for f in v.findings if f.signal == "error_ratio")
        for v in (v_strong, v_weak)
    }
    assert p[v_strong] < p[v_weak]


def test_zero_error_baseline_does_not_make_one_error_significant() -> None:
    def one_error(t: np.ndarray, r: np.ndarray) -> np.ndarray:
        return np.where((r >= 300) & (r < 315), 1 / 3000, 0.0)

    b = service(error_fn=one_error, base_error=0.0)
    assert replay(b, VigilJudge()).max_tier == 0


def test_latency_step_within_slo_is_a_pause_not_a_rollback() -> None:
    b = service(latency_fn=lambda t, r: np.where(r >= 200, 1.6, 1.0))  # 0.32 s < SLO 0.5 s
    result = replay(b, VigilJudge())
    assert result.max_tier == 2
    assert result.first_at[2] is not None


def test_latency_step_past_slo_rolls_back() -> None:
    b = service(latency_fn=lambda t, r: np.where(r >= 100, 3.5, 1.0))
    at = first(b, 3)
    assert at is not None and at - (T0 + 100) <= 2 * STEP


@pytest.mark.parametrize(("onset", "samples"), [(100, 2), (170, 3), (600, 4)])
def test_a_step_long_after_the_rollout_needs_more_persistence(onset: float, samples: int) -> None:
    # The builder's rollout ends 120 s after the start.
    b = service(latency_fn=lambda t, r: np.where(r >= onset, 3.5, 1.0))
    at = first(b, 3)
    first_bad = T0 + np.ceil(onset / STEP) * STEP
    assert at == first_bad + (samples - 1) * STEP


def test_the_first_seconds_of_a_deploy_cannot_roll_it_back_alone() -> None:
    # Pods starting up: two bad samples at +0 s and +15 s only.
    b = service(error_fn=lambda t, r: np.where((r >= 0) & (r < 20), 0.05, 0.002))
    assert replay(b, VigilJudge()).max_tier < 3


def test_warmup_blip_within_slo_does_not_pause() -> None:
    b = service(
        latency_fn=lambda t, r: np.where(r >= 0, 1 + 0.8 * np.exp(-np.maximum(r, 0) / 30), 1.0)
    )
    assert replay(b, VigilJudge()).max_tier <= 1


def test_improvement_is_healthy() -> None:
    b = service(
        latency_fn=lambda t, r: np.where(r >= 60, 0.6, 1.0),
        error_fn=lambda t, r: np.where(r >= 60, 0.0005, 0.002),
    )
    assert replay(b, VigilJudge()).max_tier == 0


def test_low_traffic_says_insufficient_evidence_not_healthy() -> None:
    b = service(rps=0.3)
    v = judge(b, T0 + 300)
    assert v.tier == 0
    assert v.status == "insufficient_evidence"
    f = next(f for f in v.findings if f.signal == "error_ratio")
    assert f.status == "insufficient"


def test_low_traffic_real_regression_is_still_caught() -> None:
    b = service(rps=1.0, error_fn=lambda t, r: np.where(r >= 60, 0.3, 0.002))
    assert replay(b, VigilJudge()).max_tier == 3


def test_scrape_gap_at_the_end_is_no_data_not_healthy() -> None:
    b = service()
    t = grid()
    keep = t < T0 + 300
    cut = {
        name: {c: (s.t[keep[: len(s.t)]], s.v[keep[: len(s.t)]]) for c, s in cs.items()}
        for name, cs in b.signals.items()
    }
    gap = bundle(b.manifest, cut)
    v = judge(gap, T0 + 600)
    assert v.status == "insufficient_evidence"
    assert all(f.status == "no_data" for f in v.findings)


def test_regression_that_began_before_the_deploy_is_not_deploy_caused() -> None:
    b = service(error_fn=lambda t, r: np.where(r >= -240, 0.05, 0.002))
    result = replay(b, VigilJudge())
    assert result.max_tier <= 1
    v = judge(b, T0 + 600)
    assert v.deploy_caused is False
    assert any(f.status == "not_deploy_caused" for f in v.findings)


def test_deploy_on_top_of_an_existing_problem_is_deploy_caused() -> None:
    b = service(error_fn=lambda t, r: np.where(r >= 120, 0.2, np.where(r >= -240, 0.02, 0.002)))
    assert replay(b, VigilJudge()).max_tier == 3


def _canary(canary_error: float, baseline_error: float, seed: int = 0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    t = grid()
    pre, post = t[t < T0], t[t >= T0]
    series: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {
        "request_rate": {},
        "error_ratio": {},
    }
    n = rng.poisson(200 * STEP, pre.shape)
    series["request_rate"][""] = (pre, n / STEP)
    series["error_ratio"][""] = (pre, rng.binomial(n, 0.002) / n)
    for cohort, share, p in (("canary", 0.2, canary_error), ("baseline", 0.8, baseline_error)):
        n = rng.poisson(200 * share * STEP, post.shape)
        rel = post - T0
        err = rng.binomial(n, np.where(rel >= 60, p, 0.002))
        series["request_rate"][cohort] = (post, n / STEP)
        series["error_ratio"][cohort] = (post, err / np.maximum(n, 1))
    return bundle(manifest([TRAFFIC, ERRORS], strategy="canary"), series)


def test_canary_only_regression_rolls_back() -> None:
    b = _canary(0.05, 0.002)
    result = replay(b, VigilJudge())
    assert result.max_tier == 3
    assert judge(b, T0 + 300).findings[1].comparison == "cohort"


def test_outage_hitting_both_cohorts_is_not_deploy_caused() -> None:
    b = _canary(0.05, 0.05)
    assert replay(b, VigilJudge()).max_tier <= 1
    v = judge(b, T0 + 300)
    assert v.deploy_caused is False


def _memory(kind: str, seed: int = 0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    t = grid(after_min=30)
    rel = t - T0
    level = np.full(t.shape, 5e8)
    after = rel >= 0
    if kind == "leak":
        level[after] *= 0.6 + 0.4 * (1 - np.exp(-rel[after] / 150)) + 0.5 * rel[after] / 600
    else:  # fresh pods start light and recover to the old level
        level[after] *= 0.6 + 0.4 * (1 - np.exp(-rel[after] / 150))
    values = level * (1 + rng.normal(0, 0.01, t.shape))
    return bundle(manifest([MEMORY], watch_min=30), {"memory_bytes": {"": (t, values)}})


def _memory_refill(seed: int = 0):  # type: ignore[no-untyped-def]
    # Caches refill slowly (tau 7 min) and settle 6 % above the old level: still growing
    # fast 10 minutes in, but slowing down all the time.
    rng = np.random.default_rng(seed)
    t = grid(after_min=30)
    rel = t - T0
    level = np.full(t.shape, 5e8)
    after = rel >= 0
    level[after] *= 1.06 - 0.6 * np.exp(-rel[after] / 420)
    values = level * (1 + rng.normal(0, 0.003, t.shape))
    return bundle(manifest([MEMORY], watch_min=30), {"memory_bytes": {"": (t, values)}})


def test_memory_leak_is_a_pause_never_a_rollback() -> None:
    result = replay(_memory("leak"), VigilJudge())
    assert result.max_tier == 2
    v = judge(_memory("leak"), T0 + 1500)
    f = v.findings[0]
    assert f.window == "trend" and f.interval is not None and f.interval[0] > 0


def test_memory_warmup_recovery_is_not_a_leak() -> None:
    assert replay(_memory("warmup"), VigilJudge()).max_tier <= 1


def test_verdict_before_the_deploy_is_not_started() -> None:
    v = judge(service(), T0 - 60)
    assert v.tier == 0 and v.status == "not_started"


def test_both_directions_signal() -> None:
    spec = dict(LATENCY, bad_direction="both", slo=None, critical=False)
    b = service(latency_fn=lambda t, r: np.where(r >= 120, 0.4, 1.0), signals=(TRAFFIC, spec))
    assert replay(b, VigilJudge()).max_tier == 2


def test_verdict_json_carries_the_numbers() -> None:
    b = service(error_fn=lambda t, r: np.where(r >= 100, 0.05, 0.002))
    data = judge(b, T0 + 300).to_json()
    assert data["tier"] == 3 and data["tier_name"] == "roll back"
    f = next(f for f in data["findings"] if f["signal"] == "error_ratio")
    for key in (
        "baseline",
        "current",
        "baseline_events",
        "current_events",
        "effect",
        "interval",
        "p_value",
        "threshold",
        "slo",
        "reason",
    ):
        assert f[key] is not None, key


@pytest.mark.parametrize("seed", range(3))
def test_never_reads_expect(seed: int) -> None:
    b = service(seed=seed, error_fn=lambda t, r: np.where(r >= 100, 0.05, 0.002))
    with_expect = b.manifest.model_copy(update={"expect": {"tier": 0}})
    other = bundle(
        with_expect, {n: {c: (s.t, s.v) for c, s in cs.items()} for n, cs in b.signals.items()}
    )
    assert judge(b, T0 + 300) == judge(other, T0 + 300)


def test_slow_cache_refill_is_settling_not_a_leak() -> None:
    b = _memory_refill()
    assert replay(b, VigilJudge()).max_tier <= 1
    f = judge(b, T0 + 1500).findings[0]
    assert f.tier <= 1
    if f.window == "trend":
        assert "slowing" in f.reason


def test_the_first_sample_of_a_step_may_be_partly_affected() -> None:
    # The failure begins late in the 15 s before the sample at +60 s: that sample is only
    # partly affected (0.8 %, below the 1 % SLO yet clearly worse than 0.2 %); the next one is
    # fully bad. Two samples suffice: tier 3 at +75 s, not +90 s.
    def step(t: np.ndarray, r: np.ndarray) -> np.ndarray:
        return np.where(r >= 75, 0.2, np.where(r >= 60, 0.008, 0.002))

    b = service(rps=400, error_fn=step, seed=2)
    assert first(b, 3) == T0 + 75
    f = next(f for f in judge(b, T0 + 75).findings if f.signal == "error_ratio")
    assert f.window == "short" and f.current_samples == 2 and f.past_slo


def test_a_lone_sample_past_the_slo_is_not_enough() -> None:
    # One bad sample (the one before it normal): persistence needs two.
    b = service(rps=400, error_fn=lambda t, r: np.where(r == 75, 0.2, 0.002), seed=2)
    assert first(b, 3) is None


def test_warm_up_latency_needs_every_sample_past_the_slo() -> None:
    # Fresh pods: p95 rises within the SLO, then one spike past it. During the warm-up the
    # partly-affected-first-sample allowance does not apply to latency: no rollback on one
    # spike; a second sample past the SLO is needed.
    def warm(t: np.ndarray, r: np.ndarray) -> np.ndarray:
        return np.where(r == 60, 2.2, np.where(r == 75, 5.0, np.where(r == 90, 5.0, 1.0)))

    b = service(latency_fn=warm, seed=4)
    assert first(b, 3) == T0 + 90


def test_a_dependency_degraded_before_the_deploy_explains_the_errors() -> None:
    # The database slowed down 6 minutes before the deploy and errors followed it; after the
    # deploy both get worse still. Rolling back would not help: no rollback, not deploy-caused.
    rng = np.random.default_rng(5)
    t = grid()
    rel = t - T0
    n = rng.poisson(300 * STEP, t.shape)
    p_err = np.where(rel >= 60, 0.06, np.where(rel >= -360, 0.004, 0.002))
    db = 0.01 * np.exp(rng.normal(0, 0.05, t.shape)) * np.where(rel >= -360, 6.0, 1.0)
    db_spec = {
        "name": "db_latency_p95",
        "kind": "dependency",
        "unit": "seconds",
        "bad_direction": "up",
    }
    b = bundle(
        manifest([TRAFFIC, ERRORS, db_spec]),
        {
            "request_rate": {"": (t, n / STEP)},
            "error_ratio": {"": (t, rng.binomial(n, p_err) / n)},
            "db_latency_p95": {"": (t, db)},
        },
    )
    assert replay(b, VigilJudge()).max_tier <= 1
    v = judge(b, T0 + 300)
    errors = next(f for f in v.findings if f.signal == "error_ratio")
    assert errors.deploy_caused is False and "db_latency_p95" in errors.reason


def test_already_past_the_slo_before_the_deploy_and_not_much_worse_is_not_tier_3() -> None:
    b = service(error_fn=lambda t, r: np.where(r >= 60, 0.03, np.where(r >= -400, 0.02, 0.002)))
    assert replay(b, VigilJudge()).max_tier <= 1


def test_traffic_rise_explains_saturation() -> None:
    # CPU follows a 60 % traffic rise that begins after the warm-up: no warning.
    rng = np.random.default_rng(6)
    t = grid(after_min=25)
    rel = t - T0
    lift = np.where(rel >= 600, 1.6, 1.0)
    n = rng.poisson(300 * STEP * lift)
    cpu = 0.3 * lift * np.exp(rng.normal(0, 0.02, t.shape))
    cpu_spec = {"name": "cpu_usage", "kind": "saturation", "unit": "ratio", "bad_direction": "up"}
    b = bundle(
        manifest([TRAFFIC, cpu_spec], watch_min=25),
        {"request_rate": {"": (t, n / STEP)}, "cpu_usage": {"": (t, cpu)}},
    )
    assert replay(b, VigilJudge()).max_tier == 0
    f = next(f for f in judge(b, T0 + 1200).findings if f.signal == "cpu_usage")
    assert f.tier == 0


def test_a_transient_excursion_within_slo_does_not_pause() -> None:
    # p95 +40 % for two minutes, well after the warm-up, within the SLO: a pause needs the
    # shift to hold through the whole long window (both halves), so at most a warning.
    b = service(latency_fn=lambda t, r: np.where((r >= 600) & (r < 720), 1.4, 1.0), seed=7)
    assert replay(b, VigilJudge()).max_tier <= 1


def test_canary_worse_but_baseline_cohort_degraded_too_is_not_deploy_caused() -> None:
    # Both cohorts fail far more than before the deploy; the canary (cold pods) even more.
    # Rolling the canary back would leave the old pods failing: escalate, do not roll back.
    b = _canary(0.12, 0.04)
    assert replay(b, VigilJudge()).max_tier <= 1
    f = next(f for f in judge(b, T0 + 300).findings if f.signal == "error_ratio")
    assert f.deploy_caused is False and "degraded too" in f.reason
