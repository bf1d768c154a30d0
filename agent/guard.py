"""The policy guard: pure code between the agent and every action it asks for.

One call per requested action, one decision, one audit event. The facts the guard decides on
(`GuardFacts`) are gathered by code — the judge's verdict computed now, the incident's scope
and severity, past actions — never taken from the model or from tool output, so nothing the
model reads can widen what it may do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Action(StrEnum):
    PAUSE = "pause_rollout"
    ROLLBACK = "rollback"
    ESCALATE = "escalate"
    NOTIFY = "notify"


CHANGES_PRODUCTION = frozenset({Action.PAUSE, Action.ROLLBACK})


class FreezeWindow(BaseModel):
    """A change freeze or maintenance window: no pause or rollback inside it."""

    model_config = ConfigDict(frozen=True)

    start: datetime
    end: datetime
    services: tuple[str, ...] | None = None  # None: every service
    reason: str = "change freeze"

    def covers(self, service: str, at: float) -> bool:
        inside = self.start.timestamp() <= at < self.end.timestamp()
        return inside and (self.services is None or service in self.services)


class GuardPolicy(BaseModel):
    """What the agent may do on its own. Defaults are conservative."""

    model_config = ConfigDict(frozen=True)

    dry_run: bool = Field(False, description="decide and record, but never call the actuator")
    min_confidence: float = Field(
        0.6, ge=0, le=1, description="below this the agent escalates instead of acting"
    )
    pause_confidence: float = Field(
        0.95,
        ge=0,
        le=1,
        description="a pause below tier 2 needs this confidence and a runbook that allows it",
    )
    rollback_cooldown_s: float = Field(
        1800, ge=0, description="at most one rollback per service in this many seconds"
    )
    max_rollbacks_per_hour: int = Field(3, ge=0, description="across all services")
    max_pauses_per_hour: int = Field(6, ge=0, description="across all services")
    escalate_severities: frozenset[str] = Field(
        frozenset({"p1", "p2", "sev1", "sev2"}),
        description="alert severities (lower case) for which a human decides",
    )
    max_services_affected: int = Field(
        1, ge=1, description="more services alerting than this: escalate, it is not one deploy"
    )
    allow_services: frozenset[str] | None = Field(
        None, description="services the agent may act on (None: all not denied)"
    )
    deny_services: frozenset[str] = frozenset()
    freezes: tuple[FreezeWindow, ...] = ()


class PastAction(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: Action
    service: str
    at: float
    executed: bool


class GuardFacts(BaseModel):
    """Facts about the incident, gathered by code at the moment of the request."""

    model_config = ConfigDict(frozen=True)

    now: float
    service: str
    environment: str | None = None
    severity: str | None = None
    services_affected: tuple[str, ...] = ()
    deploy_id: str | None = None  # the deploy under suspicion
    verdict_tier: int | None = None  # the judge's verdict for that deploy, computed now
    deploy_caused: bool | None = None
    irreversible_migration: bool = False
    runbook_allows_pause: bool = False
    history: tuple[PastAction, ...] = ()


class ActionRequest(BaseModel):
    """What the agent (or a human through the agent) asks for."""

    model_config = ConfigDict(frozen=True)

    action: Action
    service: str
    environment: str | None = None
    deploy_id: str | None = None
    confidence: float = Field(0.0, ge=0, le=1)
    reason: str = ""
    requested_by: str = "agent"


@dataclass(frozen=True)
class Check:
    """One rule the guard applied, and what it found."""

    name: str
    passed: bool
    detail: str


class Decision(BaseModel):
    """The guard's answer, with every check it made."""

    model_config = ConfigDict(frozen=True)

    action: Action
    allowed: bool
    escalate: bool  # act no further: a human must decide
    dry_run: bool
    reason: str
    checks: tuple[Check, ...]

    @property
    def message(self) -> str:
        """What the model is told."""
        if not self.allowed:
            return f"blocked by policy: {self.reason}"
        if self.dry_run:
            return f"allowed (dry run, nothing executed): {self.reason}"
        return f"allowed: {self.reason}"


def _in_window(history: tuple[PastAction, ...], action: Action, now: float, span: float) -> int:
    return sum(1 for p in history if p.action == action and p.executed and now - p.at < span)


def _scope(req: ActionRequest, facts: GuardFacts, policy: GuardPolicy) -> list[Check]:
    same_service = req.service == facts.service
    same_env = req.environment is None or facts.environment in (None, req.environment)
    allowed = policy.allow_services is None or req.service in policy.allow_services
    return [
        Check(
            "scope",
            same_service and same_env,
            f"incident is {facts.service}"
            + (f" in {facts.environment}" if facts.environment else "")
            + f"; request is for {req.service}"
            + (f" in {req.environment}" if req.environment else ""),
        ),
        Check(
            "service list",
            allowed and req.service not in policy.deny_services,
            "denied for this service" if req.service in policy.deny_services else "permitted",
        ),
    ]


def _boundaries(req: ActionRequest, facts: GuardFacts, policy: GuardPolicy) -> list[Check]:
    """Conditions under which a human decides instead (escalate, do not act)."""
    severity = (facts.severity or "").lower()
    affected = set(facts.services_affected) | {facts.service}
    return [
        Check(
            "severity",
            severity not in policy.escalate_severities,
            f"severity {facts.severity or 'unknown'}",
        ),
        Check(
            "blast radius",
            len(affected) <= policy.max_services_affected,
            f"{len(affected)} service(s) affected: {', '.join(sorted(affected))}",
        ),
        Check(
            "data safety",
            not facts.irreversible_migration,
            "the deploy runs an irreversible migration"
            if facts.irreversible_migration
            else "no irreversible migration",
        ),
        Check(
            "deploy-caused",
            facts.deploy_caused is not False,
            "the judge finds the regression is not caused by the deploy"
            if facts.deploy_caused is False
            else "not ruled out",
        ),
        Check(
            "confidence",
            req.confidence >= policy.min_confidence,
            f"confidence {req.confidence:.2f} (needs {policy.min_confidence:.2f})",
        ),
    ]


def _authority(req: ActionRequest, facts: GuardFacts, policy: GuardPolicy) -> list[Check]:
    tier = facts.verdict_tier
    same_deploy = req.deploy_id is None or req.deploy_id == facts.deploy_id
    checks = [
        Check(
            "deploy",
            same_deploy and facts.deploy_id is not None,
            f"incident deploy {facts.deploy_id or 'unknown'}; request names "
            f"{req.deploy_id or 'none'}",
        )
    ]
    if req.action == Action.ROLLBACK:
        checks.append(
            Check("judge", tier == 3, f"the judge's verdict now is tier {tier} (needs 3)")
        )
    else:
        by_runbook = req.confidence >= policy.pause_confidence and facts.runbook_allows_pause
        checks.append(
            Check(
                "judge",
                (tier is not None and tier >= 2) or by_runbook,
                f"the judge's verdict now is tier {tier} (needs 2), "
                f"or confidence {req.confidence:.2f} >= {policy.pause_confidence:.2f} with a "
                f"runbook that allows a pause ({'yes' if facts.runbook_allows_pause else 'no'})",
            )
        )
    return checks


def _limits(req: ActionRequest, facts: GuardFacts, policy: GuardPolicy) -> list[Check]:
    now, history = facts.now, facts.history
    checks = [
        Check(
            "change freeze",
            not any(w.covers(req.service, now) for w in policy.freezes),
            next((w.reason for w in policy.freezes if w.covers(req.service, now)), "none"),
        )
    ]
    if req.action == Action.ROLLBACK:
        recent = [
            p
            for p in history
            if p.action == Action.ROLLBACK
            and p.executed
            and p.service == req.service
            and now - p.at < policy.rollback_cooldown_s
        ]
        checks.append(
            Check(
                "service rate",
                not recent,
                f"{len(recent)} rollback(s) of {req.service} in the last "
                f"{policy.rollback_cooldown_s / 60:.0f} min (at most 1)",
            )
        )
        done = _in_window(history, Action.ROLLBACK, now, 3600)
        checks.append(
            Check(
                "global rate",
                done < policy.max_rollbacks_per_hour,
                f"{done} rollback(s) in the last hour (at most {policy.max_rollbacks_per_hour})",
            )
        )
    else:
        done = _in_window(history, Action.PAUSE, now, 3600)
        checks.append(
            Check(
                "global rate",
                done < policy.max_pauses_per_hour,
                f"{done} pause(s) in the last hour (at most {policy.max_pauses_per_hour})",
            )
        )
    return checks


def decide(req: ActionRequest, facts: GuardFacts, policy: GuardPolicy) -> Decision:
    """Allow, block or escalate one requested action. Pure and deterministic."""
    checks = _scope(req, facts, policy)
    if req.action in CHANGES_PRODUCTION:
        boundaries = _boundaries(req, facts, policy)
        checks += boundaries + _authority(req, facts, policy) + _limits(req, facts, policy)
    failed = [c for c in checks if not c.passed]
    escalate = req.action in CHANGES_PRODUCTION and any(
        not c.passed for c in checks if c.name in _ESCALATING
    )
    if failed:
        reason = "; ".join(f"{c.name}: {c.detail}" for c in failed)
        if escalate:
            reason += " — escalate to a human instead"
        return Decision(
            action=req.action,
            allowed=False,
            escalate=escalate,
            dry_run=policy.dry_run,
            reason=reason,
            checks=tuple(checks),
        )
    return Decision(
        action=req.action,
        allowed=True,
        escalate=False,
        dry_run=policy.dry_run,
        reason=_why_allowed(req, facts),
        checks=tuple(checks),
    )


_ESCALATING = frozenset({"severity", "blast radius", "data safety", "deploy-caused", "confidence"})


def _why_allowed(req: ActionRequest, facts: GuardFacts) -> str:
    if req.action == Action.ROLLBACK:
        return f"the judge's verdict for {facts.deploy_id} is tier 3 and every check passed"
    if req.action == Action.PAUSE:
        return f"the judge's verdict for {facts.deploy_id} is tier {facts.verdict_tier}" + (
            "" if (facts.verdict_tier or 0) >= 2 else " and a runbook allows a pause"
        )
    return f"{req.action.value} is always allowed within the incident's scope"
