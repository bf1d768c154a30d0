"""A randomised service and the physics of its signals (traffic, errors, latency, memory)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SERVICES = (
    "checkout",
    "payments",
    "search",
    "cart",
    "auth",
    "catalog",
    "inventory",
    "shipping",
    "pricing",
    "reviews",
    "orders",
    "accounts",
)


@dataclass(frozen=True)
class Profile:
    service: str
    rps: float
    err_base: float
    err_slo: float
    lat_base: float
    lat_slo: float
    mem_base: float
    diurnal_amp: float
    phase: float
    traffic_sigma: float
    p_sigma: float
    lat_rho: float
    lat_sigma: float
    gamma: float
    gc_prob: float
    burst_per_s: float
    warm_a: float
    warm_tau: float
    warm_b: float
    mem_dip: float
    mem_tau: float
    success_base: float
    success_slo: float
    has_p50: bool
    has_cpu: bool
    business: str | None  # "ratio" | "rate" | None
    dependency: str | None  # "db" | "upstream" | None


def random_profile(
    rng: np.random.Generator, *, low_traffic: bool = False, start_hour: float = 12.0
) -> Profile:
    err_base = float(rng.uniform(0.0005, 0.005))
    lat_base = float(rng.uniform(0.08, 0.6))
    success = float(rng.uniform(0.95, 0.99))
    return Profile(
        service=str(rng.choice(SERVICES)),
        rps=float(rng.uniform(0.2, 2.0) if low_traffic else math.exp(rng.uniform(3.0, 6.7))),
        err_base=err_base,
        err_slo=float(max(rng.uniform(0.01, 0.05), 4 * err_base)),
        lat_base=lat_base,
        lat_slo=lat_base * float(rng.uniform(1.8, 3.0)),
        mem_base=float(math.exp(rng.uniform(math.log(2e8), math.log(2e9)))),
        diurnal_amp=float(rng.uniform(0.2, 0.5)),
        phase=2 * math.pi * start_hour / 24,
        traffic_sigma=float(rng.uniform(0.02, 0.05)),
        p_sigma=float(rng.uniform(0.2, 0.4)),
        lat_rho=float(rng.uniform(0.5, 0.85)),
        lat_sigma=float(rng.uniform(0.03, 0.08)),
        gamma=float(rng.uniform(0.0, 0.3)),
        gc_prob=float(rng.uniform(0.002, 0.008)),
        burst_per_s=1 / 5400,
        warm_a=float(rng.uniform(0.1, 0.6)),
        warm_tau=float(rng.uniform(20, 60)),
        warm_b=float(rng.uniform(0.0, 2.0)),
        mem_dip=float(rng.uniform(0.3, 0.5)),
        mem_tau=float(rng.uniform(120, 240)),
        success_base=success,
        success_slo=success - float(rng.uniform(0.03, 0.06)),
        has_p50=bool(rng.random() < 0.5),
        has_cpu=bool(rng.random() < 0.6),
        business=str(rng.choice(["ratio", "rate", "none"])),
        dependency=str(rng.choice(["db", "upstream", "none"])),
    )


def ar1(rng: np.random.Generator, n: int, rho: float, sigma: float) -> np.ndarray:
    """A stationary AR(1) series with marginal standard deviation sigma."""
    shocks = rng.normal(0.0, sigma * math.sqrt(1 - rho * rho), n)
    out = np.empty(n)
    out[0] = rng.normal(0.0, sigma)
    for i in range(1, n):
        out[i] = rho * out[i - 1] + shocks[i]
    return out


def bursts(rng: np.random.Generator, n: int, per_sample: float) -> np.ndarray:
    """Multiplier series with rare transient error bursts of 1-3 samples."""
    mult = np.ones(n)
    for i in np.flatnonzero(rng.random(n) < per_sample):
        length = int(rng.choice([1, 2, 3], p=[0.55, 0.37, 0.08]))
        mult[i : i + length] *= rng.uniform(3, 15)
    return mult
