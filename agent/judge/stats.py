"""Small, fast statistical building blocks of the judge (scalar math where arrays are tiny)."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import betainc

from agent.bundle.series import FloatArray

# Median of a chi-square variable with one degree of freedom: scales a robust dispersion.
# Share of squared residuals kept, and E[X | X below its 90th percentile] for X ~ chi-square(1)
# (= P(chi-square(3) < q90) / 0.9, since x times the chi-square(1) density is the chi-square(3)
# density).
_TRIM_KEEP = 0.9
_CHI2_1_TRIMMED_MEAN = 0.6230154841346819
_MAD_TO_SD = 1.482602218505602


def median(values: FloatArray) -> float:
    """Median of a small 1-d array (np.median's generality costs ~10x on tiny arrays)."""
    n = values.shape[0]
    if n == 0:
        return math.nan
    ordered = values.copy()
    ordered.sort()
    mid = n // 2
    return float(ordered[mid]) if n % 2 else 0.5 * float(ordered[mid - 1] + ordered[mid])


def normal_sf(z: float) -> float:
    """P(Z >= z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def count_excess_pvalue(
    bad_now: float, events_now: float, bad_base: float, events_base: float, dispersion: float
) -> float:
    """One-sided p-value that the current bad-event rate exceeds the baseline rate.

    Conditional binomial test: given all bad events, under equal rates the share falling
    in the current window is Binomial(total, events_now / (events_now + events_base)).
    Counts are divided by `dispersion` (quasi-likelihood) so overdispersed noise is not
    mistaken for evidence. It accounts for baseline uncertainty, so a zero-error baseline
    does not make one new error significant.
    """
    if events_now <= 0 or bad_now <= 0:
        return 1.0
    share = events_now / (events_now + events_base)
    x = bad_now / dispersion
    total = x + bad_base / dispersion
    if x <= 0:
        return 1.0
    # P(X >= x) for X ~ Binomial(total, share), continuous in x via the incomplete beta.
    return float(betainc(x, total - x + 1.0, share))


def rate_interval(bad: float, events: float, dispersion: float) -> tuple[float, float]:
    """~95 % Wilson interval of a rate, widened for overdispersion."""
    if events <= 0:
        return (0.0, 1.0)
    n = events / dispersion
    p = bad / events
    z2 = 1.96**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = 1.96 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def robust_dispersion(bad: FloatArray, events: FloatArray, rate: float) -> tuple[float, float]:
    """(dispersion, lag-1 autocorrelation) of per-sample counts around a common rate.

    The dispersion is the mean squared Pearson residual with the top tenth dropped (so rare
    bursts do not inflate it), over the same trimmed mean of a chi-square(1); unlike a median
    it stays unbiased for small counts. The autocorrelation is of the residuals, winsorised
    at the same cut so one burst does not look like a persistent drift.
    """
    keep = events > 0
    if int(keep.sum()) < 8 or rate <= 0:
        return 1.0, 0.0
    expected = events[keep] * rate
    resid = (bad[keep] - expected) / np.sqrt(expected * (1.0 - min(rate, 0.999999)))
    squared = np.sort(resid * resid)
    kept = squared[: max(1, math.ceil(_TRIM_KEEP * squared.shape[0]))]
    phi = float(kept.mean()) / _CHI2_1_TRIMMED_MEAN
    cut = math.sqrt(float(kept[-1]))
    return max(1.0, phi), lag1_autocorrelation(np.clip(resid, -cut, cut))


def block_dispersion(bad: FloatArray, events: FloatArray, rate: float, block: int) -> float:
    """Dispersion of sums over `block` consecutive samples, measured directly.

    Non-overlapping blocks; the worst block is left out when there are eight or more, so a
    single burst does not set it. 1.0 when there are fewer than four blocks.
    """
    blocks = bad.shape[0] // block
    if blocks < 4 or rate <= 0:
        return 1.0
    used = blocks * block
    b = bad[:used].reshape(blocks, block).sum(axis=1)
    e = events[:used].reshape(blocks, block).sum(axis=1) * rate
    keep = e > 0
    if int(keep.sum()) < 4:
        return 1.0
    r2 = np.sort((b[keep] - e[keep]) ** 2 / (e[keep] * (1.0 - min(rate, 0.999999))))
    if r2.shape[0] >= 8:
        r2 = r2[:-1]
    return max(1.0, float(r2.mean()))


def lag1_autocorrelation(values: FloatArray) -> float:
    """Lag-1 autocorrelation clipped to [0, 0.95] (negative values are treated as none)."""
    if values.shape[0] < 8:
        return 0.0
    centred = values - float(np.add.reduce(values)) / values.shape[0]
    denom = float(np.dot(centred, centred))
    if denom <= 0:
        return 0.0
    rho = float(np.dot(centred[:-1], centred[1:])) / denom
    return min(0.95, max(0.0, rho))


def robust_location_scale(values: FloatArray) -> tuple[float, float]:
    """Median and MAD-based standard deviation, floored so a flat series is not exact."""
    med = median(values)
    mad = median(np.abs(values - med)) * _MAD_TO_SD
    floor = max(abs(med) * 0.005, 1e-12)
    return med, max(mad, floor)


def variance_inflation(rho: float) -> float:
    """Variance inflation of a mean of AR(1) samples with lag-1 correlation rho."""
    return (1.0 + rho) / (1.0 - rho)


def theil_sen(t: FloatArray, v: FloatArray, z: float = 1.96) -> tuple[float, float, float]:
    """Theil-Sen slope with Sen's rank-based interval: (slope, low, high) per unit of t."""
    n = t.shape[0]
    i, j = np.triu_indices(n, k=1)
    dt = t[j] - t[i]
    keep = dt > 0
    slopes = np.sort((v[j] - v[i])[keep] / dt[keep])
    count = slopes.shape[0]
    if count == 0:
        return 0.0, 0.0, 0.0
    slope = median(slopes)
    spread = z * math.sqrt(n * (n - 1) * (2 * n + 5) / 18.0)
    lo_idx = max(0, math.floor((count - spread) / 2.0))
    hi_idx = min(count - 1, math.ceil((count + spread) / 2.0))
    return slope, float(slopes[lo_idx]), float(slopes[hi_idx])


def holm_thresholds(p_values: list[float], alpha: float) -> list[float]:
    """Holm step-down: the threshold each p-value is compared with (0 once a step fails)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda k: (p_values[k], k))
    thresholds = [0.0] * m
    for rank, k in enumerate(order):
        level = alpha / (m - rank)
        if p_values[k] > level:
            # Holm stops at the first failure; later (larger) p-values cannot pass.
            for rest in order[rank:]:
                thresholds[rest] = level
            break
        thresholds[k] = level
    return thresholds
