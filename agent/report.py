"""The post-deploy health report: what the judge saw in every signal, and what to do now.

`build_report` gathers the facts from a deploy bundle (recorded, or captured live): the verdict
at one moment, a before/after row per signal from the verdict's findings, when each signal first
reached each tier and whether it went back to healthy (the judge stepped at every look up to
that moment, with no look-ahead), the error log patterns that are new or grew since the deploy
started, and the conclusion (keep, pause or roll back, and why). `write_report` renders those
facts as `report.md`, `report.json`, a self-contained `report.html` and one PNG chart per signal.

Every string from the data (service, versions, signal names, log lines, reasons) is escaped
for the format it goes into; log lines are redacted first.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

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

Decision = Literal["keep", "pause", "roll back"]

TOP_PATTERNS = 5
_DECISIONS: dict[int, Decision] = {0: "keep", 1: "keep", 2: "pause", 3: "roll back"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VerdictSummary(_Model):
    at: datetime
    tier: int
    tier_name: str
    status: str
    deploy_caused: bool | None
    reasons: tuple[str, ...]


class SignalRow(_Model):
    """One signal before and after the deploy, from the verdict's finding, in the signal's unit
    (a success ratio judged on its failures is shown as the success ratio)."""

    baseline: float | None
    current: float | None
    change: float | None  # (current - baseline) / |baseline|
    effect: float | None  # the judge's effect: relative change in the bad direction
    baseline_samples: int
    current_samples: int
    baseline_events: float | None
    current_events: float | None
    p_value: float | None
    threshold: float | None
    slo: float | None
    past_slo: bool
    tier: int
    status: str
    window: str
    comparison: str
    deploy_caused: bool | None
    reason: str


class Transition(_Model):
    at: datetime
    tier: int
    status: str


class SignalHistory(_Model):
    """The signal at every look from the deploy start to the report's moment."""

    onset: datetime | None  # the first look at tier >= 1
    first_at: dict[int, datetime | None]  # tier 1..3 -> first look at that tier or above
    peak_tier: int
    episodes: int  # stretches of looks at tier >= 1
    resolved_at: datetime | None  # back at tier 0 from this look to the end
    end_tier: int
    end_status: str
    transitions: tuple[Transition, ...]  # every change of tier or status


class SignalReport(_Model):
    name: str
    kind: str
    unit: str
    critical: bool
    row: SignalRow
    history: SignalHistory
    story: str  # what happened to the signal, in a sentence or two
    chart: str | None = None  # path of its chart, relative to the report


class LogPattern(_Model):
    status: str
    template: str
    example: str
    before: int
    after: int
    growth: float | None
    first_seen_after: datetime | None


class LogEvidence(_Model):
    before_from: datetime
    split: datetime
    after_to: datetime
    lines_before: int
    lines_after: int
    new: int
    grew: int
    patterns: tuple[LogPattern, ...]  # the most suspicious new or grown ones


class GroundTruth(_Model):
    """The bundle's `expect` (simulated or labelled deploys only); the judge never reads it."""

    tier: int
    onset: datetime | None
    deploy_caused: bool | None


class Conclusion(_Model):
    decision: Decision
    why: str
    decided_at: datetime | None  # the look at which the judge first reached the deciding tier


class HealthReport(_Model):
    bundle: str
    source: str
    service: str
    environment: str | None
    deploy_id: str
    version: str
    previous_version: str
    strategy: str
    commit: str | None
    started_at: datetime
    finished_at: datetime | None
    baseline_from: datetime
    at: datetime
    step_s: float
    looks: int
    verdict: VerdictSummary
    first_at: dict[int, datetime | None]  # the deploy: tier 1..3 -> first look at it or above
    peak_tier: int
    signals: tuple[SignalReport, ...]
    logs: LogEvidence | None
    logs_note: str | None  # why there is no log evidence
    missing: dict[str, str]  # sources that could not be read, and why
    expected: GroundTruth | None
    conclusion: Conclusion


@dataclass(frozen=True)
class ReportFiles:
    markdown: Path
    json: Path
    html: Path
    charts: dict[str, Path]

    @property
    def paths(self) -> list[Path]:
        return [self.markdown, self.json, self.html, *self.charts.values()]


# ---------------------------------------------------------------------------------------------
# Facts


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


def _when(moment: datetime, start: datetime) -> str:
    return f"{clock(moment)} ({offset(moment, start)})"


def _tier_label(tier: int) -> str:
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
        f"{_tier_label(tier)} at {_when(moment, start)}" for moment, tier in steps.items()
    )
    text = f"{name} first reached {reached}"
    if h.episodes > 1:
        text += f"; it was anomalous in {h.episodes} separate stretches"
    if h.resolved_at is not None:
        text += f"; back to healthy at {_when(h.resolved_at, start)} and healthy to the end."
    elif h.end_tier == h.peak_tier:
        text += f"; still {_tier_label(h.end_tier)}, {h.end_status}, at the end."
    else:
        text += f"; {_tier_label(h.end_tier)}, {h.end_status}, at the end."
    return text + f" At the end: {row.reason}."


def _conclusion(verdicts: Sequence[Verdict], final: Verdict, start: datetime) -> Conclusion:
    peak = max((v.tier for v in verdicts), default=0)
    decision = _DECISIONS[peak]
    first = next((v for v in verdicts if v.tier == peak), None)
    decided_at = _dt(first.at) if first is not None and peak > 0 else None
    now = f"at the end ({clock(_dt(final.at))}) the verdict is {_tier_label(final.tier)}"
    if first is not None and peak >= 2:
        what = "roll back" if peak == 3 else "pause the rollout and ask a human"
        why = (
            f"the judge reached {_tier_label(peak)} at {_when(_dt(first.at), start)}, "
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
            why = (
                f"keep, and watch: the judge warned at {_when(_dt(warning.at), start)} but never "
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


# ---------------------------------------------------------------------------------------------
# Formatting


def fmt_value(value: float | None, unit: str) -> str:
    """A value in its signal's unit, for people."""
    if value is None:
        return "-"
    if unit == SignalUnit.RATIO:
        return f"{value:.3%}"
    if unit == SignalUnit.PERCENT:
        return f"{value:.4g}%"
    if unit == SignalUnit.SECONDS:
        return f"{value * 1000:.4g} ms" if abs(value) < 1 else f"{value:.4g} s"
    if unit == SignalUnit.BYTES:
        size = value
        for prefix in ("B", "KiB", "MiB", "GiB"):
            if abs(size) < 1024:
                return f"{size:.4g} {prefix}"
            size /= 1024
        return f"{size:.4g} TiB"
    if unit == SignalUnit.PER_SECOND:
        return f"{value:.4g}/s"
    return f"{value:.4g}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.2g}"


def _caused(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "n/a"}[value]


def _slo(sig: SignalReport) -> str:
    if sig.row.slo is None:
        return "-"
    return fmt_value(sig.row.slo, sig.unit)


def _samples(row: SignalRow) -> str:
    return f"{row.baseline_samples} / {row.current_samples}"


def _table(report: HealthReport) -> tuple[list[str], list[list[str]]]:
    """The before/after table as plain text cells (escaped by each renderer)."""
    head = [
        "signal",
        "baseline",
        "current",
        "change",
        "samples (before / after)",
        "p-value",
        "threshold",
        "SLO",
        "past SLO",
        "tier",
        "status",
    ]
    rows = [
        [
            sig.name + (" *" if sig.critical else ""),
            fmt_value(sig.row.baseline, sig.unit),
            fmt_value(sig.row.current, sig.unit),
            _pct(sig.row.change),
            _samples(sig.row),
            _p(sig.row.p_value),
            _p(sig.row.threshold),
            _slo(sig),
            "yes" if sig.row.past_slo else "no",
            str(sig.row.tier),
            sig.row.status,
        ]
        for sig in report.signals
    ]
    return head, rows


def _facts(report: HealthReport) -> list[tuple[str, str]]:
    start = report.started_at
    out = [
        ("service", report.service),
        ("environment", report.environment or "-"),
        ("deploy", report.deploy_id),
        ("versions", f"{report.previous_version} → {report.version}"),
        ("strategy", report.strategy),
        ("commit", report.commit or "-"),
        ("started", clock(start)),
        (
            "rollout finished",
            "-" if report.finished_at is None else _when(report.finished_at, start),
        ),
        (
            "window judged",
            f"{clock(start)} to {_when(report.at, start)}: {report.looks} looks, "
            f"one every {report.step_s:g} s",
        ),
        ("baseline", f"{clock(report.baseline_from)} to {clock(start)}"),
        ("source", report.source),
    ]
    if report.expected is not None:
        truth = f"tier {report.expected.tier}"
        if report.expected.onset is not None:
            truth += f", onset {_when(report.expected.onset, start)}"
        out.append(("ground truth (bundle expect)", truth))
    return out


def _firsts(report: HealthReport) -> list[str]:
    return [
        f"{_tier_label(tier)}: " + ("never" if moment is None else _when(moment, report.started_at))
        for tier, moment in sorted(report.first_at.items())
    ]


def _verdict_line(report: HealthReport) -> str:
    v = report.verdict
    return (
        f"{_tier_label(v.tier)} at {clock(v.at)}, {v.status}, deploy-caused: "
        f"{_caused(v.deploy_caused)}"
    )


# ---------------------------------------------------------------------------------------------
# Markdown

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def md(text: str) -> str:
    """Untrusted text as inert Markdown: one line, no markup, no HTML."""
    flat = " ".join(text.split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(flat, quote=False))


def render_markdown(report: HealthReport) -> str:
    out = [f"# Deploy health report: {md(report.service)} {md(report.deploy_id)}", ""]
    out += ["| | |", "|---|---|"]
    out += [f"| {name} | {md(value)} |" for name, value in _facts(report)]
    out += ["", "## Conclusion", ""]
    out += [f"**{report.conclusion.decision.upper()}**: {md(report.conclusion.why)}", ""]
    out += ["## Verdict", "", md(_verdict_line(report)), ""]
    out += [f"- {md(reason)}" for reason in report.verdict.reasons]
    head, rows = _table(report)
    out += ["", "## Signals before and after the deploy", ""]
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(md(cell) for cell in row) + " |" for row in rows]
    out += ["", "\\* critical signal; the p-value is adjusted for the windows tested.", ""]
    out += ["## Anomalies and their resolution", "", "The deploy first reached:", ""]
    out += [f"- {md(line)}" for line in _firsts(report)]
    out += [""] + [f"- {md(sig.story)}" for sig in report.signals]
    out += ["", "## Log evidence", ""]
    if report.logs is not None:
        lg = report.logs
        out.append(
            md(
                f"{lg.lines_before} warning/error lines from {clock(lg.before_from)} to the "
                f"deploy, {lg.lines_after} since (to {clock(lg.after_to)}); patterns new: "
                f"{lg.new}, grown: {lg.grew}."
            )
        )
        out.append("")
    if report.logs is not None and report.logs.patterns:
        out += ["| status | before | after | first seen | pattern | example |", "|---" * 6 + "|"]
        for p in report.logs.patterns:
            seen = "-" if p.first_seen_after is None else clock(p.first_seen_after)
            cells = [p.status, str(p.before), str(p.after), seen, p.template, p.example]
            out.append("| " + " | ".join(md(c) for c in cells) + " |")
    if report.logs_note:
        out.append(md(report.logs_note.capitalize() + "."))
    for source, why in sorted(report.missing.items()):
        out.append(f"- {md(source)} unavailable: {md(why)}")
    charted = [sig for sig in report.signals if sig.chart]
    if charted:
        out += ["", "## Charts", ""]
        for sig in charted:
            assert sig.chart is not None
            out += [f"![{md(sig.name)}]({sig.chart})", ""]
    return "\n".join(out).rstrip("\n") + "\n"


# ---------------------------------------------------------------------------------------------
# HTML

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .5em;
text-align:left;vertical-align:top}th{background:#f4f4f4}td.n{text-align:right}
.t0{color:#1a7f37}.t1{color:#9a6700}.t2{color:#bc4c00}.t3{color:#cf222e;font-weight:bold}
.decision{font-size:1.2em}figure{margin:1em 0}img{max-width:100%}code{white-space:pre-wrap}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def render_html(report: HealthReport, charts: Mapping[str, bytes] | None = None) -> str:
    """A self-contained page; `charts` (signal -> PNG bytes) are embedded as data URIs."""
    charts = charts or {}
    title = f"Deploy health report: {report.service} {report.deploy_id}"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">",
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        "<table>",
    ]
    out += [f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in _facts(report)]
    out.append("</table>")
    c = report.conclusion
    tier = report.peak_tier
    out += [
        "<h2>Conclusion</h2>",
        f'<p class="decision t{tier}"><strong>{_e(c.decision.upper())}</strong></p>',
        f"<p>{_e(c.why)}</p>",
        "<h2>Verdict</h2>",
        f'<p class="t{report.verdict.tier}">{_e(_verdict_line(report))}</p><ul>',
    ]
    out += [f"<li>{_e(reason)}</li>" for reason in report.verdict.reasons]
    out.append("</ul><h2>Signals before and after the deploy</h2><table><tr>")
    head, rows = _table(report)
    out += [f"<th>{_e(h)}</th>" for h in head]
    out.append("</tr>")
    for sig, row in zip(report.signals, rows, strict=True):
        cells = "".join(
            f'<td class="n">{_e(cell)}</td>' if 0 < i < 8 else f"<td>{_e(cell)}</td>"
            for i, cell in enumerate(row)
        )
        out.append(f'<tr class="t{sig.row.tier}">{cells}</tr>')
    out += [
        "</table><p>* critical signal; the p-value is adjusted for the windows tested.</p>",
        "<h2>Anomalies and their resolution</h2><p>The deploy first reached:</p><ul>",
    ]
    out += [f"<li>{_e(line)}</li>" for line in _firsts(report)]
    out.append("</ul><ul>")
    out += [f'<li class="t{sig.history.peak_tier}">{_e(sig.story)}</li>' for sig in report.signals]
    out.append("</ul><h2>Log evidence</h2>")
    if report.logs is not None:
        lg = report.logs
        out.append(
            f"<p>{lg.lines_before} warning/error lines from {_e(clock(lg.before_from))} to the "
            f"deploy, {lg.lines_after} since (to {_e(clock(lg.after_to))}); patterns new: "
            f"{lg.new}, grown: {lg.grew}.</p>"
        )
    if report.logs is not None and report.logs.patterns:
        out.append(
            "<table><tr><th>status</th><th>before</th><th>after</th><th>first seen</th>"
            "<th>pattern</th><th>example</th></tr>"
        )
        for p in report.logs.patterns:
            seen = "-" if p.first_seen_after is None else clock(p.first_seen_after)
            out.append(
                f"<tr><td>{_e(p.status)}</td><td class='n'>{p.before}</td>"
                f"<td class='n'>{p.after}</td><td>{_e(seen)}</td>"
                f"<td><code>{_e(p.template)}</code></td><td><code>{_e(p.example)}</code></td></tr>"
            )
        out.append("</table>")
    if report.logs_note:
        out.append(f"<p>{_e(report.logs_note.capitalize())}.</p>")
    if report.missing:
        out.append("<ul>")
        out += [
            f"<li>{_e(src)} unavailable: {_e(why)}</li>"
            for src, why in sorted(report.missing.items())
        ]
        out.append("</ul>")
    shown = [sig for sig in report.signals if sig.name in charts]
    if shown:
        out.append("<h2>Charts</h2>")
    for sig in shown:
        data = base64.b64encode(charts[sig.name]).decode("ascii")
        out.append(
            f'<figure><img alt="{_e(sig.name)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_e(sig.story)}</figcaption></figure>"
        )
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# Files

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def safe_name(text: str) -> str:
    """`text` as one path component: no separators, no leading dot."""
    return _UNSAFE.sub("_", text).lstrip(".") or "_"


def default_out(deploy_id: str) -> Path:
    return Path(f"vigil-report-{safe_name(deploy_id)}")


def write_report(bundle: Bundle, report: HealthReport, out: Path) -> ReportFiles:
    """Charts, then `report.md`, `report.json` and `report.html`, in `out`."""
    from agent.report_charts import chart_png

    try:
        (out / "charts").mkdir(parents=True, exist_ok=True)
        pngs: dict[str, bytes] = {}
        chart_paths: dict[str, Path] = {}
        used: set[str] = set()
        signals = []
        for sig in report.signals:
            name = safe_name(sig.name)
            while name in used:
                name += "_"
            used.add(name)
            relative = f"charts/{name}.png"
            pngs[sig.name] = chart_png(bundle, bundle.manifest.signal(sig.name), sig, report)
            chart_paths[sig.name] = out / relative
            chart_paths[sig.name].write_bytes(pngs[sig.name])
            signals.append(sig.model_copy(update={"chart": relative}))
        report = report.model_copy(update={"signals": tuple(signals)})
        files = ReportFiles(
            out / "report.md", out / "report.json", out / "report.html", chart_paths
        )
        files.markdown.write_text(render_markdown(report), encoding="utf-8")
        files.json.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
        files.html.write_text(render_html(report, pngs), encoding="utf-8")
    except OSError as exc:
        raise VigilError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    return files
