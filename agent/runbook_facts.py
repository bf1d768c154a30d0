"""What a service's runbook is written from: its configuration (signals and their SLOs,
cohorts, rollout, escalation, guard policy) and its incidents in the store.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from agent.redact import redact

if TYPE_CHECKING:
    from agent.config import ServiceConfig
    from agent.store import Store

HISTORY_LIMIT = 20  # incidents of the service read from the store, newest first


class SignalFact(BaseModel):
    name: str
    kind: str
    unit: str
    bad_direction: str
    slo: float | None
    critical: bool
    events: str | None


class IncidentFact(BaseModel):
    id: str
    at: str | None
    alertname: str | None
    severity: str | None
    deploy_id: str | None
    version: str | None
    tier: int | None
    tier_name: str | None
    deploy_caused: bool | None
    suspect_files: list[str]
    actions: list[str]  # "rollback: executed"
    escalated: bool
    summary: str


class ServiceFacts(BaseModel):
    """Everything a runbook for one service may say, and nothing more."""

    service: str
    environment: str | None
    step: str
    baseline: str
    watch: str
    cohorts: dict[str, str] | None
    rollout: dict[str, str]
    escalation: str
    logs: str | None
    repository: str | None
    min_confidence: float
    pause_confidence: float
    escalate_severities: list[str]
    max_services_affected: int
    signals: list[SignalFact]
    incidents: list[IncidentFact]

    def alerts(self) -> list[str]:
        """Alert names seen for the service, most frequent first."""
        seen = Counter(i.alertname for i in self.incidents if i.alertname)
        return [name for name, _ in sorted(seen.items(), key=lambda kv: (-kv[1], kv[0]))]

    def suspects(self) -> list[tuple[str, int]]:
        """Files named as suspects (the first three of each incident), most frequent first."""
        seen = Counter(f for i in self.incidents for f in i.suspect_files[:3])
        return sorted(seen.items(), key=lambda kv: -kv[1])  # ties: newest, best ranked first


def _incident_fact(result: dict[str, Any]) -> IncidentFact:
    actions = [
        f"{a.get('name')}: {a.get('status')}" for a in result.get("actions") or [] if a.get("name")
    ]
    tier = result.get("tier")
    return IncidentFact(
        id=str(result.get("incident_id")),
        at=None if result.get("at") is None else str(result["at"]),
        alertname=result.get("alertname"),
        severity=result.get("severity"),
        deploy_id=result.get("deploy_id"),
        version=result.get("version"),
        tier=None if tier is None else int(tier),
        tier_name=result.get("tier_name"),
        deploy_caused=result.get("deploy_caused"),
        suspect_files=[redact(str(f)) for f in (result.get("suspect_files") or [])[:5]],
        actions=actions,
        escalated=bool(result.get("escalated")),
        summary=redact(str(result.get("summary") or ""))[:400],
    )


def service_history(store: Store, service: str, limit: int = HISTORY_LIMIT) -> list[dict[str, Any]]:
    """The service's stored investigations (triage results), newest first."""
    found = []
    for row in store.incidents(service)[:limit]:
        result = store.incident(str(row["id"]))
        if result is not None:
            found.append(result)
    return found


def gather_facts(
    service: str, svc: ServiceConfig, history: list[dict[str, Any]] | None = None
) -> ServiceFacts:
    policy = svc.policy()
    rollout: dict[str, str] = {"kind": svc.rollout.kind}
    if svc.rollout.namespace:
        rollout["namespace"] = svc.rollout.namespace
    if svc.rollout.kind in ("argo", "deployment"):
        rollout["name"] = svc.rollout.name or service
    repository = None
    if svc.repository is not None:
        repository = svc.repository.github or "a local git clone"
    return ServiceFacts(
        service=service,
        environment=svc.environment,
        step=svc.step,
        baseline=svc.baseline,
        watch=svc.watch,
        cohorts=None if svc.cohorts is None else svc.cohorts.model_dump(),
        rollout=rollout,
        escalation=svc.escalation.kind,
        logs=None if svc.logs is None else svc.logs.source,
        repository=repository,
        min_confidence=policy.min_confidence,
        pause_confidence=policy.pause_confidence,
        escalate_severities=sorted(policy.escalate_severities),
        max_services_affected=policy.max_services_affected,
        signals=[
            SignalFact(
                name=s.name,
                kind=s.kind.value,
                unit=s.unit.value,
                bad_direction=str(s.bad_direction),
                slo=s.slo,
                critical=s.critical,
                events=s.events,
            )
            for s in svc.signals
        ],
        incidents=[_incident_fact(r) for r in history or []],
    )
