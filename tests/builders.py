"""Hand-built deploy bundles for judge tests: exact, small, and readable."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from agent.bundle.model import Bundle, BundleManifest
from agent.bundle.series import Series, SignalData

START = datetime(2026, 2, 8, 13, 45, tzinfo=UTC)
STEP = 15.0

ValueFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def manifest(
    signals: list[dict[str, Any]],
    *,
    strategy: str = "rolling",
    watch_min: float = 20,
    finished_min: float | None = 2,
    name: str = "test-bundle",
) -> BundleManifest:
    deploy: dict[str, Any] = {
        "id": "deploy-1",
        "version": "v2",
        "previous_version": "v1",
        "started_at": START,
        "strategy": strategy,
    }
    if finished_min is not None:
        deploy["finished_at"] = START + timedelta(minutes=finished_min)
    return BundleManifest.model_validate(
        {
            "format": 1,
            "name": name,
            "service": "checkout",
            "deploy": deploy,
            "step": "15s",
            "watch_until": START + timedelta(minutes=watch_min),
            "signals": signals,
        }
    )


ERRORS = {
    "name": "error_ratio",
    "kind": "errors",
    "unit": "ratio",
    "bad_direction": "up",
    "slo": 0.01,
    "critical": True,
    "events": "request_rate",
}
TRAFFIC = {"name": "request_rate", "kind": "traffic", "unit": "per_second", "bad_direction": "down"}
LATENCY = {
    "name": "latency_p95",
    "kind": "latency",
    "unit": "seconds",
    "bad_direction": "up",
    "slo": 0.5,
    "critical": True,
}
MEMORY = {"name": "memory_bytes", "kind": "saturation", "unit": "bytes", "bad_direction": "up"}


def times(before_min: float = 30, after_min: float = 20) -> np.ndarray:
    start = START.timestamp()
    return np.arange(start - before_min * 60, start + after_min * 60 + 1e-9, STEP)


def bundle(
    m: BundleManifest,
    series: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]],
) -> Bundle:
    data = SignalData(
        {
            name: {c: Series(t.astype(float), v.astype(float)) for c, (t, v) in cs.items()}
            for name, cs in series.items()
        }
    )
    return Bundle(manifest=m, signals=data)


def service(
    *,
    rps: float = 200.0,
    base_error: float = 0.002,
    latency: float = 0.2,
    seed: int = 0,
    error_fn: ValueFn | None = None,
    latency_fn: ValueFn | None = None,
    rps_fn: ValueFn | None = None,
    signals: tuple[dict[str, Any], ...] = (TRAFFIC, ERRORS, LATENCY),
    after_min: float = 20,
) -> Bundle:
    """A whole-service bundle with binomial errors and AR(1) latency; fns alter the truth."""
    rng = np.random.default_rng(seed)
    t = times(after_min=after_min)
    rel = t - START.timestamp()
    rate = np.full(t.shape, rps) if rps_fn is None else rps_fn(t, rel)
    n = rng.poisson(rate * STEP)
    p = np.full(t.shape, base_error) if error_fn is None else error_fn(t, rel)
    errors = rng.binomial(n, np.clip(p, 0, 1))
    ratio = np.where(n > 0, errors / np.maximum(n, 1), 0.0)
    ar = np.zeros(t.shape)
    for i in range(1, t.shape[0]):
        ar[i] = 0.6 * ar[i - 1] + rng.normal(0, 0.04)
    lat = latency * np.exp(ar)
    if latency_fn is not None:
        lat = lat * latency_fn(t, rel)
    values = {"request_rate": n / STEP, "error_ratio": ratio, "latency_p95": lat}
    m = manifest(list(signals), watch_min=after_min)
    return bundle(
        m, {s["name"]: {"": (t, values[s["name"]])} for s in signals if s["name"] in values}
    )
