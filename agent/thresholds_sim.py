"""A simulated history for tests and the demo: days of one service's traffic, errors and
latency, with what makes static thresholds noisy in real life.

- A daily traffic cycle (the quietest hour has a small share of the busiest one) and quieter
  weekends: at night a handful of requests per window, so one error is a large ratio.
- Noise: Poisson requests, binomial errors, lognormal latency that is wider when few requests
  make up the p95.
- Short transient bursts (a few minutes of errors or slow requests, at any hour) that are not
  incidents, and known incidents (start, end, signal, level) injected on top.
- Values are computed the way the PromQL would see them: over a `rate(...[5m])` window, so a
  burst stays visible for the window's length after it ends.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from agent.bundle.model import SignalKind, SignalSpec, SignalUnit
from agent.thresholds_history import FloatArray, History, KnownIncident, SignalHistory

MONDAY = datetime(2026, 3, 2, tzinfo=UTC).timestamp()


class SimulatedIncident(BaseModel):
    model_config = ConfigDict(frozen=True)

    start: float
    end: float
    signal: str  # error_ratio (level: the error ratio) or latency_p95 (level: seconds)
    level: float = Field(gt=0)


class Simulation(BaseModel):
    """Settings of a simulated history; every default is what the demo and the tests use."""

    model_config = ConfigDict(frozen=True)

    service: str = "checkout"
    days: int = Field(14, ge=1, le=90)
    step_s: int = Field(60, ge=5)
    start: float = MONDAY
    seed: int = 7
    peak_rps: float = Field(10.0, gt=0)
    night_share: float = Field(0.005, gt=0, le=1)  # the quietest hour's share of the busiest
    quietest_hour: float = 4.0
    weekend_share: float = Field(0.6, gt=0, le=1)
    error_ratio: float = Field(0.02, ge=0, lt=1)
    latency_s: float = Field(0.3, gt=0)
    window_s: int = Field(300, ge=1)  # the rate() window of the queries
    bursts_per_day: float = Field(4.0, ge=0)
    burst_minutes: tuple[int, int] = (1, 6)
    incidents: tuple[SimulatedIncident, ...] | None = None  # None: default_incidents()
    queries: dict[str, str] | None = None

    def known_incidents(self) -> tuple[SimulatedIncident, ...]:
        chosen = default_incidents(self.start) if self.incidents is None else self.incidents
        end = self.start + self.days * 86400
        return tuple(i for i in chosen if i.start >= self.start and i.end <= end)


def default_incidents(start: float = MONDAY) -> tuple[SimulatedIncident, ...]:
    """Day-time error and latency incidents of moderate size, and two off-peak outages."""

    def at(day: int, hhmm: str, minutes: int, signal: str, level: float) -> SimulatedIncident:
        h, m = (int(x) for x in hhmm.split(":"))
        t0 = start + day * 86400 + h * 3600 + m * 60
        return SimulatedIncident(start=t0, end=t0 + minutes * 60, signal=signal, level=level)

    return (
        at(1, "14:10", 40, "error_ratio", 0.07),
        at(4, "03:20", 30, "error_ratio", 0.5),
        at(6, "10:05", 40, "latency_p95", 1.5),
        at(9, "16:30", 45, "error_ratio", 0.08),
        at(11, "21:40", 30, "error_ratio", 0.3),
        at(12, "09:15", 30, "latency_p95", 2.0),
    )


def default_queries(service: str) -> dict[str, str]:
    sel = f'service="{service}"'
    total = f"sum(rate(http_requests_total{{{sel}}}[5m]))"
    return {
        "request_rate": total,
        "error_ratio": f'sum(rate(http_requests_total{{{sel},code=~"5.."}}[5m])) / {total}',
        "latency_p95": "histogram_quantile(0.95, sum by (le) "
        f"(rate(http_request_duration_seconds_bucket{{{sel}}}[5m])))",
    }


def traffic_share(t: FloatArray, sim: Simulation) -> FloatArray:
    """The share of the peak request rate at each moment: a daily cycle and quiet weekends."""
    hour = (t % 86400) / 3600
    phase = 2 * math.pi * (hour - sim.quietest_hour) / 24
    daily = sim.night_share + (1 - sim.night_share) * ((1 - np.cos(phase)) / 2) ** 2
    weekday = ((t - MONDAY) // 86400 % 7).astype(int)
    weekly = np.where(weekday >= 5, sim.weekend_share, 1.0)
    out: FloatArray = daily * weekly
    return out


def _windowed(per_step: FloatArray, width: int) -> FloatArray:
    """Sums over the last `width` steps (the rate window), the first ones over what exists."""
    c = np.concatenate([[0.0], np.cumsum(per_step)])
    idx = np.arange(1, len(per_step) + 1)
    out: FloatArray = c[idx] - c[np.maximum(idx - width, 0)]
    return out


def _spread(flags: FloatArray, width: int) -> FloatArray:
    """The largest value over the last `width` steps: a p95 over the window sees the slow
    minutes until they leave it."""
    out = flags.copy()
    for lag in range(1, width):
        out[lag:] = np.maximum(out[lag:], flags[:-lag])
    return out


def simulate(sim: Simulation | None = None) -> History:
    """request_rate, error_ratio (events: request_rate) and latency_p95, with the incidents."""
    sim = sim or Simulation()
    rng = np.random.default_rng(sim.seed)
    step = float(sim.step_s)
    n = int(sim.days * 86400 // step)
    t: FloatArray = (sim.start + step * np.arange(1, n + 1)).astype(np.float64)
    width = max(1, round(sim.window_s / step))

    rate = sim.peak_rps * traffic_share(t, sim) * np.exp(rng.normal(0, 0.1, n))
    requests = rng.poisson(rate * step).astype(np.float64)
    p_error = np.full(n, sim.error_ratio)
    slow = np.zeros(n)  # the p95 of the slow requests, where some are slow

    for kind, lo, hi in _bursts(sim, rng, n, step):
        if kind == "errors":
            p_error[lo:hi] = np.maximum(p_error[lo:hi], rng.uniform(0.05, 0.3))
        else:
            slow[lo:hi] = np.maximum(slow[lo:hi], rng.uniform(0.8, 3.0))
    incidents = sim.known_incidents()
    for inc in incidents:
        first, end = int(np.searchsorted(t, inc.start)), int(np.searchsorted(t, inc.end))
        if inc.signal == "latency_p95":
            slow[first:end] = np.maximum(slow[first:end], inc.level)
        else:
            p_error[first:end] = np.maximum(p_error[first:end], inc.level)
    errors = rng.binomial(requests.astype(np.int64), np.clip(p_error, 0, 1)).astype(np.float64)

    req_w = _windowed(requests, width)
    err_w = _windowed(errors, width)
    has = req_w > 0
    noise = rng.normal(0, 1, n) * (0.05 + 0.8 / np.sqrt(req_w + 1))
    p95 = sim.latency_s * (1 + 0.3 * traffic_share(t, sim)) * np.exp(noise)
    p95 = np.maximum(p95, _spread(slow, width))

    queries = {**default_queries(sim.service), **(sim.queries or {})}
    specs = {
        "request_rate": SignalSpec(
            name="request_rate",
            kind=SignalKind.TRAFFIC,
            unit=SignalUnit.PER_SECOND,
            bad_direction="down",
            query=queries["request_rate"],
        ),
        "error_ratio": SignalSpec(
            name="error_ratio",
            kind=SignalKind.ERRORS,
            unit=SignalUnit.RATIO,
            bad_direction="up",
            slo=0.05,
            critical=True,
            events="request_rate",
            query=queries["error_ratio"],
        ),
        "latency_p95": SignalSpec(
            name="latency_p95",
            kind=SignalKind.LATENCY,
            unit=SignalUnit.SECONDS,
            bad_direction="up",
            slo=1.0,
            critical=True,
            query=queries["latency_p95"],
        ),
    }
    values: dict[str, tuple[FloatArray, FloatArray]] = {
        "request_rate": (t, req_w / (width * step)),
        "error_ratio": (t[has], err_w[has] / req_w[has]),
        "latency_p95": (t[has], np.round(p95[has], 4)),
    }
    return History(
        service=sim.service,
        step_s=step,
        signals={k: SignalHistory(specs[k], *values[k]) for k in specs},
        incidents=tuple(
            KnownIncident(start=i.start, end=i.end, signal=i.signal, source="simulated")
            for i in incidents
        ),
        source=f"simulated: {sim.days} days of {sim.service} (seed {sim.seed})",
    )


def _bursts(
    sim: Simulation, rng: np.random.Generator, n: int, step: float
) -> list[tuple[str, int, int]]:
    """Short transients at any hour: (errors | latency, first step, end step)."""
    count = int(rng.poisson(sim.bursts_per_day * sim.days))
    lo_min, hi_min = sim.burst_minutes
    out = []
    for _ in range(count):
        first = int(rng.integers(0, n))
        length = max(1, round(int(rng.integers(lo_min, hi_min + 1)) * 60 / step))
        kind = "errors" if rng.random() < 0.5 else "latency"
        out.append((kind, first, min(n, first + length)))
    return out
