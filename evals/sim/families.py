"""Deploy families: what changes after (or before) a deploy, and the ground truth it implies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from evals.sim.profile import Profile

Rng = np.random.Generator


@dataclass
class Effects:
    """Multipliers/overrides on the truth of one cohort, as functions of time since start."""

    err_floor: Callable[[np.ndarray], np.ndarray] | None = None  # error prob at least this
    lat_mult: Callable[[np.ndarray], np.ndarray] | None = None
    traffic_mult: Callable[[np.ndarray], np.ndarray] | None = None
    mem_add: Callable[[np.ndarray], np.ndarray] | None = None  # fraction of base memory
    success_drop: Callable[[np.ndarray], np.ndarray] | None = None
    dep_mult: Callable[[np.ndarray], np.ndarray] | None = None


@dataclass
class Plan:
    """One drawn deploy: which cohorts get which effects, and the truth."""

    tier: int
    onset: float | None = None  # seconds relative to start
    deploy_caused: bool | None = None
    canary: bool = False
    low_traffic: bool = False
    whole: Effects = field(default_factory=Effects)  # whole service (and both cohorts)
    canary_only: Effects = field(default_factory=Effects)
    burst_factor: float = 1.0
    gc_factor: float = 1.0
    warm_factor: float = 1.0
    gaps: float = 0.3  # probability of scrape gaps
    long_gaps: bool = False
    traffic_shift: bool = False
    improvement: bool = False
    mem_warm_factor: float = 1.0
    business: bool = False  # needs a business ratio signal
    dependency: bool = False  # needs a dependency signal
    lat_slo_min: float | None = None  # keep an in-SLO regression in SLO


def _step(onset: float, value: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda rel: np.where(rel >= onset, value, 0.0)


def _mult(onset: float, value: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda rel: np.where(rel >= onset, value, 1.0)


def plan(family: str, rng: Rng, p: Profile) -> Plan:  # noqa: C901 - one branch per family
    onset = float(rng.uniform(15, 180))
    if family == "healthy_steady":
        return Plan(0)
    if family == "healthy_diurnal":
        return Plan(0)
    if family == "healthy_warmup":
        return Plan(0, warm_factor=1.6)
    if family == "healthy_bursty":
        return Plan(0, burst_factor=4.0)
    if family == "healthy_gc":
        return Plan(0, gc_factor=3.0)
    if family == "healthy_low_traffic":
        return Plan(0, low_traffic=True)
    if family == "healthy_canary":
        return Plan(0, canary=True)
    if family == "healthy_gaps":
        return Plan(0, gaps=1.0, long_gaps=True)
    if family == "healthy_traffic_shift":
        return Plan(0, traffic_shift=True)
    if family == "healthy_improvement":
        return Plan(0, improvement=True)
    if family == "healthy_memory_warmup":
        return Plan(0, mem_warm_factor=1.6)
    if family == "error_step":
        return Plan(
            3, onset, True, whole=Effects(err_floor=_step(onset, p.err_slo * rng.uniform(1.5, 10)))
        )
    if family == "error_ramp":
        target = p.err_slo * rng.uniform(2, 5)
        span = rng.uniform(300, 900)
        ramp = lambda rel: np.clip((rel - onset) / span, 0, 1) * target  # noqa: E731
        return Plan(3, onset, True, whole=Effects(err_floor=ramp))
    if family == "latency_step":
        factor = p.lat_slo * rng.uniform(1.3, 3) / p.lat_base
        return Plan(3, onset, True, whole=Effects(lat_mult=_mult(onset, factor)))
    if family == "latency_minor":
        factor = rng.uniform(1.4, 1.8)
        return Plan(
            2,
            onset,
            True,
            whole=Effects(lat_mult=_mult(onset, factor)),
            lat_slo_min=p.lat_base * factor / 0.8,
        )
    if family == "crash_loop":
        onset = float(rng.uniform(5, 60))
        return Plan(
            3,
            onset,
            True,
            whole=Effects(
                err_floor=_step(onset, rng.uniform(0.2, 0.8)),
                traffic_mult=_mult(onset, rng.uniform(0.3, 0.7)),
                lat_mult=_mult(onset, rng.uniform(1.2, 2.0)),
            ),
        )
    if family == "business_drop":
        drop = p.success_base - (p.success_slo - rng.uniform(0.02, 0.10))
        return Plan(3, onset, True, whole=Effects(success_drop=_step(onset, drop)), business=True)
    if family == "memory_leak":
        onset = float(rng.uniform(0, 60))
        per_s = rng.uniform(0.2, 1.0) / 600
        return Plan(
            2, onset, True, whole=Effects(mem_add=lambda rel: np.clip(rel - onset, 0, None) * per_s)
        )
    if family == "dependency_outage_pre":
        onset = -float(rng.uniform(120, 600))
        return Plan(
            1,
            onset,
            False,
            whole=Effects(
                err_floor=_step(onset, p.err_slo * rng.uniform(1.5, 5)),
                dep_mult=_mult(onset, rng.uniform(3, 10)),
            ),
            dependency=True,
        )
    if family == "canary_both_cohorts":
        onset = float(rng.uniform(30, 300))
        return Plan(
            1,
            onset,
            False,
            canary=True,
            whole=Effects(err_floor=_step(onset, p.err_slo * rng.uniform(1.5, 6))),
        )
    if family == "canary_regression":
        if rng.random() < 0.5:
            effect = Effects(err_floor=_step(onset, p.err_slo * rng.uniform(1.5, 10)))
        else:
            effect = Effects(lat_mult=_mult(onset, p.lat_slo * rng.uniform(1.3, 3) / p.lat_base))
        return Plan(3, onset, True, canary=True, canary_only=effect)
    if family == "low_traffic_error":
        return Plan(
            3,
            onset,
            True,
            low_traffic=True,
            whole=Effects(err_floor=_step(onset, rng.uniform(0.1, 0.4))),
        )
    raise KeyError(family)


HEALTHY = (
    "healthy_steady",
    "healthy_diurnal",
    "healthy_warmup",
    "healthy_bursty",
    "healthy_gc",
    "healthy_low_traffic",
    "healthy_canary",
    "healthy_gaps",
    "healthy_traffic_shift",
    "healthy_improvement",
    "healthy_memory_warmup",
)
FAULTY = (
    "error_step",
    "error_ramp",
    "latency_step",
    "latency_minor",
    "crash_loop",
    "business_drop",
    "memory_leak",
    "dependency_outage_pre",
    "canary_both_cohorts",
    "canary_regression",
    "low_traffic_error",
)
