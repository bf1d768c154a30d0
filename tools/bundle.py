"""An investigation's context built from a deploy bundle (replay, tests, evals, `vigil triage`)."""

from __future__ import annotations

from agent.alerts import AlertmanagerPayload, incident_from_alert
from agent.audit import AuditLog
from agent.backends.base import DeployInfo
from agent.backends.bundle import BundleWorld
from agent.backends.recording import RecordingActuator, RecordingEscalator
from agent.bundle.model import Bundle
from agent.guard import GuardPolicy
from agent.incident import Incident
from agent.judge.core import judge_prepared
from agent.judge.prepared import prepare
from agent.judge.settings import JudgeSettings
from agent.judge.verdict import Verdict
from agent.runbooks import RunbookLibrary
from tools.context import ToolContext

# Alertmanager waits this long (group_wait) before it first notifies.
GROUP_WAIT_S = 30.0


def incident_for(bundle: Bundle) -> Incident:
    """From the bundle's alert.json, or (without one) a deploy-watch incident at the end."""
    if bundle.alert is not None:
        return incident_from_alert(AlertmanagerPayload.model_validate(bundle.alert))
    m = bundle.manifest
    return Incident(
        id=f"inc-{m.deploy.id}",
        service=m.service,
        environment=m.environment,
        summary=f"deploy watch of {m.service} {m.deploy.version}",
        started_at=m.watch_until.timestamp(),
    )


def bundle_context(
    bundle: Bundle,
    *,
    now: float | None = None,
    policy: GuardPolicy | None = None,
    runbooks: RunbookLibrary | None = None,
    settings: JudgeSettings | None = None,
    audit: AuditLog | None = None,
    actor: str = "agent",
    incident: Incident | None = None,
) -> ToolContext:
    incident = incident or incident_for(bundle)
    end = bundle.manifest.watch_until.timestamp()
    at = now if now is not None else min(incident.started_at + GROUP_WAIT_S, end)
    world = BundleWorld(bundle, at)
    judge_settings = settings or JudgeSettings()
    prepared = prepare(bundle, judge_settings)

    def judge(deploy: DeployInfo, moment: float) -> Verdict:
        if deploy.id != bundle.manifest.deploy.id:
            raise LookupError(f"no signals recorded for deploy {deploy.id}")
        return judge_prepared(prepared, min(moment, world.now), judge_settings)

    def advance(moment: float) -> None:
        world.now = min(moment, end)

    return ToolContext(
        incident=incident,
        now=at,
        metrics=world,
        logs=world if bundle.logs is not None else None,
        changes=world if bundle.diff is not None else None,
        deploys=world,
        judge=judge,
        actuator=RecordingActuator(),
        escalator=RecordingEscalator(),
        runbooks=runbooks if runbooks is not None else RunbookLibrary.load(),
        policy=policy or GuardPolicy(),
        audit=audit or AuditLog(),
        actor=actor,
        step_s=bundle.manifest.step_seconds,
        data_until=end,
        on_advance=[advance],
    )
