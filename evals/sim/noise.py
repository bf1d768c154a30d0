"""Noise and time-shape primitives of the simulator; every draw comes from the caller's rng.

A sample stamped t covers the scrape interval (t - step, t]; shapes are averaged over it,
so an onset between two grid points shows as a partial effect in the first sample after it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.signal import lfilter

from agent.bundle.series import FloatArray

Rng = np.random.Generator
Shape = Callable[[FloatArray], FloatArray]

_SUBSAMPLES = 6


def ar1(rng: Rng, n: int, rho: float, sigma: float) -> FloatArray:
    """A stationary AR(1) series with lag-1 correlation rho and marginal deviation sigma."""
    shocks = rng.normal(0.0, sigma * math.sqrt(1.0 - rho * rho), n)
    shocks[0] = rng.normal(0.0, sigma)
    # lfilter runs x[i] = rho * x[i-1] + e[i] in C: the loop would dominate suite time.
    out: FloatArray = np.asarray(lfilter([1.0], [1.0, -rho], shocks), dtype=np.float64)
    return out


def lognormal_ar1(rng: Rng, n: int, rho: float, sigma: float) -> FloatArray:
    """A positive multiplier with mean 1 whose log is AR(1)."""
    return np.exp(ar1(rng, n, rho, sigma) - sigma * sigma / 2.0)


def diurnal(t: FloatArray, amplitude: float, peak_hour: float) -> FloatArray:
    """Daily traffic shape: 1 + amplitude at the peak hour (UTC), 1 - amplitude twelve hours on."""
    hours = (t % 86400.0) / 3600.0
    out: FloatArray = 1.0 + amplitude * np.cos(2.0 * math.pi * (hours - peak_hour) / 24.0)
    return out


def interval_mean(shape: Shape, t: FloatArray, step: float) -> FloatArray:
    """Mean of shape(u) over each scrape interval (t - step, t]."""
    offsets = (np.arange(_SUBSAMPLES) + 0.5) / _SUBSAMPLES * step
    grid = t[:, None] - offsets[None, :]
    out: FloatArray = shape(grid.ravel()).reshape(grid.shape).mean(axis=1)
    return out


def after(at: float) -> Shape:
    """0 before `at`, 1 from it on."""
    return lambda u: (u >= at).astype(np.float64)


def decay(at: float, tau: float) -> Shape:
    """0 before `at`, then exp(-(u - at) / tau)."""
    return lambda u: np.where(u >= at, np.exp(-np.clip(u - at, 0.0, None) / tau), 0.0)


def ramp(at: float, span: float) -> Shape:
    """0 before `at`, rising linearly to 1 over `span` seconds, then 1."""
    return lambda u: np.clip((u - at) / span, 0.0, 1.0)


def since(at: float) -> Shape:
    """Seconds elapsed since `at` (0 before it)."""
    return lambda u: np.clip(u - at, 0.0, None)


def sawtooth(at: float, period: float, low: float, high: float) -> Shape:
    """1 before `at`, then climbs from low to high every `period` seconds and drops back."""

    def shape(u: FloatArray) -> FloatArray:
        phase = np.mod(np.clip(u - at, 0.0, None), period) / period
        return np.where(u >= at, low + (high - low) * phase, 1.0)

    return shape


def bursts(
    rng: Rng, n: int, per_sample: float, forced: tuple[int, int] | None = None
) -> FloatArray:
    """Multiplier with transient bursts: 1-2 samples (rarely 3) at x3-15, Poisson in time.

    `forced` = (lo, hi) adds one burst somewhere in samples lo..hi-1.
    """
    mult = np.ones(n)
    starts = [int(i) for i in np.flatnonzero(rng.random(n) < per_sample)]
    if forced is not None and forced[1] > forced[0]:
        starts.append(int(rng.integers(forced[0], forced[1])))
    for i in starts:
        length = int(rng.choice(3, p=[0.6, 0.33, 0.07])) + 1
        mult[i : i + length] *= float(np.exp(rng.uniform(math.log(3.0), math.log(15.0))))
    return mult


def spikes(rng: Rng, n: int, prob: float, low: float, high: float) -> FloatArray:
    """Multiplier with one-sample spikes of +low..+high, each sample with probability prob."""
    hit = rng.random(n) < prob
    size = rng.uniform(low, high, n)
    out: FloatArray = np.where(hit, 1.0 + size, 1.0)
    return out


def gap_runs(rng: Rng, n: int, runs: int, shortest: int, longest: int) -> list[tuple[int, int]]:
    """`runs` (first index, length) pairs of missing scrapes within n samples."""
    out = []
    for _ in range(runs):
        length = int(rng.integers(shortest, longest + 1))
        first = int(rng.integers(0, max(1, n - length)))
        out.append((first, length))
    return out


def round_sig(values: FloatArray, digits: int) -> FloatArray:
    """Round to `digits` significant digits: exporters rarely carry more, and files stay small."""
    finite = np.isfinite(values) & (values != 0)
    mags = np.zeros_like(values)
    mags[finite] = np.floor(np.log10(np.abs(values[finite])))
    scale = 10.0 ** (digits - 1 - mags)
    out: FloatArray = np.where(finite, np.round(values * scale) / scale, values)
    return out


def log_uniform(rng: Rng, low: float, high: float) -> float:
    """A draw spread evenly in log space: small and large effects equally likely per decade."""
    return float(np.exp(rng.uniform(math.log(low), math.log(high))))
