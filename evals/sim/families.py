"""Deploy families: what each kind of deploy does to the truth, and the ground truth it implies.

Healthy families expect tier 0 with no onset. Faulty ones name the tier a good judge should
reach, whether rolling back would help (deploy_caused), and change the physical quantities
(failure probability, latency, traffic, memory) so that counts drawn later stay consistent.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from agent.bundle.model import Strategy
from evals.sim.noise import after, log_uniform, ramp, sawtooth, since
from evals.sim.world import Outcome, World

Effect = Callable[[World], Outcome]


@dataclass(frozen=True)
class FamilySpec:
    name: str
    healthy: bool
    tier: int
    deploy_caused: bool | None
    summary: str
    effect: Effect
    strategy: Strategy | None = None  # forced; otherwise rolling/canary/blue-green at random
    low_traffic: bool = False
    needs_business: bool = False
    needs_dependency: bool = False
    burst_factor: float = 1.0
    burst_in_watch: bool = False
    gc_factor: float = 1.0
    gaps: Literal["sometimes", "always"] = "sometimes"


def _nothing(w: World) -> Outcome:
    return Outcome()


def _diurnal_trend(w: World) -> Outcome:
    # A morning ramp or evening fall steeper than the sinusoid: 25-60 % per hour.
    slope = math.log(float(w.rng.uniform(1.25, 1.6))) * (1.0 if w.rng.random() < 0.5 else -1.0)
    trend = np.exp(slope * (w.timeline.t - w.timeline.start) / 3600.0)
    for d in w.everyone:
        d.scale_traffic(trend)
    return Outcome()


def _pronounced_warmup(w: World) -> Outcome:
    p, start = w.profile, w.timeline.start
    headroom = p.latency_slo / (p.latency_base * w.load_at(start) ** p.gamma)
    a = min(float(w.rng.uniform(0.6, 1.2)), 0.75 * headroom - 1.0)
    b = min(float(w.rng.uniform(2.0, 4.0)), 0.35 * p.error_slo / p.error_base - 1.0)
    w.warmup = replace(
        w.warmup,
        latency=a,
        errors=b,
        cpu=float(w.rng.uniform(0.8, 1.5)),
        tau=float(w.rng.uniform(45.0, 120.0)),
    )
    return Outcome()


def _traffic_shift(w: World) -> Outcome:
    tl = w.timeline
    at = tl.start + float(w.rng.uniform(0.4, 0.7)) * (tl.watch_until - tl.start)
    lift = float(w.rng.uniform(1.3, 1.8))
    # Keep the latency response to the extra load (and the daily trend) within 10 %.
    w.profile = replace(w.profile, gamma=min(w.profile.gamma, 0.6 * math.log(1.1) / math.log(lift)))
    shift = 1.0 + (lift - 1.0) * w.shape(ramp(at, float(w.rng.uniform(15.0, 60.0))))
    for d in w.everyone:
        d.scale_traffic(shift)
    return Outcome()


def _improvement(w: World) -> Outcome:
    at = w.onset(30, 120)
    faster, fewer = float(w.rng.uniform(0.6, 0.9)), float(w.rng.uniform(0.3, 0.7))
    better = w.shape(after(at))
    for d in w.new_version:
        d.latency = d.latency * (1.0 - (1.0 - faster) * better)
        d.p_error = d.p_error * (1.0 - (1.0 - fewer) * better)
    return Outcome()


def _memory_warmup(w: World) -> Outcome:
    w.warmup = replace(
        w.warmup,
        memory_floor=float(w.rng.uniform(0.3, 0.5)),
        memory_tau=float(w.rng.uniform(300.0, 540.0)),
        memory_settle=float(w.rng.uniform(1.0, 1.08)),
    )
    return Outcome()


def _error_step(w: World) -> Outcome:
    onset = w.onset(15, 180)
    w.fail(w.new_version, w.profile.error_slo * log_uniform(w.rng, 1.5, 10.0), after(onset))
    return Outcome(onset, "errors")


def _error_ramp(w: World) -> Outcome:
    onset = w.onset(15, 180)
    target = w.profile.error_slo * float(w.rng.uniform(2.0, 5.0))
    w.fail(w.new_version, target, ramp(onset, float(w.rng.uniform(300.0, 900.0))))
    return Outcome(onset, "pool")


def _latency_step(w: World) -> Outcome:
    onset = w.onset(15, 180)
    p = w.profile
    target = p.latency_slo * float(w.rng.uniform(1.3, 3.0))
    w.slow(w.new_version, target / (p.latency_base * w.load_at(onset) ** p.gamma), after(onset))
    return Outcome(onset, "latency")


def _latency_minor(w: World) -> Outcome:
    onset = w.onset(15, 180)
    p = w.profile
    mult = float(w.rng.uniform(1.4, 1.8))
    watch = w.timeline.t >= onset
    peak_load = float(np.max(w.cohorts[""].load[watch])) / 1.05  # the AR noise, not the trend
    level = p.latency_base * peak_load**p.gamma * mult
    needed = math.ceil(level / float(w.rng.uniform(0.6, 0.8)) * 100.0) / 100.0
    w.profile = replace(p, latency_slo=max(p.latency_slo, needed))
    w.slow(w.new_version, mult, after(onset))
    return Outcome(onset, "latency_minor")


def _crash_loop(w: World) -> Outcome:
    onset = w.onset(5, 60)
    rng = w.rng
    down = w.shape(after(onset))
    w.fail(w.new_version, float(rng.uniform(0.2, 0.8)), after(onset))
    w.slow(w.new_version, float(rng.uniform(1.5, 4.0)), after(onset))
    restarts = sawtooth(
        onset,
        float(rng.uniform(45.0, 150.0)),
        float(rng.uniform(0.3, 0.5)),
        float(rng.uniform(0.8, 1.2)),
    )
    drop, busy = float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.3, 0.8))
    for d in w.new_version:
        d.rate = d.rate * (1.0 - drop * down)
        d.memory = d.memory * w.shape(restarts)
        d.cpu = d.cpu * (1.0 + busy * down)
    return Outcome(onset, "crash")


def _business_drop(w: World) -> Outcome:
    onset = w.onset(15, 180)
    p = w.profile
    target = p.success_slo - float(w.rng.uniform(0.02, 0.10))
    extra = (1.0 - target / p.success_base) * w.shape(after(onset))
    for d in w.new_version:
        d.business_fail = 1.0 - (1.0 - d.business_fail) * (1.0 - extra)
    return Outcome(onset, "business")


def _memory_leak(w: World) -> Outcome:
    onset = w.onset(15, 120)
    per_second = float(w.rng.uniform(0.2, 1.0)) * w.profile.memory_base / 600.0
    grown = w.shape(since(onset))
    for d in w.new_version:
        d.memory = d.memory + per_second * grown
    return Outcome(onset, "memory")


def _dependency_trouble(w: World, onset: float, cohorts: str) -> None:
    """The dependency degrades (over up to 90 s) and drags the service's errors past the SLO."""
    p, rng = w.profile, w.rng
    shape = ramp(onset, float(rng.uniform(20.0, 90.0)))
    frac = w.shape(shape)
    targets = w.everyone if cohorts == "all" else w.new_version
    w.fail(targets, p.error_slo * float(rng.uniform(1.5, 5.0)), shape)
    if p.dependency_name.endswith("-db"):
        worse = float(rng.uniform(4.0, 20.0))
        w.slow(targets, float(rng.uniform(1.1, 1.6)), shape)
        for d in targets:
            d.dependency = d.dependency * (1.0 + (worse - 1.0) * frac)
    else:
        broken = float(rng.uniform(0.05, 0.5))
        for d in targets:
            d.dependency = 1.0 - (1.0 - d.dependency) * (1.0 - broken * frac)


def _dependency_outage_pre(w: World) -> Outcome:
    onset = w.onset(-600, -120)
    _dependency_trouble(w, onset, "all")
    return Outcome(onset, "dependency", everyone=True)


def _canary_both_cohorts(w: World) -> Outcome:
    onset = w.onset(30, 240)
    _dependency_trouble(w, onset, "all")
    return Outcome(onset, "dependency", everyone=True)


def _canary_regression(w: World) -> Outcome:
    if w.rng.random() < 0.5:
        return replace(_error_step(w), detail="errors")
    return replace(_latency_step(w), detail="latency")


def _low_traffic_error(w: World) -> Outcome:
    onset = w.onset(15, 180)
    w.fail(w.new_version, float(w.rng.uniform(0.1, 0.4)), after(onset))
    return Outcome(onset, "errors")


_CANARY = Strategy.CANARY
_TABLE = (
    FamilySpec("healthy_steady", True, 0, None, "an uneventful deploy", _nothing),
    FamilySpec("healthy_diurnal", True, 0, None, "a strong traffic trend", _diurnal_trend),
    FamilySpec("healthy_warmup", True, 0, None, "a marked warm-up within SLO", _pronounced_warmup),
    FamilySpec(
        "healthy_bursty",
        True,
        0,
        None,
        "frequent transient error bursts",
        _nothing,
        burst_factor=4.0,
        burst_in_watch=True,
    ),
    FamilySpec("healthy_gc", True, 0, None, "frequent GC latency spikes", _nothing, gc_factor=3.0),
    FamilySpec(
        "healthy_low_traffic",
        True,
        0,
        None,
        "0.2-2 requests per second",
        _nothing,
        low_traffic=True,
    ),
    FamilySpec("healthy_canary", True, 0, None, "a clean canary", _nothing, strategy=_CANARY),
    FamilySpec("healthy_gaps", True, 0, None, "long scrape gaps", _nothing, gaps="always"),
    FamilySpec("healthy_traffic_shift", True, 0, None, "traffic steps up", _traffic_shift),
    FamilySpec("healthy_improvement", True, 0, None, "latency and errors fall", _improvement),
    FamilySpec("healthy_memory_warmup", True, 0, None, "memory refills slowly", _memory_warmup),
    FamilySpec("error_step", False, 3, True, "errors jump past the SLO", _error_step),
    FamilySpec("error_ramp", False, 3, True, "errors climb past the SLO", _error_ramp),
    FamilySpec("latency_step", False, 3, True, "p95 jumps past the SLO", _latency_step),
    FamilySpec("latency_minor", False, 2, True, "p95 up 40-80 %, within SLO", _latency_minor),
    FamilySpec("crash_loop", False, 3, True, "new pods crash-loop", _crash_loop),
    FamilySpec(
        "business_drop",
        False,
        3,
        True,
        "checkout success past its SLO",
        _business_drop,
        needs_business=True,
    ),
    FamilySpec("memory_leak", False, 2, True, "memory grows steadily", _memory_leak),
    FamilySpec(
        "dependency_outage_pre",
        False,
        1,
        False,
        "a dependency failed before the deploy",
        _dependency_outage_pre,
        needs_dependency=True,
    ),
    FamilySpec(
        "canary_both_cohorts",
        False,
        1,
        False,
        "errors hit both cohorts alike",
        _canary_both_cohorts,
        strategy=_CANARY,
    ),
    FamilySpec(
        "canary_regression",
        False,
        3,
        True,
        "only the canary regresses",
        _canary_regression,
        strategy=_CANARY,
    ),
    FamilySpec(
        "low_traffic_error",
        False,
        3,
        True,
        "a quiet service starts failing",
        _low_traffic_error,
        low_traffic=True,
    ),
)
FAMILIES: dict[str, FamilySpec] = {spec.name: spec for spec in _TABLE}
HEALTHY = tuple(spec.name for spec in _TABLE if spec.healthy)
FAULTY = tuple(spec.name for spec in _TABLE if not spec.healthy)
