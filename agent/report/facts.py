"""Facts: the verdict at one moment, a before/after row per signal, when each signal first
reached each tier and whether it recovered (the judge stepped at every look, no look-ahead),
the error log patterns new or grown since the deploy, and the conclusion.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from agent.bundle import yamlpos
from agent.bundle.model import Bundle, LogLine, SignalUnit, format_time
from agent.bundle.reader import MANIFEST
from agent.errors import BundleError, VigilError
from agent.judge.core import judge_prepared
from agent.judge.prepared import PreparedDeploy, PreparedSignal, prepare
from agent.judge.settings import JudgeSettings
from agent.judge.verdict import TIER_NAMES, SignalFinding, Verdict
from agent.logmine import mine, split_at
from agent.redact import redact
from agent.report.model import (
    _DECISIONS,
    TOP_PATTERNS,
    Conclusion,
    GroundTruth,
    HealthReport,
    LogEvidence,
    LogPattern,
    SignalHistory,
    SignalReport,
    SignalRow,
    Transition,
    VerdictSummary,
)


def check_deploy_id(bundle: Bundle, deploy_id: str) -> None:
    """Raise a BundleError naming `deploy.id`'s line unless the bundle is that deploy."""
    actual = bundle.manifest.deploy.id
    if actual == deploy_id:
        return
    file = (bundle.path or Path(".")) / MANIFEST
    line = None
    try:
        _, root = yamlpos.load(file.read_text(encoding="utf-8-sig"))
        line = yamlpos.locate(root, ("deploy", "id")).line
    except (OSError, ValueError):
        pass  # the bundle was read, so this does not happen; the message stands without a line
    message = f"this bundle is deploy {actual!r}, not {deploy_id!r}"
    raise BundleError(file, message, line=line, field="deploy.id")


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def look_moments(start: float, step: float, at: float) -> list[float]:
    """Every look from the deploy start to `at`, one step apart, and `at` itself."""
    if at < start:
        return []
    count = int((at - start) // step + 1e-9) + 1
    moments = [start + i * step for i in range(count)]
    if moments[-1] < at:
        moments.append(at)
    return moments


def _unit_value(sig: PreparedSignal, value: float | None) -> float | None:
    """A finding's value in the signal's unit: counted signals are judged as bad fractions."""
    if value is None or not sig.counted:
        return value
    scale = 0.01 if sig.spec.unit == SignalUnit.PERCENT else 1.0
    ratio = value if sig.spec.bad_direction == "up" else 1.0 - value
    return ratio / scale


def _row(sig: PreparedSignal, f: SignalFinding) -> SignalRow:
    baseline = _unit_value(sig, f.baseline)
    current = _unit_value(sig, f.current)
    change = None
    if baseline is not None and current is not None and baseline != 0:
        change = (current - baseline) / abs(baseline)
    return SignalRow(
        baseline=baseline,
        current=current,
        change=change,
        effect=f.effect,
        baseline_samples=f.baseline_samples,
        current_samples=f.current_samples,
        baseline_events=f.baseline_events,
        current_events=f.current_events,
        p_value=f.p_value,
        threshold=f.threshold,
        slo=f.slo,
        past_slo=f.past_slo,
        tier=f.tier,
        status=f.status,
        window=f.window,
        comparison=f.comparison,
        deploy_caused=f.deploy_caused,
        reason=f.reason,
    )


def _first_at(seq: Sequence[tuple[float, int]]) -> dict[int, datetime | None]:
    firsts: dict[int, datetime | None] = {1: None, 2: None, 3: None}
    for moment, tier in seq:
        for reached in range(1, tier + 1):
            if firsts[reached] is None:
                firsts[reached] = _dt(moment)
    return firsts


def _history(seq: Sequence[tuple[float, int, str]]) -> SignalHistory:
    transitions: list[Transition] = []
    episodes = 0
    last: tuple[int, str] | None = None
    last_bad: int | None = None
    for i, (moment, tier, status) in enumerate(seq):
        if (tier, status) != last:
            transitions.append(Transition(at=_dt(moment), tier=tier, status=status))
        if tier >= 1:
            if last is None or last[0] == 0:
                episodes += 1
            last_bad = i
        last = (tier, status)
    firsts = _first_at([(m, t) for m, t, _ in seq])
    resolved = None
    if last_bad is not None and last_bad + 1 < len(seq):
        resolved = _dt(seq[last_bad + 1][0])  # every later look is at tier 0
    end_tier, end_status = (seq[-1][1], seq[-1][2]) if seq else (0, "not_started")
    return SignalHistory(
        onset=firsts[1],
        first_at=firsts,
        peak_tier=max((t for _, t, _ in seq), default=0),
        episodes=episodes,
        resolved_at=resolved,
        end_tier=end_tier,
        end_status=end_status,
        transitions=tuple(transitions),
    )


def clock(moment: datetime) -> str:
    return format_time(moment)


def offset(moment: datetime, start: datetime) -> str:
    """`+3m15s` after the deploy start (or `-45s` before it)."""
    seconds = round((moment - start).total_seconds())
    sign = "-" if seconds < 0 else "+"
    minutes, secs = divmod(abs(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "")
    return sign + text + (f"{secs}s" if secs or not text else "")


def when_text(moment: datetime, start: datetime) -> str:
    return f"{clock(moment)} ({offset(moment, start)})"


def tier_label(tier: int) -> str:
    return f"tier {tier} ({TIER_NAMES[tier]})"


def _story(name: str, h: SignalHistory, row: SignalRow, start: datetime) -> str:
    if h.peak_tier == 0:
        if row.status in ("insufficient", "no_data", "not_deploy_caused"):
            return f"{name} never reached tier 1; at the end: {row.status} ({row.reason})."
        if row.current is None:
            return f"{name} stayed at tier 0: {row.reason}."
        return f"{name} stayed healthy: tier 0 at every look."
    # The highest tier reached at each distinct moment, in time order.
    steps: dict[datetime, int] = {}
    for tier, moment in sorted(h.first_at.items()):
        if moment is not None:
            steps[moment] = tier
    reached = ", then ".join(
        f"{tier_label(tier)} at {when_text(moment, start)}" for moment, tier in steps.items()
    )
    text = f"{name} first reached {reached}"
    if h.episodes > 1:
        text += f"; it was anomalous in {h.episodes} separate stretches"
    if h.resolved_at is not None:
        text += f"; back to healthy at {when_text(h.resolved_at, start)} and healthy to the end."
    elif h.end_tier == h.peak_tier:
        text += f"; still {tier_label(h.end_tier)}, {h.end_status}, at the end."
    else:
        text += f"; {tier_label(h.end_tier)}, {h.end_status}, at the end."
    return text + f" At the end: {row.reason}."


def _conclusion(verdicts: Sequence[Verdict], final: Verdict, start: datetime) -> Conclusion:
    peak = max((v.tier for v in verdicts), default=0)
    decision = _DECISIONS[peak]
    first = next((v for v in verdicts if v.tier == peak), None)
    decided_at = _dt(first.at) if first is not None and peak > 0 else None
    now = f"at the end ({clock(_dt(final.at))}) the verdict is {tier_label(final.tier)}"
    if first is not None and peak >= 2:
        what = "roll back" if peak == 3 else "pause the rollout and ask a human"
        why = (
            f"the judge reached {tier_label(peak)} at {when_text(_dt(first.at), start)}, "
            f"deploy-caused: {first.reasons[0]}; Vigil would {what} at that look"
        )
        if final.tier < peak:
            why += f"; {now}: {final.reasons[0]}"
        return Conclusion(decision=decision, why=why, decided_at=decided_at)
    if peak == 1:
        caused = [v.deploy_caused for v in verdicts if v.tier == 1]
        warning = next(v for v in verdicts if v.tier == 1)
        if False in caused:
            blamed = next(v for v in verdicts if v.tier == 1 and v.deploy_caused is False)
            why = (
                "keep the deploy and escalate: the judge warned, but the regression is not "
                f"deploy-caused, so rolling back would not end it ({blamed.reasons[0]})"
            )
        else:
            warned = when_text(_dt(warning.at), start)
            why = (
                f"keep, and watch: the judge warned at {warned} but never "
                f"reached a pause ({warning.reasons[0]}); {now}"
            )
        return Conclusion(decision=decision, why=why, decided_at=decided_at)
    if final.status == "insufficient_evidence":
        why = "keep watching: too little evidence to call it healthy yet: " + "; ".join(
            final.reasons
        )
    elif final.status == "not_started":
        why = "keep watching: the deploy had not started at the report's moment"
    else:
        why = "keep: no signal changed materially against its baseline at any look"
    return Conclusion(decision=decision, why=why, decided_at=None)


def _log_evidence(
    lines: Sequence[LogLine], before_from: float, split: float, at: float
) -> tuple[LogEvidence | None, str | None]:
    if at <= split:
        return None, "no time has passed since the deploy started"
    window = [line for line in lines if before_from <= line.ts.timestamp() <= at]
    before, after = split_at(window, _dt(split))
    mining = mine(before, after, before_s=split - before_from, after_s=at - split)
    patterns = tuple(
        LogPattern(
            status=p.status,
            template=redact(p.template),
            example=redact(p.example),
            before=p.before,
            after=p.after,
            growth=p.growth,
            first_seen_after=p.first_seen_after,
        )
        for p in mining.suspicious[:TOP_PATTERNS]
    )
    evidence = LogEvidence(
        before_from=_dt(before_from),
        split=_dt(split),
        after_to=_dt(at),
        lines_before=mining.total_before,
        lines_after=mining.total_after,
        new=len(mining.new),
        grew=len(mining.grew),
        patterns=patterns,
    )
    return evidence, None if patterns else "no new or grown warning or error patterns"


def _data_start(bundle: Bundle) -> float | None:
    firsts = [float(s.t[0]) for cs in bundle.signals.values() for s in cs.values() if len(s)]
    return min(firsts) if firsts else None


def step_verdicts(prep: PreparedDeploy, at: float, settings: JudgeSettings) -> list[Verdict]:
    """The verdict at every look from the deploy start to `at` (each from samples up to it)."""
    return [judge_prepared(prep, t, settings) for t in look_moments(prep.start, prep.step, at)]


def build_report(
    bundle: Bundle,
    at: float | None = None,
    *,
    settings: JudgeSettings | None = None,
    source: str | None = None,
    missing: Mapping[str, str] | None = None,
) -> HealthReport:
    """The health report of `bundle`'s deploy at Unix time `at` (default: `watch_until`)."""
    s = settings or JudgeSettings()
    m = bundle.manifest
    start = m.deploy.started_at.timestamp()
    moment = m.watch_until.timestamp() if at is None else at
    if not math.isfinite(moment) or moment < start:
        raise VigilError(
            f"the report's moment {format_time(_dt(moment)) if math.isfinite(moment) else moment}"
            f" is before the deploy started ({format_time(m.deploy.started_at)})"
        )
    prep = prepare(bundle, s)
    verdicts = step_verdicts(prep, moment, s)
    final = verdicts[-1]
    data_start = _data_start(bundle)
    baseline_from = start - s.baseline_s
    if data_start is not None:
        baseline_from = min(start, max(baseline_from, data_start))
    signals = []
    for i, sig in enumerate(prep.signals):
        seq = [(v.at, v.findings[i].tier, v.findings[i].status) for v in verdicts]
        history = _history(seq)
        row = _row(sig, final.findings[i])
        signals.append(
            SignalReport(
                name=sig.spec.name,
                kind=sig.spec.kind.value,
                unit=sig.spec.unit.value,
                critical=sig.spec.critical,
                row=row,
                history=history,
                story=_story(sig.spec.name, history, row, m.deploy.started_at),
            )
        )
    logs: LogEvidence | None = None
    note: str | None = "the deploy has no logs"
    if bundle.logs is not None:
        logs, note = _log_evidence(bundle.logs, min(baseline_from, start - 1.0), start, moment)
    expect = m.expect
    return HealthReport(
        bundle=m.name,
        source=source or (f"bundle {bundle.path}" if bundle.path else f"bundle {m.name}"),
        service=m.service,
        environment=m.environment,
        deploy_id=m.deploy.id,
        version=m.deploy.version,
        previous_version=m.deploy.previous_version,
        strategy=m.deploy.strategy.value,
        commit=m.deploy.commit,
        started_at=m.deploy.started_at,
        finished_at=m.deploy.finished_at,
        baseline_from=_dt(baseline_from),
        at=_dt(moment),
        step_s=m.step_seconds,
        looks=len(verdicts),
        verdict=VerdictSummary(
            at=_dt(final.at),
            tier=final.tier,
            tier_name=final.tier_name,
            status=final.status,
            deploy_caused=final.deploy_caused,
            reasons=final.reasons,
        ),
        first_at=_first_at([(v.at, v.tier) for v in verdicts]),
        peak_tier=max(v.tier for v in verdicts),
        signals=tuple(signals),
        logs=logs,
        logs_note=note,
        missing=dict(missing or {}),
        expected=None
        if expect is None
        else GroundTruth(tier=expect.tier, onset=expect.onset, deploy_caused=expect.deploy_caused),
        conclusion=_conclusion(verdicts, final, m.deploy.started_at),
    )
