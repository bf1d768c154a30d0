"""Reference judges: how teams judge deploys today, implemented faithfully for comparison.

- static: seed thresholds (errors > 10 % or p95 > 5 s, sustained for 5 minutes) -> roll back.
- flagger: Flagger-style canary analysis: every `interval` (1 min) each critical signal with an
  SLO is averaged over the last interval and checked against it; `threshold` failed checks
  (default 1) -> roll back. Failed checks accumulate and are not reset by passing ones.
- kayenta: Kayenta/NetflixACAJudge-style: at every look each signal's post-deploy samples are
  compared with the baseline by a two-sided Mann-Whitney U test (alpha 0.05); a significant
  change in the bad direction fails the signal; a failing critical signal scores 0; score =
  % of signals passing; >= 95 pass, 75-95 marginal (tier 1), < 75 fail (roll back).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import mannwhitneyu

from agent.bundle.model import Bundle, SignalKind, SignalSpec, SignalUnit
from agent.bundle.series import Series
from agent.judge.replay import TierAt


def _current(bundle: Bundle, spec: SignalSpec) -> Series | None:
    """The canary cohort when there is one, else the whole service."""
    return bundle.signals.series(spec.name, "canary") or bundle.signals.series(spec.name, "")


def _worse(value: float, threshold: float, direction: str) -> bool:
    return value < threshold if direction == "down" else value > threshold


class StaticThresholdJudge:
    name = "static"

    def __init__(self, error_ratio: float = 0.10, latency_s: float = 5.0, hold_s: float = 300):
        self.error_ratio, self.latency_s, self.hold_s = error_ratio, latency_s, hold_s

    def watch(self, bundle: Bundle) -> TierAt:
        start = bundle.manifest.deploy.started_at.timestamp()
        checks: list[tuple[Series, float]] = []
        for spec in bundle.manifest.signals:
            series = _current(bundle, spec)
            if series is None:
                continue
            if spec.kind == SignalKind.ERRORS and spec.unit in (
                SignalUnit.RATIO,
                SignalUnit.PERCENT,
            ):
                scale = 100.0 if spec.unit == SignalUnit.PERCENT else 1.0
                checks.append((series, self.error_ratio * scale))
            elif (
                spec.kind == SignalKind.LATENCY
                and spec.unit == SignalUnit.SECONDS
                and ("p95" in spec.name or "p50" not in spec.name)
            ):
                checks.append((series, self.latency_s))

        def tier_at(at: float) -> int:
            if at - start < self.hold_s:
                return 0
            for series, limit in checks:
                window = series.between(at - self.hold_s, at + 1e-6)
                post = window.t >= start
                if post.sum() >= 2 and bool(np.all(window.v[post] > limit)):
                    return 3
            return 0

        return tier_at


class FlaggerJudge:
    name = "flagger"

    def __init__(self, interval_s: float = 60.0, threshold: int = 1):
        self.interval_s, self.threshold = interval_s, threshold

    def watch(self, bundle: Bundle) -> TierAt:
        start = bundle.manifest.deploy.started_at.timestamp()
        specs = [s for s in bundle.manifest.signals if s.critical and s.slo is not None]
        cache: dict[int, int] = {}

        def failed_checks_until(at: float) -> int:
            count = 0
            k = 1
            while start + k * self.interval_s <= at:
                if k not in cache:
                    check = start + k * self.interval_s
                    fails = 0
                    for spec in specs:
                        series = _current(bundle, spec)
                        if series is None:
                            continue
                        window = series.between(check - self.interval_s, check + 1e-6)
                        assert spec.slo is not None
                        if len(window) and _worse(
                            float(window.v.mean()), spec.slo, spec.bad_direction
                        ):
                            fails = 1
                    cache[k] = fails
                count += cache[k]
                k += 1
            return count

        return lambda at: 3 if failed_checks_until(at) >= self.threshold else 0


class KayentaJudge:
    name = "kayenta"

    def __init__(self, alpha: float = 0.05, pass_score: float = 95, marginal: float = 75):
        self.alpha, self.pass_score, self.marginal = alpha, pass_score, marginal

    def watch(self, bundle: Bundle) -> TierAt:
        start = bundle.manifest.deploy.started_at.timestamp()
        pairs: list[tuple[SignalSpec, Series, Series]] = []
        for spec in bundle.manifest.signals:
            current = _current(bundle, spec)
            control = bundle.signals.series(spec.name, "baseline")
            whole = bundle.signals.series(spec.name, "")
            if current is None:
                continue
            if control is None or not len(control.between(start, float("inf"))):
                if whole is None:
                    continue
                control = whole.between(start - 3600, start)
            else:
                control = control.between(start, float("inf"))
            pairs.append((spec, current.between(start, float("inf")), control))

        def tier_at(at: float) -> int:
            total = passed = 0
            critical_failed = False
            for spec, current, control in pairs:
                cur = current.until(at).v
                ctl = (
                    control.until(at).v if control.t.size and control.t[0] >= start else (control.v)
                )
                if cur.size < 3 or ctl.size < 3:
                    continue
                total += 1
                p = float(mannwhitneyu(cur, ctl, alternative="two-sided").pvalue)
                shifted = np.median(cur) - np.median(ctl)
                bad = (
                    shifted > 0
                    if spec.bad_direction == "up"
                    else shifted < 0
                    if spec.bad_direction == "down"
                    else shifted != 0
                )
                if p < self.alpha and bad:
                    critical_failed = critical_failed or spec.critical
                else:
                    passed += 1
            if total == 0:
                return 0
            score = 0.0 if critical_failed else 100.0 * passed / total
            if score >= self.pass_score:
                return 0
            return 1 if score >= self.marginal else 3

        return tier_at
