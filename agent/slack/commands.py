"""`/vigil`: status, deploys, an incident's triage or postmortem, pause, rollback, handoff.

Reading commands answer at once (ephemeral: only the asker sees them). `pause` and `rollback`
go through the policy guard as the asker (`slack:<user id>`), only for approvers, and their
outcome is also posted where everyone sees it: the incident's thread, else the channel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agent.slack import incidents
from agent.slack.actions import ActionReport, GuardedAction, HumanActions
from agent.slack.approvers import Approvers
from agent.slack.blocks import (
    Message,
    cut,
    document_message,
    escape,
    listing,
    text_message,
    tier_text,
)
from agent.slack.formats import clock_text
from agent.slack.notifier import SlackNotifier
from agent.slack.records import SlackStore
from agent.timeline import IncidentNotFound

HELP = """*`/vigil` commands*
• `status` — open incidents and watched deploys
• `deploys [service]` — recent deploys with the judge's tier
• `triage <service>` — the latest incident of a service, as Vigil concluded
• `postmortem <incident>` — the postmortem draft (deterministic, cut for Slack)
• `handoff <incident>` — post the handoff summary in the incident's thread: you take over
• `pause <service>` — pause the latest rollout (the policy guard decides; approvers only)
• `rollback <service>` — roll the latest deploy back (needs the judge's tier 3; approvers only)
• `help` — this list"""

ACTIONS: dict[str, GuardedAction] = {"pause": "pause_rollout", "rollback": "rollback"}


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple[str, ...]

    @property
    def arg(self) -> str | None:
        return self.args[0] if self.args else None


def parse(text: str) -> Command:
    words = text.split()
    if not words:
        return Command("help", ())
    return Command(words[0].lower(), tuple(words[1:]))


def help_message(prefix: str | None = None) -> Message:
    return text_message(f"{prefix}\n\n{HELP}" if prefix else HELP, notification="/vigil help")


class SlackCommands:
    def __init__(
        self,
        store: SlackStore,
        notifier: SlackNotifier,
        actions: HumanActions,
        approvers: Approvers,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.actions = actions
        self.approvers = approvers
        self.clock = clock

    def is_action(self, cmd: Command) -> bool:
        return cmd.name in ACTIONS and cmd.arg is not None

    def answer(self, cmd: Command, user: str) -> Message:
        """A reading command (or help): the reply for the asker."""
        if cmd.name == "status":
            return self.status()
        if cmd.name == "deploys":
            return self.deploys(cmd.arg)
        if cmd.name == "triage" and cmd.arg:
            return self.triage(cmd.arg)
        if cmd.name == "postmortem" and cmd.arg:
            return self.postmortem(cmd.arg)
        if cmd.name == "handoff" and cmd.arg:
            return self.handoff(cmd.arg, user)
        if cmd.name == "help":
            return help_message()
        if cmd.name in ("triage", "postmortem", "handoff", *ACTIONS):
            return help_message(f"`{escape(cmd.name)}` needs an argument.")
        return help_message(f"I don't know `{escape(cut(cmd.name, 40))}`.")

    def status(self) -> Message:
        now = self.clock()
        lines = []
        for v in incidents.recent(self.store, now - 24 * 3600):
            thread = self.store.thread(v.incident_id)
            state = thread.state if thread else "no thread"
            lines.append(
                f"• `{escape(v.incident_id)}` {escape(v.service)} — "
                f"{tier_text(v.tier, v.tier_name)} — {state} — {escape(cut(v.summary, 120))}"
            )
        watching = self.store.rows(
            "SELECT deploy_id, service, state, tier, max_tier FROM watch_sessions"
            " WHERE state IN ('watching', 'paused') ORDER BY opened_at DESC LIMIT 20"
        )
        lines += [
            f"• watching `{escape(w['deploy_id'])}` ({escape(w['service'])}): {w['state']}, "
            f"tier {w['tier']} now, {w['max_tier']} at most"
            for w in watching
        ]
        return listing("Incidents of the last 24 h and watched deploys", lines, empty="All quiet.")

    def deploys(self, service: str | None) -> Message:
        sql = (
            "SELECT d.id, d.service, d.version, d.status, d.started_at, s.state, s.max_tier"
            " FROM deploys d LEFT JOIN watch_sessions s ON s.deploy_id = d.id"
        )
        args: tuple[str, ...] = ()
        if service:
            sql += " WHERE d.service = ?"
            args = (service,)
        rows = self.store.rows(sql + " ORDER BY d.started_at DESC LIMIT 10", args)
        lines = [
            f"• `{escape(r['id'])}` {escape(r['service'])} {escape(r['version'])} — "
            f"{escape(r['status'])} at {clock_text(r['started_at'])}"
            + (f" — watch {r['state']}, tier {r['max_tier']} at most" if r["state"] else "")
            for r in rows
        ]
        title = f"Recent deploys of {service}" if service else "Recent deploys"
        return listing(title, lines, empty="No deploys recorded.")

    def triage(self, service: str) -> Message:
        v = incidents.latest(self.store, service)
        if v is None:
            return text_message(f"No incident of `{escape(service)}` is recorded.")
        return self.notifier.triage_message(v)

    def postmortem(self, incident_id: str) -> Message:
        from agent.postmortem import deterministic, facts_for

        try:
            facts = facts_for(self.store.core(), incident_id)
        except IncidentNotFound:
            return text_message(f"No incident `{escape(incident_id)}` is recorded.")
        draft = deterministic(facts, "drafted for Slack")
        return document_message(
            draft.markdown,
            title=f"Postmortem draft of {incident_id}",
            note=f"Cut for Slack: `vigil postmortem {escape(incident_id)}` prints the whole "
            "draft (written by the model when a key is set).",
        )

    def handoff(self, incident_id: str, user: str) -> Message:
        if incidents.view(self.store, incident_id) is None:
            return text_message(f"No incident `{escape(incident_id)}` is recorded.")
        self.actions.note(incident_id, user, "took over the incident (handoff in Slack)")
        if not self.notifier.handoff(incident_id, user):
            return text_message(
                f"You have taken over `{escape(incident_id)}` (it has no Slack thread to post "
                "the handoff summary in)."
            )
        return text_message(f"The handoff summary of `{escape(incident_id)}` is in its thread.")

    def act(self, cmd: Command, user: str) -> tuple[Message, ActionReport | None]:
        """Pause or roll back (approvers only, through the guard); the asker's reply."""
        service = cmd.arg or ""
        allowed = self.approvers.check(user)
        if not allowed.allowed:
            return text_message(
                f":no_entry: {cmd.name} of `{escape(service)}`: {allowed.reason}."
            ), None
        report = self.actions.act(ACTIONS[cmd.name], service, user)
        icon = ":white_check_mark:" if report.done else ":no_entry:"
        text = (
            f"{icon} <@{user}> asked for *{escape(cmd.name)}* of `{escape(service)}`"
            + (f" (`{escape(report.deploy_id)}`)" if report.deploy_id else "")
            + f": *{report.status}* — {escape(cut(report.detail or report.message, 1500))}"
        )
        message = text_message(text)
        if report.incident_id is None:
            return message, report
        if report.done and report.deploy_id and self.store.approval(report.deploy_id):
            decision = "rollback" if cmd.name == "rollback" else None
            if decision and self.store.claim_decision(
                report.deploy_id, decision, user, self.clock()
            ):
                self.notifier.refresh_approval(report.deploy_id)
        if not self.notifier.reply(report.incident_id, message):
            self.notifier.to_channel(service, message)
        return message, report
