"""Actions a human asks for in Slack, through the same tools and policy guard as the agent.

A human's request carries their Slack user id as the actor (`slack:<user id>`) into every
guard decision and audit event. The guard decides exactly as it would for the agent: a
rollback still needs the judge's verdict, computed now, to be tier 3. Resume is not a guard
action (it lifts Vigil's own pause): an approver's decision, recorded, and passed to the
rollout backend when it can resume.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from agent.audit import AuditEvent, AuditLog
from agent.backends.base import DeployInfo, SourceUnavailable
from agent.guard import Action, PastAction
from agent.incident import Incident
from agent.server.runtime import Backends
from agent.slack import incidents
from agent.slack.incidents import IncidentView
from agent.slack.records import SlackStore
from tools.act import ActOutput
from tools.context import ToolContext

# A human vouches for the request: enough for the guard's minimum confidence, never the
# confidence that lets a runbook pause below tier 2, so the judge's tiers still govern.
HUMAN_CONFIDENCE = 0.9
DONE = frozenset({"executed", "no_op", "dry_run", "recorded"})

GuardedAction = Literal["pause_rollout", "rollback"]


@dataclass(frozen=True)
class ActionReport:
    action: str
    service: str
    deploy_id: str | None
    incident_id: str | None
    status: str  # executed | no_op | dry_run | recorded | blocked | failed | unavailable
    message: str  # the guard's decision, or why nothing was done
    detail: str = ""

    @property
    def done(self) -> bool:
        return self.status in DONE


def actor(user: str) -> str:
    return f"slack:{user}"


def past_actions(store: SlackStore, now: float) -> tuple[PastAction, ...]:
    """Pauses and rollbacks of the last hour, across incidents: the guard's rate limits."""
    out = []
    for row in store.rows(
        "SELECT at, data FROM audit WHERE kind = 'action' AND at >= ?", (now - 3600,)
    ):
        data = json.loads(row["data"])
        try:
            action = Action(str(data.get("action")))
        except ValueError:
            continue
        out.append(
            PastAction(
                action=action,
                service=str(data.get("service", "")),
                at=float(row["at"]),
                executed=bool(data.get("executed")),
            )
        )
    return tuple(out)


def incident_for_deploy(store: SlackStore, deploy_id: str) -> IncidentView | None:
    """The incident a decision about this deploy belongs to: the one its approval was asked
    in, else the latest one about the deploy."""
    approval = store.approval(deploy_id)
    if approval is not None and (v := incidents.view(store, approval.incident_id)) is not None:
        return v
    rows = store.rows(
        "SELECT id FROM incidents WHERE deploy_id = ? ORDER BY created_at DESC LIMIT 1",
        (deploy_id,),
    )
    return incidents.view(store, rows[0]["id"]) if rows else None


class HumanActions:
    def __init__(self, store: SlackStore, backends: Backends, clock: Callable[[], float]) -> None:
        self.store = store
        self.backends = backends
        self.clock = clock

    def _event(self, now: float, user: str, summary: str, **data: Any) -> AuditEvent:
        return AuditEvent(seq=0, at=now, kind="note", actor=actor(user), summary=summary, data=data)

    def _record(
        self,
        v: IncidentView | None,
        incident: Incident,
        deploy: DeployInfo,
        events: list[AuditEvent],
        *,
        tier: int | None = None,
    ) -> str:
        """Append to the incident's audit trail, or store a new incident holding them."""
        if v is not None:
            self.store.append_audit(v.incident_id, events)
            return v.incident_id
        doc = {
            "incident_id": incident.id,
            "service": deploy.service,
            "environment": deploy.environment,
            "alertname": incident.alertname,
            "severity": incident.severity,
            "deploy_id": deploy.id,
            "version": deploy.version,
            "mode": "slack",
            "tier": tier,
            "deploy_caused": None,
            "confidence": None,
            "escalated": False,
            "summary": incident.summary,
        }
        first = events[0].model_copy(
            update={"data": {**events[0].data, "incident": incident.model_dump(mode="json")}}
        )
        numbered = [e.model_copy(update={"seq": i}) for i, e in enumerate([first, *events[1:]], 1)]
        with self.store.lock:
            self.store.core().save_incident(doc, numbered, created_at=events[0].at)
        return incident.id

    def _watch(
        self, deploy_id: str, now: float, action: str, status: str, user: str, detail: str
    ) -> None:
        """The deploy watch's own record: the action, and the session's state."""
        if incidents.watch_session(self.store, deploy_id) is None:
            return
        with self.store.transaction() as conn:
            (seq,) = conn.execute(
                "SELECT coalesce(max(seq), 0) + 1 FROM watch_actions WHERE deploy_id = ?",
                (deploy_id,),
            ).fetchone()
            conn.execute(
                "INSERT INTO watch_actions (deploy_id, seq, at, action, status, actor, detail)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (deploy_id, seq, now, action, status, actor(user), detail[:2000]),
            )
            if status not in ("executed", "recorded"):
                return
            reason = f"{action} by {actor(user)} in Slack"
            if action == "rollback":
                conn.execute(
                    "UPDATE watch_sessions SET state = 'rolled_back', closed_at = ?, reason = ?"
                    " WHERE deploy_id = ? AND state IN ('watching', 'paused')",
                    (now, reason, deploy_id),
                )
            elif action in ("pause_rollout", "resume"):
                before, after = (
                    ("watching", "paused") if action != "resume" else ("paused", "watching")
                )
                conn.execute(
                    "UPDATE watch_sessions SET state = ?, reason = ? WHERE deploy_id = ?"
                    " AND state = ?",
                    (after, reason, deploy_id, before),
                )

    def _context(
        self, v: IncidentView | None, deploy: DeployInfo, now: float, user: str, why: str
    ) -> tuple[Incident, ToolContext, AuditLog]:
        if v is not None:
            incident = incidents.incident_of(self.store, v, now)
        else:
            incident = Incident(
                id=f"slack-{deploy.id}",
                service=deploy.service,
                environment=deploy.environment,
                alertname="SlackRequest",
                summary=why,
                started_at=now,
            )
        audit = AuditLog(history=past_actions(self.store, now))
        recent = incidents.deploys(self.store, deploy.service, now) or [deploy]
        ctx = self.backends.context(incident, recent, now, audit)
        ctx.actor = actor(user)
        return incident, ctx, audit

    def _deploy(self, service: str, deploy_id: str | None, now: float) -> DeployInfo | None:
        if deploy_id is not None:
            found = incidents.deploy(self.store, deploy_id)
            return found if found is not None and found.service == service else None
        recent = incidents.deploys(self.store, service, now)
        return recent[0] if recent else None

    def act(
        self, action: GuardedAction, service: str, user: str, *, deploy_id: str | None = None
    ) -> ActionReport:
        """Pause or roll back the service's latest deploy (or `deploy_id`), if the guard allows."""
        from agent.triage import toolbox_for

        now = self.clock()
        deploy = self._deploy(service, deploy_id, now)
        if deploy is None:
            return ActionReport(
                action,
                service,
                deploy_id,
                None,
                "unavailable",
                f"no deploy of {service} recorded in the last {incidents.RECENT_S // 3600} h",
            )
        why = f"{action} of {deploy.id} asked in Slack by {actor(user)}"
        v = incident_for_deploy(self.store, deploy.id)
        try:
            incident, ctx, audit = self._context(v, deploy, now, user, why)
        except SourceUnavailable as exc:
            return ActionReport(action, service, deploy.id, None, "unavailable", str(exc))
        result = toolbox_for(ctx).call(
            action, {"deploy_id": deploy.id, "confidence": HUMAN_CONFIDENCE, "reason": why}
        )
        try:
            out = ActOutput.model_validate_json(result.content) if result.ok else None
        except ValidationError:
            out = None
        status = out.status if out is not None else "failed"
        message = out.message if out is not None else result.content
        detail = out.detail if out is not None else ""
        verdict = ctx.verdict(deploy)
        events = [self._event(now, user, why, action=action, deploy_id=deploy.id), *audit.events]
        incident_id = self._record(
            v, incident, deploy, events, tier=None if verdict is None else verdict.tier
        )
        self._watch(deploy.id, now, action, status, user, detail or message)
        return ActionReport(action, service, deploy.id, incident_id, status, message, detail)

    def resume(self, deploy_id: str, user: str) -> ActionReport:
        """Resume a paused rollout: the backend's `resume` when it has one, else recorded for
        a human to carry out in the deploy system."""
        now = self.clock()
        deploy = incidents.deploy(self.store, deploy_id)
        if deploy is None:
            return ActionReport(
                "resume", "unknown", deploy_id, None, "unavailable", "no such deploy"
            )
        why = f"resume of {deploy.id} decided in Slack by {actor(user)}"
        v = incident_for_deploy(self.store, deploy.id)
        try:
            incident, ctx, _ = self._context(v, deploy, now, user, why)
        except SourceUnavailable as exc:
            return ActionReport("resume", deploy.service, deploy.id, None, "unavailable", str(exc))
        resume = getattr(ctx.actuator, "resume", None)
        if callable(resume):
            try:
                outcome = resume(deploy, dry_run=ctx.policy.dry_run)
            except SourceUnavailable as exc:
                status, detail = "failed", str(exc)
            else:
                detail = str(getattr(outcome, "detail", ""))
                changed = bool(getattr(outcome, "changed", True))
                status = "dry_run" if ctx.policy.dry_run else "executed" if changed else "no_op"
        else:
            status = "recorded"
            detail = (
                f"the rollout backend cannot resume: resume {deploy.service} {deploy.version} "
                "in the deploy system"
            )
        event = self._event(
            now,
            user,
            f"{why}: {status}",
            decision="resume",
            deploy_id=deploy.id,
            status=status,
            detail=detail,
        )
        incident_id = self._record(v, incident, deploy, [event])
        self._watch(deploy.id, now, "resume", status, user, detail)
        return ActionReport("resume", deploy.service, deploy.id, incident_id, status, why, detail)

    def note(self, incident_id: str, user: str, summary: str, **data: Any) -> None:
        """A human decision with no action (e.g. hold), in the incident's audit trail."""
        self.store.append_audit(incident_id, [self._event(self.clock(), user, summary, **data)])
