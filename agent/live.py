"""An investigation over live systems: the ToolContext the configuration describes.

The judge sees a live deploy exactly as it sees a bundle: the configured signals are
captured from Prometheus (baseline before the deploy, samples up to now) and judged. A source
that is not configured, or that fails, is a missing source — the investigation goes on
without it and says what it did not see.
"""

from __future__ import annotations

from collections.abc import Iterable

from agent.audit import AuditLog
from agent.backends.base import DeployInfo, MetricsSource
from agent.backends.static import StaticDeploySource
from agent.capture import capture
from agent.config import VigilConfig
from agent.incident import Incident
from agent.judge.core import judge as judge_bundle
from agent.judge.verdict import Verdict
from agent.runbooks import RunbookLibrary
from agent.wiring import actuator_for, changes_for, escalator_for, logs_for, metrics_for
from tools.context import Judge, ToolContext


def live_judge(cfg: VigilConfig, service: str, metrics: MetricsSource) -> Judge:
    svc = cfg.service(service)

    def verdict(deploy: DeployInfo, moment: float) -> Verdict:
        bundle = capture(service, svc, deploy, moment, metrics=metrics).bundle
        return judge_bundle(bundle, moment)

    return verdict


def live_context(
    cfg: VigilConfig,
    incident: Incident,
    deploys: Iterable[DeployInfo],
    now: float,
    *,
    dry_run: bool = False,
    audit: AuditLog | None = None,
    runbooks: RunbookLibrary | None = None,
) -> ToolContext:
    service = incident.service
    svc = cfg.service(service)
    metrics = metrics_for(cfg, service) if cfg.prometheus is not None else None
    policy = svc.policy()
    if dry_run:
        policy = policy.model_copy(update={"dry_run": True})
    return ToolContext(
        incident=incident,
        now=now,
        metrics=metrics,
        logs=logs_for(cfg, service),
        changes=changes_for(cfg, service),
        deploys=StaticDeploySource(deploys),
        judge=None if metrics is None else live_judge(cfg, service, metrics),
        actuator=actuator_for(cfg, service),
        escalator=escalator_for(cfg, service),
        runbooks=runbooks if runbooks is not None else RunbookLibrary.load(),
        policy=policy,
        audit=audit or AuditLog(),
        step_s=svc.step_seconds,
        data_until=now,
    )
