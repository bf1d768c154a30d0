"""What Vigil says in Slack, queued in the outbox: one thread per incident (the triage result
as its parent), the approval asked when a rollout is paused, deploy-watch actions, escalations,
handoffs and the periodic incident updates. Nothing here waits on Slack."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from agent.links import ChangeLinks
from agent.slack import incidents
from agent.slack.blocks import (
    Message,
    approval_message,
    cut,
    document_message,
    escape,
    text_message,
    triage_message,
)
from agent.slack.formats import (
    escalation_markdown,
    handoff_markdown,
    situation,
    update_markdown,
)
from agent.slack.incidents import IncidentView
from agent.slack.outbox import Outbox
from agent.slack.records import SlackStore
from agent.slack.settings import SlackSettings

log = logging.getLogger("vigil.slack")

POST = "chat.postMessage"


def _detail(raw: str) -> str:
    """The readable part of a tool result (its JSON `detail` or `message`), or the text."""
    try:
        data = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(data, dict):
        return str(data.get("detail") or data.get("message") or raw)
    return raw


class SlackNotifier:
    def __init__(
        self,
        store: SlackStore,
        outbox: Outbox,
        settings: SlackSettings,
        clock: Callable[[], float],
        links: Callable[[IncidentView], ChangeLinks] | None = None,
    ) -> None:
        self.store = store
        self.outbox = outbox
        self.settings = settings
        self.clock = clock
        self.links = links or (lambda _v: ChangeLinks())

    def triage_message(self, v: IncidentView) -> Message:
        """The incident's triage as Block Kit, with links to the change where known."""
        return triage_message(v, self.links(v))

    # ------------------------------------------------------------------ threads

    def _open(self, incident_id: str, service: str, severity: str | None) -> bool | None:
        """Open the incident's thread: True if new, False if it existed, None: no channel."""
        if self.store.thread(incident_id) is not None:
            return False
        channel = self.settings.channel_for(service, severity)
        if channel is None:
            log.warning("no Slack channel for %s (set VIGIL_SLACK_CHANNEL)", service)
            return None
        return self.store.open_thread(incident_id, channel, self.clock())

    def reply(self, incident_id: str, message: Message, *, key: str | None = None) -> bool:
        """A message in the incident's thread; False when the incident has no thread."""
        if self.store.thread(incident_id) is None:
            return False
        self.outbox.enqueue(POST, message.payload(), thread=incident_id, key=key)
        return True

    def to_channel(self, service: str, message: Message) -> bool:
        channel = self.settings.channel_for(service)
        if channel is None:
            return False
        self.outbox.enqueue(POST, {"channel": channel, **message.payload()})
        return True

    def incident(self, v: IncidentView) -> bool:
        """The incident's thread with the triage result as its parent (once), then the
        approval if the rollout was paused and the escalation if a human was paged."""
        if not self._open(v.incident_id, v.service, v.severity):
            return False
        self.outbox.enqueue(
            POST,
            self.triage_message(v).payload(),
            thread=v.incident_id,
            key=f"triage:{v.incident_id}",
        )
        paused = any(a.name == "pause_rollout" and a.status == "executed" for a in v.actions)
        rolled_back = any(a.name == "rollback" and a.status == "executed" for a in v.actions)
        if paused and not rolled_back and v.deploy_id:
            reason = f"judge tier {v.tier}: {v.summary}" if v.tier is not None else v.summary
            self.ask_approval(v.incident_id, v.deploy_id, reason)
        if v.escalated:
            self.escalation(v.incident_id)
        return True

    # ------------------------------------------------------------------ deploy watch

    def watch_action(
        self, deploy_id: str, action: str, status: str, detail: str, *, key: str | None = None
    ) -> None:
        """What the deploy watch did (as the workers record it in `watch_actions`); with
        `key`, said once however often it is reported."""
        incident_id = f"watch-{deploy_id}"
        deploy = incidents.deploy(self.store, deploy_id)
        service = deploy.service if deploy is not None else "unknown"
        opened = self._open(incident_id, service, "warning")
        if opened is None:
            return
        if opened:
            name = f"{service} {deploy.version}" if deploy is not None else deploy_id
            since = (
                f" (from {escape(deploy.previous_version)})"
                if deploy and deploy.previous_version
                else ""
            )
            self.outbox.enqueue(
                POST,
                text_message(
                    f":mag: *Deploy watch: {escape(name)}*{since} · `{escape(deploy_id)}`\n"
                    "The judge asked for an action on this deploy; what Vigil does and what "
                    "humans decide follows in this thread.",
                    notification=f"Deploy watch of {name}: the judge acted",
                ).payload(),
                thread=incident_id,
                key=f"watch:{deploy_id}",
            )
        raw = _detail(detail)
        said = escape(cut(raw, 1500))
        if action == "pause_rollout" and status == "executed":
            self.reply(incident_id, text_message(f":double_vertical_bar: Paused: {said}"), key=key)
            check = incidents.latest_check(self.store, deploy_id)
            if check is not None and check["reasons"]:
                raw = f"judge tier {check['tier']}: " + "; ".join(map(str, check["reasons"]))
            self.ask_approval(incident_id, deploy_id, raw)
        elif action == "rollback" and status == "executed":
            self.reply(incident_id, text_message(f":rewind: Rolled back: {said}"), key=key)
            # Vigil rolled back on its own (the judge reached tier 3): nothing left to decide.
            if self.store.claim_decision(deploy_id, "rollback", "vigil", self.clock()):
                self.refresh_approval(deploy_id)
        elif action == "escalate" and status == "executed":
            self.escalation(incident_id)
        elif status == "executed":
            self.reply(incident_id, text_message(f":information_source: {said}"), key=key)
        else:
            text = f":no_entry: {escape(action)} {escape(status)}: {said}"
            self.reply(incident_id, text_message(text), key=key)

    # ------------------------------------------------------------------ approvals

    def ask_approval(self, incident_id: str, deploy_id: str, reason: str) -> None:
        deploy = incidents.deploy(self.store, deploy_id)
        asked = self.store.ask_approval(
            deploy_id=deploy_id,
            incident_id=incident_id,
            service=deploy.service if deploy else "unknown",
            version=deploy.version if deploy else None,
            previous_version=deploy.previous_version if deploy else None,
            reason=reason,
            now=self.clock(),
        )
        approval = self.store.approval(deploy_id)
        if not asked or approval is None:
            return
        self.outbox.enqueue(
            POST,
            approval_message(approval).payload(),
            thread=incident_id,
            key=f"approval:{deploy_id}",
            ref=f"approval:{deploy_id}",
        )

    def refresh_approval(self, deploy_id: str) -> None:
        """Show the approval as it now stands (decision, notes) in place: chat.update."""
        approval = self.store.approval(deploy_id)
        if approval is None:
            return
        payload = {"_update_ref": f"approval:{deploy_id}", **approval_message(approval).payload()}
        self.outbox.enqueue("chat.update", payload, thread=approval.incident_id)

    # ------------------------------------------------------------------ formats

    def escalation(self, incident_id: str) -> bool:
        v = incidents.view(self.store, incident_id)
        if v is None or self.store.thread(incident_id) is None:
            return False
        text = escalation_markdown(self.store, v, self.clock())
        message = document_message(text, title=f"Escalation: {v.service} ({v.incident_id})")
        return self.reply(incident_id, message, key=f"escalation:{incident_id}")

    def handoff(self, incident_id: str, user: str) -> bool:
        """A human takes over: the summary they need, and Vigil stops its periodic updates."""
        v = incidents.view(self.store, incident_id)
        if v is None or self.store.thread(incident_id) is None:
            return False
        text = handoff_markdown(self.store, v, f"<@{user}>", self.clock())
        self.reply(incident_id, document_message(text, title=f"Handoff of {incident_id}"))
        self.store.set_thread_state(incident_id, "human")
        return True

    def updates_due(self) -> int:
        """An update in every active incident's thread that has had none for N minutes;
        a resolved incident gets its last update and no more."""
        now = self.clock()
        every = self.settings.update_minutes * 60
        posted = 0
        for thread in self.store.threads("active"):
            if thread.ts is None or now - thread.last_update_at < every:
                continue
            v = incidents.view(self.store, thread.incident_id)
            if v is None:
                continue
            s = situation(self.store, v, thread.state)
            text = update_markdown(self.store, v, now, s)
            self.reply(
                thread.incident_id,
                document_message(text, title=f"{s.status}: {v.service} ({v.incident_id})"),
            )
            self.store.touch_thread(thread.incident_id, now)
            if s.resolved:
                self.store.set_thread_state(thread.incident_id, "resolved")
            posted += 1
        return posted
