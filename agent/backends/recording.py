"""Actuators that only record: for replay, tests, and dry runs of the whole loop."""

from __future__ import annotations

from agent.backends.base import ActionOutcome, DeployInfo


class RecordingActuator:
    """Records pause/rollback calls; a second call for the same deploy is a no-op."""

    def __init__(self) -> None:
        self.calls: list[ActionOutcome] = []
        self._done: set[tuple[str, str]] = set()

    def _act(self, action: str, deploy: DeployInfo, dry_run: bool) -> ActionOutcome:
        key = (action, deploy.id)
        if dry_run:
            outcome = ActionOutcome(
                action=action,
                service=deploy.service,
                deploy_id=deploy.id,
                changed=False,
                detail=f"dry run: would {action} {deploy.service} {deploy.version}",
            )
        elif key in self._done:
            outcome = ActionOutcome(
                action=action,
                service=deploy.service,
                deploy_id=deploy.id,
                changed=False,
                detail=f"already done: {action} of {deploy.id}",
            )
        else:
            self._done.add(key)
            target = deploy.previous_version or "the previous revision"
            detail = (
                f"rolled {deploy.service} back from {deploy.version} to {target}"
                if action == "rollback"
                else f"paused the rollout of {deploy.service} {deploy.version}"
            )
            outcome = ActionOutcome(
                action=action,
                service=deploy.service,
                deploy_id=deploy.id,
                changed=True,
                detail=detail,
            )
        self.calls.append(outcome)
        return outcome

    def pause(self, deploy: DeployInfo, *, dry_run: bool) -> ActionOutcome:
        return self._act("pause", deploy, dry_run)

    def rollback(self, deploy: DeployInfo, *, dry_run: bool) -> ActionOutcome:
        return self._act("rollback", deploy, dry_run)


class RecordingEscalator:
    """Records escalations and notifications instead of paging anyone."""

    def __init__(self) -> None:
        self.calls: list[ActionOutcome] = []

    def escalate(self, service: str, summary: str, severity: str) -> ActionOutcome:
        out = ActionOutcome(
            action="escalate",
            service=service,
            deploy_id=None,
            changed=True,
            detail=f"escalated ({severity}): {summary}",
        )
        self.calls.append(out)
        return out

    def notify(self, service: str, message: str) -> ActionOutcome:
        out = ActionOutcome(
            action="notify", service=service, deploy_id=None, changed=True, detail=message
        )
        self.calls.append(out)
        return out
