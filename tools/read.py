"""Read-only tools: metrics, deploys, the judge's verdict, runbooks."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, Field

from agent.backends.base import SourceUnavailable
from agent.runbooks import PlanContext, plan_steps
from tools.base import ToolFailure, tool
from tools.context import ToolContext


class QueryMetricsInput(BaseModel):
    query: str = Field(
        description="a signal name (e.g. error_ratio) or a PromQL expression", min_length=1
    )
    minutes: float = Field(60, gt=0, le=24 * 60, description="how far back from now to look")
    step_seconds: float = Field(60, gt=0, le=3600, description="resolution of the points")
    instant: bool = Field(False, description="only the latest value of each series")


class SeriesSummary(BaseModel):
    name: str
    labels: dict[str, str]
    points: list[tuple[float, float | None]]
    latest: float | None
    minimum: float | None
    maximum: float | None
    mean: float | None
    gaps: int


class QueryMetricsOutput(BaseModel):
    query: str
    start: float
    end: float
    series: list[SeriesSummary]


@tool("query_metrics")
def query_metrics(ctx: ToolContext, args: QueryMetricsInput) -> QueryMetricsOutput:
    """Query a metric over the last N minutes (or its latest value). Gaps are reported as
    null, never as zero. Use signal names from judge_deploy's findings, or PromQL."""
    if ctx.metrics is None:
        ctx.missing.add("metrics")
        raise ToolFailure("no metrics source is configured")
    start, end = ctx.now - args.minutes * 60, ctx.now
    try:
        found = ctx.metrics.query_range(args.query, start, end, args.step_seconds)
    except SourceUnavailable as exc:
        raise ToolFailure(str(exc)) from None
    out = []
    for s in found:
        values = [p.v for p in s.points if p.v is not None and math.isfinite(p.v)]
        points = [(p.t, p.v) for p in s.points]
        out.append(
            SeriesSummary(
                name=s.name,
                labels=s.labels,
                points=points[-1:] if args.instant else points,
                latest=values[-1] if values else None,
                minimum=min(values) if values else None,
                maximum=max(values) if values else None,
                mean=sum(values) / len(values) if values else None,
                gaps=len(points) - len(values),
            )
        )
    return QueryMetricsOutput(query=args.query, start=start, end=end, series=out)


class ListDeploysInput(BaseModel):
    hours: float = Field(6, gt=0, le=7 * 24, description="how far back to look")


class DeploySummary(BaseModel):
    id: str
    version: str
    previous_version: str | None
    started_at: str
    finished_at: str | None
    strategy: str | None
    minutes_before_incident: float
    minutes_before_now: float


class ListDeploysOutput(BaseModel):
    service: str
    deploys: list[DeploySummary]


@tool("list_deploys")
def list_deploys(ctx: ToolContext, args: ListDeploysInput) -> ListDeploysOutput:
    """List the incident service's deploys in the last N hours, newest first, with how long
    before the incident each one started."""
    if ctx.deploys is None:
        ctx.missing.add("deploys")
        raise ToolFailure("no deploy source is configured")
    found = ctx.deploys.deploys(ctx.incident.service, ctx.now - args.hours * 3600, ctx.now)
    return ListDeploysOutput(
        service=ctx.incident.service,
        deploys=[
            DeploySummary(
                id=d.id,
                version=d.version,
                previous_version=d.previous_version,
                started_at=d.started_at.isoformat(),
                finished_at=d.finished_at.isoformat() if d.finished_at else None,
                strategy=d.strategy,
                minutes_before_incident=round(
                    (ctx.incident.started_at - d.started_at.timestamp()) / 60, 1
                ),
                minutes_before_now=round((ctx.now - d.started_at.timestamp()) / 60, 1),
            )
            for d in found
        ],
    )


class JudgeDeployInput(BaseModel):
    deploy_id: str | None = Field(
        None, description="the deploy to judge; default the service's latest deploy"
    )


class FindingSummary(BaseModel):
    signal: str
    kind: str
    critical: bool
    tier: int
    status: str
    reason: str
    baseline: float | None = None
    current: float | None = None
    effect: float | None = None
    p_value: float | None = None
    slo: float | None = None
    past_slo: bool = False


class JudgeDeployOutput(BaseModel):
    deploy_id: str
    version: str
    tier: int
    tier_name: str
    status: str
    deploy_caused: bool | None
    reasons: list[str]
    findings: list[FindingSummary]


@tool("judge_deploy")
def judge_deploy(ctx: ToolContext, args: JudgeDeployInput) -> JudgeDeployOutput:
    """Run Vigil's deterministic statistical judge on a deploy now: tier 0 healthy, 1 warn,
    2 pause, 3 roll back, whether the regression is caused by the deploy, and the evidence
    per signal. Only this verdict can authorise a rollback."""
    deploy = ctx.suspect_deploy(args.deploy_id)
    if deploy is None:
        raise ToolFailure(f"no deploy {args.deploy_id or ''} found for {ctx.incident.service}")
    v = ctx.verdict(deploy)
    if v is None:
        raise ToolFailure(f"the judge cannot read the metrics: {ctx.verdict_error(deploy)}")
    return JudgeDeployOutput(
        deploy_id=deploy.id,
        version=deploy.version,
        tier=v.tier,
        tier_name=v.tier_name,
        status=v.status,
        deploy_caused=v.deploy_caused,
        reasons=list(v.reasons),
        findings=[
            FindingSummary(
                signal=f.signal,
                kind=f.kind,
                critical=f.critical,
                tier=f.tier,
                status=f.status,
                reason=f.reason,
                baseline=_round(f.baseline),
                current=_round(f.current),
                effect=_round(f.effect),
                p_value=_round(f.p_value),
                slo=f.slo,
                past_slo=f.past_slo,
            )
            for f in v.findings
        ],
    )


def _regressed_kinds(ctx: ToolContext) -> tuple[str, ...]:
    """Kinds of the signals the judge finds worse now, worst first (to match runbooks)."""
    if ctx.deploys is None:
        return ()
    found = ctx.deploys.deploys(ctx.incident.service, ctx.now - 6 * 3600, ctx.now)
    if not found:
        return ()
    verdict = ctx.verdict(found[0])
    if verdict is None:
        return ()
    bad = sorted((f for f in verdict.findings if f.tier >= 1), key=lambda f: -f.tier)
    return tuple(dict.fromkeys(f.kind for f in bad))


def _round(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(f"{x:.4g}")


class GetRunbookInput(BaseModel):
    name: str | None = Field(None, description="a runbook name; default: match the alert")


class RunbookOutcome(BaseModel):
    when: dict[str, Any]  # top-level result fields: a value, or {min, max, in, not, empty}
    means: str
    then: str | None  # a remediation id or a later step id


class RunbookStep(BaseModel):
    id: str
    tool: str
    arguments: dict[str, Any]
    check: str
    outcomes: list[RunbookOutcome]


class RunbookOption(BaseModel):
    id: str
    action: str
    when: str
    requires: str
    by: str
    how: str


class RunbookOutput(BaseModel):
    name: str
    title: str
    trigger: str
    allows_pause: bool
    preconditions: list[str]
    steps: list[RunbookStep]
    skipped_steps: list[str]
    remediation: list[RunbookOption]
    post_actions: list[str]
    escalation_triggers: list[str]
    body: str
    others: list[str]


def _plan_context(ctx: ToolContext) -> PlanContext:
    """The suspect deploy and the service's signals by kind, regressed first."""
    deploy = ctx.suspect_deploy()
    if deploy is None:
        return PlanContext()
    verdict = ctx.verdict(deploy)
    findings = [] if verdict is None else verdict.findings
    return PlanContext.from_findings(
        deploy.id, [{"signal": f.signal, "kind": f.kind, "tier": f.tier} for f in findings]
    )


def _usable(ctx: ToolContext) -> list[str]:
    """The runbooks this incident's service may use, by name."""
    books = ctx.runbooks.runbooks.items()
    return sorted(n for n, b in books if b.service in (None, ctx.incident.service))


@tool("get_runbook")
def get_runbook(ctx: ToolContext, args: GetRunbookInput) -> RunbookOutput:
    """Read the runbook for this alert (or a named one): its diagnostic steps as ready tool
    calls (run them in order; each says what its results mean and which option they lead
    to), the remediation options with the authority each needs, and what to do after.
    Runbooks never grant more than the policy guard allows."""
    service = ctx.incident.service
    known = ", ".join(_usable(ctx)) or "none"
    if args.name is not None:
        book = ctx.runbooks.get(args.name)
        if book is None or book.service not in (None, service):
            raise ToolFailure(f"no runbook named {args.name!r} for {service}; available: {known}")
    else:
        matches = ctx.runbooks.match(ctx.incident.alertname, _regressed_kinds(ctx), service=service)
        if not matches:
            raise ToolFailure(
                f"no runbook matches alert {ctx.incident.alertname!r} or the regressed "
                f"signals; available: {known}"
            )
        book = matches[0]
    plan = plan_steps(book, _plan_context(ctx))
    others = [n for n in _usable(ctx) if n != book.name]
    return RunbookOutput(
        name=book.name,
        title=book.title,
        trigger=book.trigger,
        allows_pause=book.allows_pause,
        preconditions=list(book.preconditions),
        steps=[
            RunbookStep(
                id=s.id,
                tool=s.tool,
                arguments=s.arguments,
                check=s.check,
                outcomes=[
                    RunbookOutcome(when=o.when_json(), means=o.means, then=o.then)
                    for o in s.outcomes
                ],
            )
            for s in plan.calls
        ],
        skipped_steps=[f"{s.id}: {s.reason}" for s in plan.skipped],
        remediation=[
            RunbookOption(
                id=r.id,
                action=r.action,
                when=r.when,
                requires=r.requires.describe(),
                by=r.requires.by,
                how=r.how,
            )
            for r in book.remediation
        ],
        post_actions=[
            p.what + (f" ({p.tool})" if p.tool else "") + (" [human]" if p.by == "human" else "")
            for p in book.post_actions
        ],
        escalation_triggers=[f"{t.condition} ({t.severity})" for t in book.escalation_triggers],
        body=book.body,
        others=others,
    )
