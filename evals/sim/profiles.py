"""Randomised service profiles and deploy timelines: what a service looks like when healthy."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import numpy as np

from agent.bundle.series import FloatArray
from evals.sim.noise import Rng, log_uniform

SERVICES = (
    "checkout",
    "payments",
    "search",
    "cart",
    "auth",
    "catalog",
    "inventory",
    "shipping",
    "orders",
    "pricing",
    "accounts",
    "reviews",
    "recommendations",
    "notifications",
)
LOW_TRAFFIC_SERVICES = ("invoicing", "admin-api", "webhooks", "reports", "partner-sync", "refunds")
BUSINESS_SERVICES = ("checkout", "cart", "payments", "orders")
UPSTREAMS = (
    "payments-gateway",
    "inventory-api",
    "fraud-scoring",
    "tax-service",
    "identity-provider",
    "pricing-api",
    "carrier-api",
    "geo-api",
)
_YEAR_START = datetime(2026, 1, 1, tzinfo=UTC).timestamp()

Business = Literal["checkout_success", "orders"]
Dependency = Literal["db", "upstream"]


@dataclass(frozen=True)
class ServiceProfile:
    """A service's healthy behaviour and objectives; one is drawn per bundle."""

    service: str
    rps: float  # daily mean of requests per second
    peak_hour: float  # UTC hour of the daily traffic peak
    diurnal_amp: float
    traffic_rho: float
    traffic_sigma: float
    error_base: float  # probability a request fails
    error_slo: float
    error_rho: float
    error_sigma: float  # overdispersion of the error probability
    bursts_per_hour: float
    latency_base: float  # p95 seconds at mean load
    latency_slo: float
    latency_rho: float
    latency_sigma: float
    gamma: float  # latency elasticity to load
    p50_ratio: float | None  # p50 / p95 when latency_p50 is recorded
    gc_prob: float
    memory_base: float  # bytes per pod
    cpu_base: float | None  # share of the CPU limit at mean load, when recorded
    business: Business | None
    success_base: float  # checkout success ratio when healthy
    success_slo: float
    order_fraction: float  # orders per request
    dependency: Dependency | None  # the dependency signal recorded, if any
    dependency_name: str  # what the service leans on (named in logs even with no signal)
    dependency_base: float  # db p95 seconds, or upstream error probability
    pods: int

    @property
    def module(self) -> str:
        """The service's Python package name (src/<module>/...)."""
        return self.service.replace("-", "_")


@dataclass(frozen=True)
class Timeline:
    """The sample grid: a baseline before the deploy start, the watch after it."""

    t: FloatArray
    step: float
    start: float
    finished: float

    @property
    def watch_until(self) -> float:
        return float(self.t[-1])

    @property
    def n(self) -> int:
        return int(self.t.shape[0])

    def first_after(self, moment: float) -> int:
        """Index of the first sample stamped after `moment`."""
        return int(np.searchsorted(self.t, moment, side="right"))


def sample_timeline(rng: Rng) -> Timeline:
    """A deploy on a random 2026 day at a random time of day, on the step grid."""
    step = 30.0 if rng.random() < 0.1 else 15.0
    day = int(rng.integers(0, 365))
    slot = int(rng.integers(0, int(86400 // step)))
    start = _YEAR_START + day * 86400.0 + slot * step
    before = math.ceil(rng.uniform(30, 45) * 60 / step)
    watch = round(rng.uniform(20, 30) * 60 / step)
    t = start + step * np.arange(-before, watch + 1, dtype=np.float64)
    finished = start + float(rng.integers(60, 301))
    return Timeline(t=t, step=step, start=start, finished=finished)


def _ceil_to(value: float, unit: float) -> float:
    return round(math.ceil(value / unit - 1e-9) * unit, 6)


def sample_profile(
    rng: Rng,
    *,
    low_traffic: bool = False,
    needs_business: bool = False,
    needs_dependency: bool = False,
    burst_factor: float = 1.0,
    gc_factor: float = 1.0,
) -> ServiceProfile:
    """A random service; the flags force the traits a family needs."""
    if low_traffic:
        service = str(rng.choice(LOW_TRAFFIC_SERVICES))
        rps = float(rng.uniform(0.2, 2.0))
    elif needs_business:
        service = str(rng.choice(BUSINESS_SERVICES[:3]))
        rps = log_uniform(rng, 20.0, 800.0)
    else:
        service = str(rng.choice(SERVICES))
        rps = log_uniform(rng, 20.0, 800.0)
    error_base = log_uniform(rng, 0.0005, 0.005)
    error_slo = max(
        _ceil_to(float(rng.uniform(0.01, 0.05)), 0.005), _ceil_to(4 * error_base, 0.005)
    )
    latency_base = log_uniform(rng, 0.08, 0.6)
    latency_slo = _ceil_to(latency_base * float(rng.uniform(1.8, 3.0)), 0.01)
    business = _business(rng, service, needs_business)
    success_base = float(rng.uniform(0.95, 0.99))
    dependency: Dependency | None
    if needs_dependency or rng.random() < 0.45:
        dependency = "db" if rng.random() < 0.55 else "upstream"
    else:
        dependency = None
    db_flavour = dependency == "db" or (dependency is None and rng.random() < 0.5)
    if db_flavour:
        dependency_name = f"{service}-db"
        dependency_base = log_uniform(rng, 0.004, 0.04)
    else:
        dependency_name = str(rng.choice([u for u in UPSTREAMS if not u.startswith(service)]))
        dependency_base = log_uniform(rng, 0.0002, 0.003)
    return ServiceProfile(
        service=service,
        rps=rps,
        peak_hour=float(rng.uniform(12.0, 21.0)),
        diurnal_amp=float(rng.uniform(0.2, 0.5)),
        traffic_rho=float(rng.uniform(0.8, 0.95)),
        traffic_sigma=float(rng.uniform(0.02, 0.05)),
        error_base=error_base,
        error_slo=error_slo,
        error_rho=float(rng.uniform(0.5, 0.8)),
        error_sigma=float(rng.uniform(0.2, 0.4)),
        bursts_per_hour=burst_factor / 1.5,
        latency_base=latency_base,
        latency_slo=latency_slo,
        latency_rho=float(rng.uniform(0.5, 0.85)),
        latency_sigma=float(rng.uniform(0.03, 0.08)),
        gamma=float(rng.uniform(0.0, 0.3)),
        p50_ratio=float(rng.uniform(0.3, 0.6)) if rng.random() < 0.4 else None,
        gc_prob=float(rng.uniform(0.002, 0.008)) * gc_factor,
        memory_base=log_uniform(rng, 2e8, 2e9),
        cpu_base=float(rng.uniform(0.15, 0.55)) if rng.random() < 0.7 else None,
        business=business,
        success_base=success_base,
        success_slo=round(success_base - float(rng.uniform(0.03, 0.06)), 3),
        order_fraction=float(rng.uniform(0.02, 0.1)),
        dependency=dependency,
        dependency_name=dependency_name,
        dependency_base=dependency_base,
        pods=int(rng.integers(2, 5)) if low_traffic else int(rng.integers(3, 13)),
    )


def _business(rng: Rng, service: str, needed: bool) -> Business | None:
    if needed:
        return "checkout_success"
    if service not in BUSINESS_SERVICES:
        return None
    draw = rng.random()
    if service == "orders":
        return "orders" if draw < 0.7 else None
    if draw < 0.6:
        return "checkout_success"
    return "orders" if draw < 0.85 else None
