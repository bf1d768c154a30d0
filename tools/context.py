"""What every tool call can reach: the incident, the backends, the judge, the guard's policy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.audit import AuditLog
from agent.backends.base import (
    Actuator,
    ChangeSource,
    DeployInfo,
    DeploySource,
    Escalator,
    LogSource,
    MetricsSource,
    SourceUnavailable,
)
from agent.guard import GuardPolicy
from agent.incident import Incident
from agent.judge.verdict import Verdict
from agent.runbooks import RunbookLibrary

Judge = Callable[[DeployInfo, float], Verdict]


@dataclass
class ToolContext:
    incident: Incident
    now: float
    metrics: MetricsSource | None
    logs: LogSource | None
    changes: ChangeSource | None
    deploys: DeploySource | None
    judge: Judge | None
    actuator: Actuator
    escalator: Escalator
    runbooks: RunbookLibrary
    policy: GuardPolicy
    audit: AuditLog
    actor: str = "agent"
    step_s: float = 15.0
    missing: set[str] = field(default_factory=set)  # sources that could not be read
    memo: dict[tuple[Any, ...], Any] = field(default_factory=dict)  # per-run cache of readings
    data_until: float | None = None  # replayed data ends here (None: live sources)
    on_advance: list[Callable[[float], None]] = field(default_factory=list)

    def verdict(self, deploy: DeployInfo) -> Verdict | None:
        """The judge's verdict for `deploy` now (computed once per moment); None when the
        metrics cannot be read, which is then listed among the missing sources."""
        if self.judge is None:
            self.missing.add("metrics")
            return None
        key = ("verdict", deploy.id, self.now)
        if key not in self.memo:
            try:
                self.memo[key] = self.judge(deploy, self.now)
            except SourceUnavailable as exc:
                self.missing.add("metrics")
                self.memo[key] = None
                self.memo[("verdict_error", deploy.id, self.now)] = str(exc)
        found: Verdict | None = self.memo[key]
        return found

    def verdict_error(self, deploy: DeployInfo) -> str:
        return str(self.memo.get(("verdict_error", deploy.id, self.now), "no metrics source"))

    def advance(self, moment: float) -> None:
        """Move the clock forward (following a deploy in replay); readings are re-taken."""
        if moment <= self.now:
            return
        self.now = moment
        self.memo.clear()
        for hook in self.on_advance:
            hook(moment)

    def suspect_deploy(self, deploy_id: str | None = None) -> DeployInfo | None:
        """The named deploy, or the latest deploy of the service before `now`."""
        if self.deploys is None:
            self.missing.add("deploys")
            return None
        found = self.deploys.deploys(self.incident.service, self.now - 6 * 3600, self.now)
        if deploy_id is not None:
            return next((d for d in found if d.id == deploy_id), None)
        return found[0] if found else None
