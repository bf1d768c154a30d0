"""The seed-002 communication formats, filled from the store: incident updates, escalations,
handoff summaries. Every value comes from what Vigil recorded (the incident's result, its
audit trail, the deploy watch); text from the systems under investigation is escaped for
Slack before it enters a template, and the rendered Markdown becomes mrkdwn in `blocks`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agent.prompts import render
from agent.slack import incidents
from agent.slack.blocks import cut, escape
from agent.slack.incidents import IncidentView
from agent.slack.records import SlackStore
from agent.timeline import human_duration


def clock_text(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ActionLine:
    name: str
    status: str
    actor: str
    reason: str


def action_lines(store: SlackStore, incident_id: str) -> list[ActionLine]:
    """Every action the audit trail holds (the truth, whoever acted), and every refusal."""
    out: list[ActionLine] = []
    for e in store.core().audit(incident_id):
        name = str(e.data.get("action", ""))
        if e.kind == "action" and name:
            status = str(e.data.get("status") or ("executed" if e.data.get("executed") else ""))
            out.append(ActionLine(name, status, e.actor, escape(cut(e.summary, 300))))
        elif e.kind == "guard" and name and not e.data.get("allowed"):
            out.append(ActionLine(name, "blocked", e.actor, escape(cut(e.summary, 300))))
    return out


def _incident(v: IncidentView) -> dict[str, Any]:
    return {
        "id": escape(v.incident_id),
        "alertname": escape(v.alertname or "Incident"),
        "service": escape(v.service),
        "environment": escape(v.environment) if v.environment else None,
        "severity": escape(v.severity) if v.severity else None,
    }


def impact(store: SlackStore, v: IncidentView) -> str:
    """What users feel: the judge's latest reading of the deploy, else the evidence."""
    if v.deploy_id and (check := incidents.latest_check(store, v.deploy_id)) is not None:
        reasons = [str(r) for r in check["reasons"]][:2]
        head = f"the judge now says tier {check['tier']} ({check['status']})"
        return escape(cut(head + (": " + "; ".join(reasons) if reasons else ""), 600))
    if v.evidence:
        return escape(cut("; ".join(v.evidence[:2]), 600))
    return escape(cut(v.summary, 600)) or "unknown"


@dataclass(frozen=True)
class Situation:
    status: str  # investigating | awaiting decision | mitigating | escalated | human | resolved
    current_action: str
    next_step: str

    @property
    def resolved(self) -> bool:
        return self.status == "resolved"


def situation(store: SlackStore, v: IncidentView, thread_state: str = "active") -> Situation:
    acted = [a for a in action_lines(store, v.incident_id) if a.status in ("executed", "no_op")]
    done = {a.name for a in acted}
    approval = store.approval(v.deploy_id) if v.deploy_id else None
    session = incidents.watch_session(store, v.deploy_id) if v.deploy_id else None
    resolved = incidents.alerts_resolved(store, v.incident_id)
    if resolved is None and v.is_watch and session is not None:
        resolved = session["state"] in ("completed", "rolled_back")
    next_step = escape(v.next_steps[0]) if v.next_steps else "keep watching the signals"
    if resolved:
        what = (
            f"nothing: the deploy watch is over ({session['state']})"
            if v.is_watch and session is not None
            else "nothing: the alerts resolved"
        )
        return Situation("resolved", what, "write the postmortem")
    if "rollback" in done or (approval is not None and approval.decision == "rollback"):
        last = next((a for a in reversed(acted) if a.name == "rollback"), None)
        what = f"rolled back: {last.reason}" if last else "rolled back"
        return Situation("mitigating", what, "confirm the signals recover")
    if approval is not None and approval.decision is None:
        return Situation(
            "awaiting decision",
            f"the rollout of {escape(approval.service)} is paused",
            "an approver decides: approve a rollback, resume, or hold",
        )
    if thread_state == "human":
        return Situation("human", "a human has taken over", next_step)
    if "pause_rollout" in done:
        return Situation("mitigating", "the rollout is paused", next_step)
    if v.escalated or "escalate" in done:
        return Situation("escalated", "a human was paged", next_step)
    return Situation("investigating", "watching the deploy and the alert", next_step)


def update_markdown(store: SlackStore, v: IncidentView, now: float, s: Situation) -> str:
    return render(
        "incident_update.md.j2",
        incident=_incident(v),
        at=clock_text(now),
        status=s.status,
        impact=impact(store, v),
        current_action=s.current_action,
        next_step=s.next_step,
    )


def escalation_markdown(store: SlackStore, v: IncidentView, now: float) -> str:
    why = [
        escape(cut(e.summary, 400))
        for e in store.core().audit(v.incident_id)
        if e.kind == "guard" and e.data.get("escalate")
    ]
    if not why and v.deploy_caused is False:
        why = [
            "the judge finds the regression is not caused by the deploy: a rollback would not help"
        ]
    incident = incidents.incident_of(store, v, now)
    runbook = incident.annotations.get("runbook_url", "")
    links = [{"title": "runbook", "url": runbook}] if runbook.startswith("https://") else []
    return render(
        "escalation.md.j2",
        incident_id=escape(v.incident_id),
        severity=escape(v.severity or "warning"),
        service=escape(v.service),
        environment=escape(v.environment) if v.environment else None,
        impact=impact(store, v),
        duration=human_duration(max(0.0, now - incident.started_at)),
        summary=escape(cut(v.summary, 1200)) or "—",
        actions=action_lines(store, v.incident_id),
        why=list(dict.fromkeys(why))[:5] or ["Vigil could not decide on its own"],
        next_steps=[escape(s) for s in v.next_steps[:5]],
        links=links,
    )


def handoff_markdown(store: SlackStore, v: IncidentView, human: str, now: float) -> str:
    """`human` is trusted text (a Slack mention Vigil wrote)."""
    s = situation(store, v)
    pending = []
    session = incidents.watch_session(store, v.deploy_id) if v.deploy_id else None
    if session is not None and session["state"] in ("watching", "paused"):
        pending.append(f"the deploy watch keeps judging {v.deploy_id} every step")
    questions = []
    if v.missing_sources:
        questions.append(
            "What do " + escape(", ".join(v.missing_sources)) + " show? Vigil could not read them."
        )
    if v.deploy_caused is None:
        questions.append("Is the deploy the cause? The judge could not tell yet.")
    return render(
        "handoff.md.j2",
        incident=_incident(v),
        human=human,
        at=clock_text(now),
        status=f"{s.status}: {s.current_action}",
        summary=escape(cut(v.summary, 1200)) or "—",
        actions=action_lines(store, v.incident_id),
        pending=pending,
        open_questions=questions,
        next_steps=[escape(x) for x in v.next_steps[:5]],
    )
