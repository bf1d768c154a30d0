"""Tools that gather evidence about a deploy: error patterns in its logs, suspects in its change.

Both work relative to the suspect deploy: logs are compared before and since it started, and
the change is ranked against everything the investigation knows at this moment (the judge's
regressed signals, the new or grown error patterns, the alert's words, the caller's terms).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from agent.backends.base import DeployInfo, SourceUnavailable
from agent.bundle.model import LogLine, SignalKind
from agent.logmine import LogMining, mine
from agent.suspects import Evidence, RegressedSignal, diff_summary, parse_change, rank_suspects
from tools.base import ToolFailure, tool
from tools.context import ToolContext

BASELINE_S = 30 * 60.0  # log history compared with the time since the deploy
_MAX_LINES = 20_000  # per window; the mining needs patterns, not every line of a flood


class ReadLogsInput(BaseModel):
    deploy_id: str | None = Field(
        None, description="compare logs before and since this deploy; default the latest one"
    )
    contains: str | None = Field(
        None, max_length=200, description="only lines containing this text (case-insensitive)"
    )
    baseline_minutes: float = Field(
        30, gt=0, le=24 * 60, description="how much log history before the deploy to compare"
    )
    max_patterns: int = Field(10, ge=1, le=50, description="how many patterns to return")


class PatternSummary(BaseModel):
    template: str
    example: str
    status: str  # new | grew | steady | shrank | gone
    before: int
    after: int
    per_minute_before: float
    per_minute_after: float
    first_seen_after: datetime | None = None
    stack_trace: str | None = None


class ReadLogsOutput(BaseModel):
    deploy_id: str | None
    window_before: tuple[datetime, datetime]
    window_after: tuple[datetime, datetime]
    lines_before: int
    lines_after: int
    new: int
    grew: int
    patterns: list[PatternSummary]


def _window(ctx: ToolContext, deploy: DeployInfo | None, baseline_s: float) -> tuple[float, float]:
    """(split, start): where 'after' begins, and where 'before' begins."""
    split = deploy.started_at.timestamp() if deploy is not None else ctx.incident.started_at
    split = min(split, ctx.now)
    return split, split - baseline_s


def _read(ctx: ToolContext, start: float, end: float, contains: str | None) -> list[LogLine]:
    assert ctx.logs is not None
    return ctx.logs.read(ctx.incident.service, start, end, contains=contains, limit=_MAX_LINES)


def mine_logs(
    ctx: ToolContext, deploy: DeployInfo | None, *, baseline_s: float, contains: str | None = None
) -> tuple[LogMining, float, float]:
    """Error patterns before and since the deploy; raises SourceUnavailable without logs."""
    if ctx.logs is None:
        raise SourceUnavailable("no log source is configured")
    key = ("logs", None if deploy is None else deploy.id, baseline_s, contains, ctx.now)
    if key in ctx.memo:
        cached: tuple[LogMining, float, float] = ctx.memo[key]
        return cached
    split, start = _window(ctx, deploy, baseline_s)
    before = [line for line in _read(ctx, start, split, contains) if line.ts.timestamp() < split]
    after = _read(ctx, split, ctx.now, contains)
    mining = mine(before, after, before_s=split - start, after_s=max(ctx.now - split, 1.0))
    ctx.memo[key] = (mining, start, split)
    return mining, start, split


@tool("read_logs")
def read_logs(ctx: ToolContext, args: ReadLogsInput) -> ReadLogsOutput:
    """Mine the service's warning and error logs into patterns (templates with the variable
    parts masked) and compare the time since the deploy with the time before it: which
    patterns are new, which grew, with counts, rates, an example line and any stack trace."""
    deploy = ctx.suspect_deploy(args.deploy_id)
    if args.deploy_id is not None and deploy is None:
        raise ToolFailure(f"no deploy {args.deploy_id} found for {ctx.incident.service}")
    try:
        mining, start, split = mine_logs(
            ctx, deploy, baseline_s=args.baseline_minutes * 60, contains=args.contains
        )
    except SourceUnavailable as exc:
        ctx.missing.add("logs")
        raise ToolFailure(str(exc)) from None
    return ReadLogsOutput(
        deploy_id=None if deploy is None else deploy.id,
        window_before=(_dt(start), _dt(split)),
        window_after=(_dt(split), _dt(ctx.now)),
        lines_before=mining.total_before,
        lines_after=mining.total_after,
        new=len(mining.new),
        grew=len(mining.grew),
        patterns=[
            PatternSummary(
                template=p.template,
                example=p.example,
                status=p.status,
                before=p.before,
                after=p.after,
                per_minute_before=round(p.rate_before * 60, 3),
                per_minute_after=round(p.rate_after * 60, 3),
                first_seen_after=p.first_seen_after,
                stack_trace=p.stack_trace,
            )
            for p in mining.patterns[: args.max_patterns]
        ],
    )


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


class FetchDiffInput(BaseModel):
    deploy_id: str | None = Field(None, description="the deploy; default the latest one")
    terms: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="extra words to match against the change (error text, function names)",
    )
    max_chars: int = Field(6000, ge=500, le=30_000, description="budget for the diff text")


class SuspectSummary(BaseModel):
    path: str
    change_type: str
    added: int
    removed: int
    score: float
    reasons: list[str]


class FetchDiffOutput(BaseModel):
    deploy_id: str
    version: str
    previous_version: str | None
    files_changed: int
    added: int
    removed: int
    suspects: list[SuspectSummary]
    evidence_used: list[str]
    diff: str


def gather_evidence(ctx: ToolContext, deploy: DeployInfo, terms: Sequence[str]) -> Evidence:
    """Everything known now that can point at a changed file; missing sources are noted."""
    signals: list[RegressedSignal] = []
    verdict = ctx.verdict(deploy)
    if verdict is not None:
        signals = [
            RegressedSignal(name=f.signal, kind=SignalKind(f.kind))
            for f in verdict.findings
            if f.tier >= 1
        ]
    messages: list[str] = []
    traces: list[str] = []
    if ctx.logs is not None:
        try:
            mining, _, _ = mine_logs(ctx, deploy, baseline_s=BASELINE_S)
        except SourceUnavailable:
            ctx.missing.add("logs")
        else:
            for p in (*mining.new, *mining.grew):
                messages.append(p.example)
                if p.stack_trace:
                    traces.append(p.stack_trace)
    else:
        ctx.missing.add("logs")
    words = [ctx.incident.summary] if ctx.incident.summary else []
    return Evidence(
        messages=tuple(messages),
        stack_traces=tuple(traces),
        signals=tuple(signals),
        terms=tuple([*words, *terms]),
    )


@tool("fetch_diff")
def fetch_diff(ctx: ToolContext, args: FetchDiffInput) -> FetchDiffOutput:
    """Fetch the code change a deploy shipped (files and hunks) and rank the changed files as
    suspects against the evidence: regressed signals, new or grown error patterns and stack
    frames from the logs, the alert's text and your extra terms. Most likely file first."""
    deploy = ctx.suspect_deploy(args.deploy_id)
    if deploy is None:
        raise ToolFailure(f"no deploy {args.deploy_id or ''} found for {ctx.incident.service}")
    if ctx.changes is None:
        ctx.missing.add("change")
        raise ToolFailure("no change source is configured")
    try:
        text = ctx.changes.diff(deploy)
    except SourceUnavailable as exc:
        ctx.missing.add("change")
        raise ToolFailure(str(exc)) from None
    try:
        change = parse_change(text)
    except ValueError as exc:
        raise ToolFailure(str(exc)) from None
    evidence = gather_evidence(ctx, deploy, args.terms)
    ranked = rank_suspects(change, evidence)
    by_path = {f.path: f for f in change.files}
    used = [f"{len(evidence.signals)} regressed signals", f"{len(evidence.messages)} log patterns"]
    if evidence.terms:
        used.append(f"{len(evidence.terms)} terms")
    return FetchDiffOutput(
        deploy_id=deploy.id,
        version=deploy.version,
        previous_version=deploy.previous_version,
        files_changed=len(change.files),
        added=change.added,
        removed=change.removed,
        suspects=[
            SuspectSummary(
                path=s.path,
                change_type=by_path[s.path].change_type.value,
                added=by_path[s.path].added,
                removed=by_path[s.path].removed,
                score=round(s.score, 3),
                reasons=list(s.reasons),
            )
            for s in ranked[:10]
        ],
        evidence_used=used,
        diff=diff_summary(change, args.max_chars, first=[s.path for s in ranked[:3]]),
    )
