"""The deterministic deploy judge: (bundle data up to T, settings) -> Verdict.

The judge is pure: it never reads `expect`, never looks past T, and the same input gives
the same verdict bit for bit. Tier 3 needs a critical signal that is significantly worse
than its baseline (Holm across signals, every sample of the short window on its own, or a
trimmed window), materially worse (effect gates), past its objective, and caused by the
deploy (canary worse than its baseline cohort; not already present before the deploy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from agent.bundle.model import Bundle, SignalKind, SignalUnit
from agent.judge.prepared import (
    CountStats,
    LevelStats,
    PreparedDeploy,
    PreparedSignal,
    Track,
    prepare,
)
from agent.judge.settings import JudgeSettings
from agent.judge.stats import count_excess_pvalue, holm_thresholds, median, theil_sen
from agent.judge.verdict import Comparison, FindingStatus, SignalFinding, Verdict, VerdictStatus
from agent.judge.windows import (
    WindowTest,
    aggregate_test,
    cohort_pvalue,
    control_vs_history,
    recent_pvalue,
    short_test,
)

_DEFAULT = JudgeSettings()
_STATUS: dict[int, FindingStatus] = {0: "ok", 1: "warn", 2: "regressed", 3: "breach"}


@dataclass(frozen=True, slots=True)
class _Analysis:
    sig: PreparedSignal
    tests: tuple[tuple[int, WindowTest], ...]  # (sign, test)
    p_value: float  # Bonferroni over this signal's windows
    hi: int  # samples of the current track up to the look
    finding: SignalFinding | None  # set when no test applies (no data, too early, trend)


# Signals that fresh pods push up for a while (cold caches, JIT, connection pools).
_WARMS_UP = frozenset({SignalKind.LATENCY, SignalKind.SATURATION})


def _fmt(value: float, sig: PreparedSignal) -> str:
    if sig.counted:
        return f"{value:.3%}"
    return f"{value:.4g}"


def _persistence(since_rollout: float, s: JudgeSettings) -> int:
    """How many consecutive samples must each be bad, given the time since the rollout ended."""
    k = s.persistence[0][1]
    for after, samples in s.persistence:
        if since_rollout >= after:
            k = samples
    return k


def _analyse(sig: PreparedSignal, prep: PreparedDeploy, at: float, s: JudgeSettings) -> _Analysis:
    spec = sig.spec
    track = sig.current
    hi = int(track.t.searchsorted(at, side="right"))

    def bare(status: FindingStatus, reason: str) -> _Analysis:
        finding = SignalFinding(
            spec.name,
            spec.kind.value,
            spec.critical,
            status,
            0,
            reason,
            slo=spec.slo,
            current_samples=hi,
        )
        return _Analysis(sig, (), 1.0, hi, finding)

    if sig.base is None:
        return bare("no_data", "no baseline samples before the deploy")
    if sig.control is not None and sig.extensive:
        return bare("ok", "a cohort's share of an extensive signal is not compared with history")
    if hi == 0 or at - track.t[hi - 1] > s.stale_steps * prep.step:
        if at - prep.start <= s.stale_steps * prep.step:
            return bare("insufficient", "deploy just started: no samples yet")
        return bare("no_data", "no recent samples (scrape gap or series missing)")
    k = _persistence(track.t[hi - 1] - prep.rollout_end, s)
    # Cold pods are slow for a while, and a spike on top of that looks like a step: in the
    # warm-up every sample of a latency or saturation window must be past the objective.
    partial = not (spec.kind in _WARMS_UP and track.t[hi - 1] < prep.warm_end)
    signs = (1, -1) if sig.sign == 0 else (sig.sign,)
    tests: list[tuple[int, WindowTest]] = []
    for sign in signs:
        if (
            hi >= k
            and track.t[hi - k] >= at - (k + 1.5) * prep.step
            and track.t[hi - k] >= prep.start + s.grace_s
        ):
            short = short_test(sig, track, hi, k, sig.base, sign, partial=partial)
            if short is not None:
                tests.append((sign, short))
        lo = int(track.t.searchsorted(at - s.mid_samples * prep.step, side="right"))
        if hi - lo >= s.mid_trim + 4:
            mid = aggregate_test(sig, "mid", track, lo, hi, s.mid_trim, sig.base, sign)
            if mid is not None:
                tests.append((sign, mid))
        lo = int(track.t.searchsorted(max(prep.warm_end, at - s.long_s)))
        if hi - lo >= s.min_long_samples:
            drop = max(s.mid_trim, int((hi - lo) * s.long_trim_fraction))
            long = aggregate_test(sig, "long", track, lo, hi, drop, sig.base, sign)
            if long is not None:
                # The halves only matter for a pause, which needs both of these.
                if long.p_value <= s.alpha and long.effect >= s.pause_effect[spec.kind]:
                    long = replace(long, halves_p=_halves_p(sig, track, lo, hi, drop, sign))
                else:
                    long = replace(long, halves_p=1.0)
                tests.append((sign, long))
    if not tests:
        if sig.pre_existing and sig.sign != 0 and sig.recent is not None and sig.base is not None:
            # Nothing to compare yet, but the minutes before the deploy were already worse
            # than the hour before them: whatever is alerting now began before this deploy.
            before, earlier = _level(sig.recent), _level(sig.base)
            reason = (
                f"too few samples since the deploy; not deploy-caused: {spec.name} was already "
                f"worse before the deploy started ({_fmt(before, sig)} vs {_fmt(earlier, sig)} "
                "earlier)"
            )
            finding = SignalFinding(
                spec.name,
                spec.kind.value,
                spec.critical,
                "not_deploy_caused",
                0,
                reason,
                comparison="recent",
                baseline=earlier,
                current=before,
                baseline_samples=sig.base.samples,
                current_samples=hi,
                slo=spec.slo,
                past_slo=_recent_past_slo(sig, sig.sign),
                deploy_caused=False,
            )
            return _Analysis(sig, (), 1.0, hi, finding)
        return bare("insufficient", "too few samples since the deploy")
    p = min(1.0, len(tests) * min(t.p_value for _, t in tests))
    return _Analysis(sig, tuple(tests), p, hi, None)


def _halves_p(sig: PreparedSignal, track: Track, lo: int, hi: int, drop: int, sign: int) -> float:
    """The larger p-value of the long window's two halves, each trimmed and tested alone.

    A pause within the SLO needs a shift that holds through the window, not one excursion.
    """
    assert sig.base is not None
    mid = (lo + hi) // 2
    worst = 0.0
    for a, b in ((lo, mid), (mid, hi)):
        half = aggregate_test(sig, "long", track, a, b, max(1, drop // 2), sig.base, sign)
        worst = max(worst, 1.0 if half is None else half.p_value)
    return worst


def _trend(
    sig: PreparedSignal, prep: PreparedDeploy, at: float, s: JudgeSettings
) -> SignalFinding | None:
    """Saturation that keeps growing after the warm-up (a leak): tier 2 at most."""
    spec = sig.spec
    base = sig.base
    if (
        spec.kind != SignalKind.SATURATION
        or spec.unit != SignalUnit.BYTES  # memory and disk leak; CPU follows load
        or sig.sign != 1
        or not isinstance(base, LevelStats)
    ):
        return None
    t, x = sig.current.t, sig.current.x
    lo = int(t.searchsorted(prep.start + s.trend_warmup_s))
    hi = int(t.searchsorted(at, side="right"))
    lo = max(lo, hi - 80)
    if hi - lo < 12 or t[hi - 1] - t[lo] < s.trend_min_s:
        return None
    slope, low, high = theil_sen(t[lo:hi], x[lo:hi], z=3.29)
    level = median(x[max(lo, hi - 4) : hi])
    scale = abs(base.centre) or 1.0
    per_hour = slope * 3600 / scale
    low_per_hour = low * 3600 / scale
    above = (level - base.centre) / scale
    if per_hour < s.trend_per_hour or above < s.trend_min_level:
        return None  # growing back to the old level is warm-up, not a leak
    tier, caused = 1, True
    status: FindingStatus = "trend"
    reason = (
        f"{spec.name} growing {per_hour:+.0%}/h of its baseline level "
        f"(95% CI low {low_per_hour:+.0%}/h), now {above:+.1%} vs baseline"
    )
    mid = (lo + hi) // 2
    older = theil_sen(t[lo:mid], x[lo:mid], z=0.0)[0] * 3600 / scale
    recent = theil_sen(t[mid:hi], x[mid:hi], z=0.0)[0] * 3600 / scale
    if sig.base_slope * 3600 / scale >= 0.5 * per_hour:
        tier, status, caused = 1, "not_deploy_caused", False
        reason += "; it was already growing before the deploy"
    elif recent < s.trend_deceleration * older:
        settled = recent < s.trend_per_hour
        tier, status = (0, "ok") if settled else (1, "trend")
        reason += (
            f"; growth is slowing ({recent:+.0%}/h lately vs {older:+.0%}/h before): "
            "settling after the restart, not a leak"
        )
    elif low_per_hour >= s.trend_per_hour:
        tier = 2
        reason += ": a leak-like trend (pause, not roll back)"
    return SignalFinding(
        spec.name,
        spec.kind.value,
        spec.critical,
        status,
        tier,
        reason,
        window="trend",
        comparison="trend",
        baseline=base.centre,
        current=level,
        baseline_samples=base.samples,
        current_samples=hi - lo,
        effect=above,
        interval=(low * 3600, high * 3600),
        slo=spec.slo,
        deploy_caused=caused,
    )


def _load_ratio(prep: PreparedDeploy, t0: float, t1: float) -> float:
    """Traffic over [t0, t1] relative to its baseline (1.0 when unknown).

    With cohorts, the load is the two cohorts' traffic together: every pod shares it.
    """
    sig = prep.traffic
    if sig is None or not isinstance(sig.base, LevelStats) or sig.base.centre <= 0:
        return 1.0
    total = 0.0
    for track in (sig.current, sig.control):
        if track is None:
            continue
        lo = int(track.t.searchsorted(t0))
        hi = int(track.t.searchsorted(t1, side="right"))
        if hi <= lo:
            return 1.0
        total += float(track.x[lo:hi].mean())
    return total / sig.base.centre


def _undetectable(
    sig: PreparedSignal, hi: int, prep: PreparedDeploy, level: float, s: JudgeSettings
) -> bool:
    """Would a rate right at the SLO still look like the baseline? Then we cannot say healthy."""
    base = sig.base
    if not sig.counted or not isinstance(base, CountStats) or sig.current.events is None:
        return False
    objective = sig.slo_bad if sig.slo_bad is not None else min(1.0, 5 * base.rate)
    events = float(sig.current.events[max(0, hi - int(s.long_s // prep.step)) : hi].sum())
    p = count_excess_pvalue(
        objective * events, events, base.bad, base.events, base.window_dispersion
    )
    return p > level


def _level(st: CountStats | LevelStats) -> float:
    return st.rate if isinstance(st, CountStats) else st.centre


def _recent_past_slo(sig: PreparedSignal, sign: int) -> bool:
    """Was the signal already past its objective in the minutes before the deploy?"""
    recent = sig.recent
    if recent is None or sig.slo_bad is None:
        return False
    value = recent.rate if isinstance(recent, CountStats) else recent.centre
    return value > sig.slo_bad if sign > 0 else value < sig.slo_bad


def _attribute_warning(
    sig: PreparedSignal,
    test: WindowTest,
    sign: int,
    gate: float,
    s: JudgeSettings,
    notes: list[str],
) -> bool | None:
    """Is a warning the deploy's doing? Only clear evidence either way gives an answer:
    the canary clearly worse than its baseline cohort (which is itself not degraded), or,
    without cohorts, a regression that was not already there before the deploy."""
    if sig.control is not None:
        hp, heff = control_vs_history(sig, test, sign)
        if hp <= s.alpha and heff >= gate:
            notes.append(f"the baseline cohort is degraded too ({heff:+.0%}, p={hp:.2g})")
            return False
        cp, ceff = cohort_pvalue(sig, test, sign)
        return True if cp <= s.warn_alpha and ceff >= gate else None
    if not sig.pre_existing:
        return True
    rp, reff = recent_pvalue(sig, test, sign)
    if reff < gate or (_recent_past_slo(sig, sign) and reff < 1.0):
        notes.append("it was already this bad before the deploy started")
        return False
    return True if rp <= s.warn_alpha else None


def _decide(
    a: _Analysis, threshold: float, warn_threshold: float, prep: PreparedDeploy, s: JudgeSettings
) -> SignalFinding:
    sig = a.sig
    spec = sig.spec
    n = len(a.tests)
    best: tuple[int, float, int, WindowTest] | None = None
    pause_gate = s.pause_effect[spec.kind]
    warn_gate = s.warn_effect[spec.kind]
    for sign, test in a.tests:
        adjusted = min(1.0, n * test.p_value)
        tier = 0
        warm = sig.current.t[test.lo] < prep.warm_end
        # Fresh pods are slower and hotter: within its SLO that is expected, not a warning.
        # Single samples are noisy: a warning there needs a pause-sized effect.
        if warm and not test.past_slo:
            warn_at = math.inf
        else:
            warn_at = pause_gate if warm or test.window == "short" else warn_gate
        if adjusted <= threshold:
            material = test.effect >= pause_gate and test.excess_events >= s.min_excess_events
            breach = spec.critical and test.past_slo
            if material and breach:
                tier = 3
            elif (
                material
                and not warm
                and test.window == "long"
                and n * test.halves_p <= warn_threshold
            ):
                # An in-SLO pause needs sustained evidence; short windows only roll back.
                tier = 2
            elif test.effect >= warn_at:
                tier = 1
        elif adjusted <= warn_threshold and test.effect >= warn_at:
            tier = 1
        key = (tier, -adjusted)
        if best is None or key > (best[0], -best[1]):
            best = (tier, adjusted, sign, test)
    assert best is not None
    tier, adjusted, sign, test = best
    caused: bool | None = None
    comparison: Comparison = "history"
    notes: list[str] = []
    if tier in (1, 2) and spec.kind in (SignalKind.SATURATION, SignalKind.LATENCY):
        load = _load_ratio(prep, sig.current.t[test.lo], sig.current.t[test.hi - 1])
        if load >= s.load_explains and 1 + test.effect <= load * (1 + warn_gate):
            tier = 0
            notes.append(f"traffic rose {load - 1:+.0%} over the same window, which explains it")
    if tier >= 2:
        caused = True
        if sig.control is not None:
            cp, ceff = cohort_pvalue(sig, test, sign)
            comparison = "cohort"
            hp, heff = control_vs_history(sig, test, sign)
            if cp > s.alpha or ceff < pause_gate:
                caused = False
                notes.append(
                    f"the baseline cohort is as bad (canary {ceff:+.0%} vs baseline, p={cp:.2g})"
                )
            elif hp <= s.alpha and heff >= pause_gate:
                # Old pods are failing too: rolling the canary back would not end it.
                caused = False
                notes.append(
                    f"the baseline cohort is degraded too ({heff:+.0%} vs before the deploy, "
                    f"p={hp:.2g}), though the canary is worse ({ceff:+.0%})"
                )
        if caused and sig.pre_existing:
            rp, reff = recent_pvalue(sig, test, sign)
            comparison = "recent"
            if _recent_past_slo(sig, sign) and (rp > s.alpha or reff < 1.0):
                # Already breaching: only a deploy that at least doubles it is to blame.
                caused = False
                notes.append("it was already past its SLO before the deploy started")
            elif rp > s.alpha or reff < pause_gate:
                caused = False
                notes.append("it was already this bad before the deploy started")
        if not caused:
            tier = 1
    elif tier == 1:
        caused = _attribute_warning(sig, test, sign, warn_gate, s, notes)
        if caused is not None:
            comparison = "cohort" if sig.control is not None else "recent"
    status: FindingStatus = _STATUS[tier]
    if caused is False:
        status = "not_deploy_caused"
    elif tier == 0 and _undetectable(sig, a.hi, prep, threshold / n, s):
        status = "insufficient"
        notes.append("too few events since the deploy to see an SLO breach yet")
    what = f"{spec.name} {_fmt(test.current, sig)} vs baseline {_fmt(test.reference, sig)}"
    if test.effect != math.inf:
        what += f" ({test.effect:+.0%})"
    what += f", {test.window} window of {test.samples} samples, p={adjusted:.2g}"
    what += f" (threshold {threshold:.2g})"
    if spec.slo is not None:
        what += ", past its SLO" if test.past_slo else ", within its SLO"
    if notes:
        what += ("; not deploy-caused: " if caused is False else "; ") + "; ".join(notes)
    return SignalFinding(
        spec.name,
        spec.kind.value,
        spec.critical,
        status,
        tier,
        what,
        window=test.window,
        comparison=comparison,
        baseline=test.reference,
        current=test.current,
        baseline_samples=sig.base.samples if sig.base else 0,
        current_samples=test.samples,
        baseline_events=getattr(sig.base, "events", None),
        current_events=test.events,
        effect=None if test.effect == math.inf else test.effect,
        interval=test.interval,
        p_value=adjusted,
        threshold=threshold,
        slo=spec.slo,
        past_slo=test.past_slo,
        deploy_caused=caused,
    )


def _explained_by_dependency(
    findings: list[SignalFinding], analyses: list[_Analysis], s: JudgeSettings
) -> list[SignalFinding]:
    """A dependency that was already degraded before the deploy, and still is, explains the
    service's own regressions: rolling back would not help, so they are not deploy-caused
    (the agent escalates instead)."""
    gate = s.pause_effect[SignalKind.DEPENDENCY]
    culprits = [
        f.signal
        for f, a in zip(findings, analyses, strict=True)
        if f.kind == SignalKind.DEPENDENCY.value
        and (a.sig.pre_existing or f.status == "not_deploy_caused")
        and (f.effect or 0.0) >= gate
        and (f.p_value if f.p_value is not None else 1.0) <= s.warn_alpha
    ]
    if not culprits:
        return findings
    note = f"; not deploy-caused: {', '.join(culprits)} was already degraded before the deploy"
    return [
        replace(
            f,
            tier=1,
            status="not_deploy_caused",
            deploy_caused=False,
            reason=f.reason + note,
        )
        if f.tier >= 2 and f.kind != SignalKind.DEPENDENCY.value
        else f
        for f in findings
    ]


def judge_prepared(prep: PreparedDeploy, at: float, settings: JudgeSettings = _DEFAULT) -> Verdict:
    """The verdict at Unix time `at` for a prepared deploy."""
    if at < prep.start:
        return Verdict(
            prep.service,
            prep.deploy_id,
            at,
            0,
            "not_started",
            None,
            ("the deploy has not started",),
        )
    analyses = [_analyse(sig, prep, at, settings) for sig in prep.signals]
    tested = [a for a in analyses if a.finding is None]
    m = max(len(tested), 1)
    thresholds = holm_thresholds([a.p_value for a in tested], settings.alpha)
    by_id = {id(a): th for a, th in zip(tested, thresholds, strict=True)}
    findings: list[SignalFinding] = []
    for a in analyses:
        if a.finding is not None:
            finding = a.finding
        else:
            finding = _decide(a, by_id[id(a)], settings.warn_alpha / m, prep, settings)
        trend = _trend(a.sig, prep, at, settings)
        if trend is not None and trend.tier >= max(finding.tier, 1):
            finding = trend
        findings.append(finding)
    findings = _explained_by_dependency(findings, analyses, settings)
    tier = max(f.tier for f in findings)
    caused: bool | None = None
    acting = [f for f in findings if f.deploy_caused is not None]
    if any(f.deploy_caused for f in acting if f.tier >= 2):
        caused = True
    elif any(f.deploy_caused is False for f in acting):
        caused = False
    elif acting:
        caused = True  # warnings only, each one explained by the deploy
    insufficient = any(f.critical and f.status in ("insufficient", "no_data") for f in findings)
    status: VerdictStatus = "insufficient_evidence" if tier == 0 and insufficient else "judged"
    reasons = tuple(
        f.reason
        for f in sorted(findings, key=lambda f: -f.tier)
        if f.tier > 0
        or f.status == "not_deploy_caused"
        or (f.critical and f.status in ("insufficient", "no_data"))
    ) or ("no material change against the baseline",)
    return Verdict(prep.service, prep.deploy_id, at, tier, status, caused, reasons, tuple(findings))


def judge(bundle: Bundle, at: float, settings: JudgeSettings | None = None) -> Verdict:
    """Judge `bundle`'s deploy at Unix time `at`, from the samples up to `at` only."""
    s = settings or _DEFAULT
    return judge_prepared(prepare(bundle, s), at, s)
