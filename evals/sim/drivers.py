"""The physical truth of a cohort (request rate, error probability, latency, memory...) and
how it is observed: counts drawn from it, then turned into the recorded signal values.

Families change the truth (`Drivers`) before `observe` draws counts, so a regression shows
consistently in every signal that depends on it (errors lower checkout success, and so on).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agent.bundle.series import FloatArray
from evals.sim.noise import (
    Rng,
    bursts,
    decay,
    diurnal,
    interval_mean,
    lognormal_ar1,
    round_sig,
    spikes,
)
from evals.sim.profiles import ServiceProfile, Timeline


@dataclass(frozen=True)
class Environment:
    """What every cohort shares: the offered traffic, transient error bursts, the dependency."""

    traffic: FloatArray  # offered load relative to the daily mean
    bursts: FloatArray  # multiplier on the error probability
    dependency: FloatArray  # db p95 seconds, or upstream error probability


@dataclass(frozen=True)
class Warmup:
    """How new pods settle after the deploy start (applied to the new version only)."""

    latency: float  # a: latency x (1 + a e^(-dt/tau))
    errors: float  # b: error probability x (1 + b e^(-dt/tau))
    cpu: float
    tau: float
    memory_floor: float  # memory starts at this share of its level and recovers
    memory_tau: float
    memory_settle: float = 1.0  # level the new version settles at, relative to the old


@dataclass
class Drivers:
    """Physical truth of one cohort on the sample grid, before any counting noise."""

    share: float  # of the service's traffic
    load: FloatArray  # per-pod load relative to the daily mean (drives latency and CPU)
    rate: FloatArray  # requests per second this cohort serves
    p_error: FloatArray
    latency: FloatArray  # p95 seconds at mean load
    memory: FloatArray  # bytes per pod
    cpu: FloatArray  # share of the CPU limit at mean load
    business_fail: FloatArray  # probability a served checkout fails for business reasons
    dependency: FloatArray  # db p95 seconds, or upstream error probability

    def add_failures(self, p_extra: FloatArray) -> None:
        """A new, independent way for requests to fail."""
        self.p_error = 1.0 - (1.0 - self.p_error) * (1.0 - np.clip(p_extra, 0.0, 1.0))

    def scale_traffic(self, mult: FloatArray) -> None:
        """More (or fewer) requests arrive: served rate and per-pod load both follow."""
        self.rate = self.rate * mult
        self.load = self.load * mult


def environment(
    rng: Rng, profile: ServiceProfile, timeline: Timeline, *, burst_in_watch: bool = False
) -> Environment:
    t, n = timeline.t, timeline.n
    traffic = diurnal(t, profile.diurnal_amp, profile.peak_hour) * lognormal_ar1(
        rng, n, profile.traffic_rho, profile.traffic_sigma
    )
    per_sample = profile.bursts_per_hour * timeline.step / 3600.0
    forced = (timeline.first_after(timeline.start), n - 1) if burst_in_watch else None
    dependency = profile.dependency_base * lognormal_ar1(
        rng, n, 0.7, 0.08 if profile.dependency == "db" else 0.3
    )
    return Environment(
        traffic=traffic, bursts=bursts(rng, n, per_sample, forced), dependency=dependency
    )


def cohort(
    rng: Rng, profile: ServiceProfile, timeline: Timeline, env: Environment, share: float
) -> Drivers:
    """A healthy cohort serving `share` of the traffic, with its own pods' noise."""
    n = timeline.n
    gc = spikes(rng, n, profile.gc_prob, 0.3, 1.2)
    return Drivers(
        share=share,
        load=env.traffic.copy(),
        rate=profile.rps * share * env.traffic,
        p_error=profile.error_base
        * lognormal_ar1(rng, n, profile.error_rho, profile.error_sigma)
        * env.bursts,
        latency=profile.latency_base
        * lognormal_ar1(rng, n, profile.latency_rho, profile.latency_sigma)
        * gc,
        memory=profile.memory_base * lognormal_ar1(rng, n, 0.97, float(rng.uniform(0.005, 0.015))),
        cpu=(profile.cpu_base or 0.3) * lognormal_ar1(rng, n, 0.8, float(rng.uniform(0.03, 0.06))),
        business_fail=(1.0 - profile.success_base)
        * lognormal_ar1(rng, n, 0.7, float(rng.uniform(0.1, 0.25))),
        dependency=env.dependency.copy(),
    )


def sample_warmup(rng: Rng) -> Warmup:
    return Warmup(
        latency=float(rng.uniform(0.1, 0.6)),
        errors=float(rng.uniform(0.0, 2.0)),
        cpu=float(rng.uniform(0.2, 0.8)),
        tau=float(rng.uniform(20.0, 60.0)),
        memory_floor=float(rng.uniform(0.5, 0.7)),
        memory_tau=float(rng.uniform(120.0, 240.0)),
    )


def apply_warmup(d: Drivers, timeline: Timeline, w: Warmup) -> None:
    """Cold caches, JIT and connection pools right after the new pods start."""
    fresh = interval_mean(decay(timeline.start, w.tau), timeline.t, timeline.step)
    d.latency = d.latency * (1.0 + w.latency * fresh)
    d.p_error = d.p_error * (1.0 + w.errors * fresh)
    d.cpu = d.cpu * (1.0 + w.cpu * fresh)
    filling = interval_mean(decay(timeline.start, w.memory_tau), timeline.t, timeline.step)
    settled = np.where(timeline.t > timeline.start, w.memory_settle, 1.0)
    d.memory = d.memory * settled * (1.0 - (1.0 - w.memory_floor) * filling)


def observe(
    rng: Rng, d: Drivers, profile: ServiceProfile, timeline: Timeline
) -> dict[str, FloatArray]:
    """Draw counts from the truth and compute every signal the profile might record.

    NaN marks a sample with no requests behind it (Prometheus divides 0 by 0).
    """
    step, n_samples = timeline.step, timeline.n
    requests = rng.poisson(np.clip(d.rate, 0.0, None) * step).astype(np.float64)
    served = requests > 0
    per = np.maximum(requests, 1.0)
    errors = rng.binomial(requests.astype(np.int64), np.clip(d.p_error, 0.0, 1.0))
    ok = requests - errors
    load = np.clip(d.load, 0.05, None)
    # A p95 read from few requests' histogram is noisy: the spread shrinks as 1/sqrt(count).
    thin = np.exp(rng.normal(0.0, 1.0, n_samples) * 0.5 / np.sqrt(per))
    p95 = d.latency * load**profile.gamma * thin
    p50_ratio = profile.p50_ratio or 0.5
    p50 = (
        p50_ratio
        * profile.latency_base
        * (p95 / profile.latency_base) ** 0.7
        * np.exp(rng.normal(0.0, 0.02, n_samples))
    )
    succeeded = rng.binomial(ok.astype(np.int64), np.clip(1.0 - d.business_fail, 0.0, 1.0))
    base_fail = 1.0 - profile.success_base
    order_p = profile.order_fraction * (1.0 - d.business_fail) / (1.0 - base_fail)
    orders = rng.binomial(ok.astype(np.int64), np.clip(order_p, 0.0, 1.0))
    upstream_p = np.clip(d.dependency, 0.0, 1.0)
    upstream_errors = rng.binomial(requests.astype(np.int64), upstream_p)
    db = d.dependency * load**0.2 * np.exp(rng.normal(0.0, 0.03, n_samples))
    nan = np.full(n_samples, np.nan)
    return {
        "request_rate": round_sig(requests / step, 6),
        "error_ratio": np.where(served, round_sig(errors / per, 5), nan),
        "latency_p95": np.where(served, round_sig(p95, 4), nan),
        "latency_p50": np.where(served, round_sig(p50, 4), nan),
        "memory_bytes": np.round(d.memory),
        "cpu_usage": round_sig(np.clip(d.cpu * load**0.9, 0.001, 1.0), 4),
        "checkout_success_ratio": np.where(served, round_sig(succeeded / per, 5), nan),
        "orders_per_second": round_sig(orders / step, 6),
        "db_latency_p95": round_sig(db, 4),
        "upstream_error_ratio": np.where(served, round_sig(upstream_errors / per, 5), nan),
    }
