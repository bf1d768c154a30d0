"""Tools that act: every call goes through the policy guard, and every decision is audited.

The facts the guard decides on are gathered here, by code: the judge's verdict for the deploy
computed at this moment, the incident's scope and severity from the alert, past actions from
the audit trail. The model supplies only the request (which deploy, its confidence, why).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

from agent.backends.base import ActionOutcome, DeployInfo, SourceUnavailable
from agent.guard import Action, ActionRequest, Decision, GuardFacts, decide
from tools.base import ToolFailure, tool
from tools.context import ToolContext

# A change that drops or rewrites data cannot be undone by rolling the code back.
_MIGRATION_PATH = re.compile(r"(?im)^\+\+\+ b/\S*(migration|migrate|schema|alembic|flyway)\S*")
_DESTRUCTIVE = re.compile(
    r"(?im)^\+.*\b(drop\s+(table|column)|truncate\s+table|alter\s+table\s+\S+\s+drop|"
    r"irreversible|delete\s+from)\b"
)


def irreversible_migration(diff: str) -> bool:
    """Does the change carry a migration that destroys data?"""
    return bool(_MIGRATION_PATH.search(diff)) and bool(_DESTRUCTIVE.search(diff))


def guard_facts(ctx: ToolContext, deploy: DeployInfo | None) -> GuardFacts:
    verdict = None if deploy is None else ctx.verdict(deploy)
    kinds = tuple(sorted({f.kind for f in verdict.findings if f.tier >= 1})) if verdict else ()
    books = ctx.runbooks.match(ctx.incident.alertname, kinds, service=ctx.incident.service)
    destructive = False
    if deploy is not None and ctx.changes is not None:
        try:
            destructive = irreversible_migration(ctx.changes.diff(deploy))
        except SourceUnavailable:
            ctx.missing.add("change")
    caused = None if verdict is None else verdict.deploy_caused
    if deploy is not None and ctx.incident.started_at < deploy.started_at.timestamp():
        caused = False  # the alert was firing before the deploy began
    return GuardFacts(
        now=ctx.now,
        service=ctx.incident.service,
        environment=ctx.incident.environment,
        severity=ctx.incident.severity,
        services_affected=ctx.incident.services_affected,
        deploy_id=None if deploy is None else deploy.id,
        verdict_tier=None if verdict is None else verdict.tier,
        deploy_caused=caused,
        irreversible_migration=destructive,
        runbook_allows_pause=any(b.allows_pause for b in books),
        history=ctx.audit.actions(),
    )


class ActInput(BaseModel):
    deploy_id: str | None = Field(None, description="the deploy; default the latest one")
    confidence: float = Field(
        ge=0, le=1, description="your confidence that this deploy causes the incident"
    )
    reason: str = Field(min_length=1, max_length=2000, description="why, in one or two lines")


class ActOutput(BaseModel):
    action: str
    status: Literal["executed", "blocked", "dry_run", "no_op"]
    message: str
    escalate: bool = False
    detail: str = ""


def _guarded(ctx: ToolContext, action: Action, args: ActInput) -> ActOutput:
    deploy = ctx.suspect_deploy(args.deploy_id)
    request = ActionRequest(
        action=action,
        service=ctx.incident.service,
        environment=ctx.incident.environment,
        deploy_id=args.deploy_id or (deploy.id if deploy else None),
        confidence=args.confidence,
        reason=args.reason,
        requested_by=ctx.actor,
    )
    facts = guard_facts(ctx, deploy)
    decision: Decision = decide(request, facts, ctx.policy)
    ctx.audit.record(
        ctx.now,
        "guard",
        ctx.actor,
        decision.message,
        action=action.value,
        service=request.service,
        deploy_id=request.deploy_id,
        allowed=decision.allowed,
        escalate=decision.escalate,
        confidence=request.confidence,
        reason=request.reason,
        checks=[{"name": c.name, "passed": c.passed, "detail": c.detail} for c in decision.checks],
    )
    if not decision.allowed or deploy is None:
        return ActOutput(
            action=action.value,
            status="blocked",
            message=decision.message if not decision.allowed else "blocked: no deploy found",
            escalate=decision.escalate,
        )
    call = ctx.actuator.rollback if action == Action.ROLLBACK else ctx.actuator.pause
    outcome: ActionOutcome = call(deploy, dry_run=decision.dry_run)
    status: Literal["executed", "dry_run", "no_op"] = (
        "dry_run" if decision.dry_run else "executed" if outcome.changed else "no_op"
    )
    ctx.audit.record(
        ctx.now,
        "action",
        ctx.actor,
        outcome.detail,
        action=action.value,
        service=deploy.service,
        deploy_id=deploy.id,
        executed=status == "executed",
        status=status,
    )
    return ActOutput(
        action=action.value, status=status, message=decision.message, detail=outcome.detail
    )


@tool("rollback", acts=True)
def rollback(ctx: ToolContext, args: ActInput) -> ActOutput:
    """Roll the deploy back to the previous version. The policy guard allows it only when the
    judge's verdict for that deploy, computed now, is tier 3 and every policy check passes;
    otherwise the answer is 'blocked by policy: <reason>'."""
    return _guarded(ctx, Action.ROLLBACK, args)


@tool("pause_rollout", acts=True)
def pause_rollout(ctx: ToolContext, args: ActInput) -> ActOutput:
    """Pause the deploy's rollout (no more pods move to the new version) and ask a human.
    Allowed at judge tier 2 or above, or with confidence >= 0.95 when a runbook allows it."""
    return _guarded(ctx, Action.PAUSE, args)


class EscalateInput(BaseModel):
    summary: str = Field(min_length=1, max_length=4000, description="what a human must know")
    severity: Literal["info", "warning", "critical"] = "warning"


class NotifyInput(BaseModel):
    message: str = Field(min_length=1, max_length=4000)


class SentOutput(BaseModel):
    status: Literal["sent", "blocked"]
    message: str


@tool("escalate", acts=True)
def escalate(ctx: ToolContext, args: EscalateInput) -> SentOutput:
    """Hand the incident to the on-call human (page them) with a summary. Use it when the
    regression is not caused by the deploy, the severity is P1/P2, several services are
    affected, data could be lost, or you are not confident."""
    return _send(ctx, Action.ESCALATE, args.summary, args.severity)


@tool("notify", acts=True)
def notify(ctx: ToolContext, args: NotifyInput) -> SentOutput:
    """Post an update about the incident to its channel (no paging)."""
    return _send(ctx, Action.NOTIFY, args.message, "info")


def _send(ctx: ToolContext, action: Action, text: str, severity: str) -> SentOutput:
    request = ActionRequest(action=action, service=ctx.incident.service, reason=text)
    facts = GuardFacts(now=ctx.now, service=ctx.incident.service)
    decision = decide(request, facts, ctx.policy)
    ctx.audit.record(
        ctx.now,
        "guard",
        ctx.actor,
        decision.message,
        action=action.value,
        service=request.service,
        allowed=decision.allowed,
    )
    if not decision.allowed:
        return SentOutput(status="blocked", message=decision.message)
    if action == Action.ESCALATE:
        out = ctx.escalator.escalate(ctx.incident.service, text, severity)
    else:
        out = ctx.escalator.notify(ctx.incident.service, text)
    ctx.audit.record(
        ctx.now,
        "action",
        ctx.actor,
        out.detail,
        action=action.value,
        service=ctx.incident.service,
        executed=True,
        status="executed",
    )
    if out.changed is False:
        raise ToolFailure(out.detail)
    return SentOutput(status="sent", message=out.detail)
