"""The live backends of a configuration, as the server's workers need them."""

from __future__ import annotations

from agent.audit import AuditLog
from agent.backends.base import DeployInfo
from agent.backends.recording import RecordingActuator, RecordingEscalator
from agent.backends.static import StaticDeploySource
from agent.config import VigilConfig
from agent.guard import GuardPolicy
from agent.incident import Incident
from agent.judge.verdict import Verdict
from agent.links import ChangeLinks, change_links
from agent.live import live_context, live_judge
from agent.runbooks import RunbookLibrary
from agent.server.runtime import Window
from agent.wiring import metrics_for
from tools.context import Judge, ToolContext


class ConfigBackends:
    """Prometheus, logs, the repository, the rollout and escalation of each configured
    service, as `vigil.yaml` describes them."""

    def __init__(self, cfg: VigilConfig) -> None:
        self.cfg = cfg
        self._judges: dict[str, Judge] = {}  # one Prometheus client per service, not per step

    def services(self) -> list[str]:
        return sorted(self.cfg.services)

    def window(self, service: str) -> Window:
        svc = self.cfg.service(service)
        return Window(svc.baseline_seconds, svc.watch_seconds, svc.step_seconds)

    def judge(self, deploy: DeployInfo, now: float) -> Verdict:
        if deploy.service not in self._judges:
            metrics = metrics_for(self.cfg, deploy.service)
            self._judges[deploy.service] = live_judge(self.cfg, deploy.service, metrics)
        return self._judges[deploy.service](deploy, now)

    def change_links(self, deploy: DeployInfo, files: list[str]) -> ChangeLinks:
        return change_links(self.cfg, deploy, files)

    def context(
        self, incident: Incident, deploys: list[DeployInfo], now: float, audit: AuditLog
    ) -> ToolContext:
        if incident.service in self.cfg.services:
            return live_context(self.cfg, incident, deploys, now, audit=audit)
        # Not a configured service: investigate with nothing to read and nothing to act on,
        # so the result says so and a human is told.
        return ToolContext(
            incident=incident,
            now=now,
            metrics=None,
            logs=None,
            changes=None,
            deploys=StaticDeploySource(deploys),
            judge=None,
            actuator=RecordingActuator(),
            escalator=RecordingEscalator(),
            runbooks=RunbookLibrary.load(),
            policy=GuardPolicy(),
            audit=audit,
            data_until=now,
        )
