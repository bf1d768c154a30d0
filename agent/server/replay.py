"""Backends over deploy bundles: the server's workers replaying recorded deploys, for the
demo and the tests. Nothing after the clock's `now` is ever read."""

from __future__ import annotations

from typing import Any

from agent.audit import AuditLog
from agent.backends.base import Actuator, DeployInfo, Escalator, SourceUnavailable
from agent.backends.recording import RecordingActuator, RecordingEscalator
from agent.bundle.model import Bundle
from agent.incident import Incident
from agent.judge.core import judge_prepared
from agent.judge.prepared import PreparedDeploy, prepare
from agent.judge.settings import JudgeSettings
from agent.judge.verdict import Verdict
from agent.links import ChangeLinks
from agent.server.runtime import Window
from tools.bundle import bundle_context
from tools.context import ToolContext


def deploy_started(bundle: Bundle, kind: str = "started") -> tuple[dict[str, Any], str]:
    """A recorded deploy as the intake stores a generic deploy event (the record and its
    dedup key): how the demo, the tests and the evals announce a bundle's deploy."""
    m = bundle.manifest
    start = m.deploy.started_at.timestamp()
    record = {
        "source": "generic",
        "kind": kind,
        "service": m.service,
        "environment": m.environment,
        "deploy_id": m.deploy.id,
        "version": m.deploy.version,
        "previous_version": m.deploy.previous_version,
        "strategy": m.deploy.strategy.value,
        "commit": None,
        "started_at": start,
        "at": start,
    }
    return record, f"generic:{m.deploy.id}:{kind}"


class BundleBackends:
    """One bundle per deploy id; actions go to one shared recording actuator (or the one
    given), so a test or the demo can see every pause and rollback."""

    def __init__(
        self,
        bundles: list[Bundle],
        *,
        actuator: Actuator | None = None,
        escalator: Escalator | None = None,
        baseline_s: float = 3600.0,
    ) -> None:
        self.bundles = {b.manifest.deploy.id: b for b in bundles}
        self.actuator = actuator or RecordingActuator()
        self.escalator = escalator or RecordingEscalator()
        self.baseline_s = baseline_s
        self._settings = JudgeSettings()
        self._prepared: dict[str, PreparedDeploy] = {}

    def services(self) -> list[str]:
        return sorted({b.manifest.service for b in self.bundles.values()})

    def window(self, service: str) -> Window:
        for b in self.bundles.values():
            if b.manifest.service == service:
                m = b.manifest
                watch = m.watch_until.timestamp() - m.deploy.started_at.timestamp()
                return Window(self.baseline_s, watch, m.step_seconds)
        raise KeyError(service)

    def _bundle(self, deploy_id: str) -> Bundle:
        try:
            return self.bundles[deploy_id]
        except KeyError:
            raise SourceUnavailable(f"no recorded signals for deploy {deploy_id}") from None

    def judge(self, deploy: DeployInfo, now: float) -> Verdict:
        bundle = self._bundle(deploy.id)
        if deploy.id not in self._prepared:
            self._prepared[deploy.id] = prepare(bundle, self._settings)
        return judge_prepared(self._prepared[deploy.id], now, self._settings)

    def change_links(self, deploy: DeployInfo, files: list[str]) -> ChangeLinks:
        return ChangeLinks()  # a bundle does not say where its repository lives

    def context(
        self, incident: Incident, deploys: list[DeployInfo], now: float, audit: AuditLog
    ) -> ToolContext:
        if not deploys:
            raise SourceUnavailable(f"no deploy of {incident.service} recorded")
        bundle = self._bundle(deploys[0].id)
        ctx = bundle_context(bundle, now=now, incident=incident, audit=audit)
        ctx.actuator = self.actuator
        ctx.escalator = self.escalator
        return ctx
