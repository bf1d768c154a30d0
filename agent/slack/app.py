"""The Slack app (slack-bolt): events, the `/vigil` command and the approval buttons, served
over HTTP at `POST /slack/events` in `vigil serve` (`mount_slack`) or over Socket Mode
(`vigil slack --socket`).

Bolt verifies every HTTP request's signature and refuses one whose timestamp is more than
five minutes away (401). Listeners acknowledge first and work after, so Slack never waits on
the judge, the model or the store; everything they post goes through the outbox.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from slack_bolt import Ack, App, Respond
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError
from starlette.concurrency import run_in_threadpool

from agent.server.runtime import Backends
from agent.slack import incidents
from agent.slack.actions import HumanActions
from agent.slack.approvers import Approvers
from agent.slack.blocks import APPROVE, HOLD, RESUME, USER_ID, context, escape, text_message
from agent.slack.chat import IncidentChat, LoopFactory, clean_question
from agent.slack.client import WebPoster, web_client
from agent.slack.commands import SlackCommands, parse
from agent.slack.feed import SlackFeed
from agent.slack.formats import clock_text
from agent.slack.notifier import SlackNotifier
from agent.slack.outbox import FlushReport, Outbox
from agent.slack.records import SlackStore
from agent.slack.settings import SlackSettings

log = logging.getLogger("vigil.slack")

MAX_BODY = 1024 * 1024
_INCIDENT_ID = re.compile(r"\b((?:inc|watch|slack)-[\w.:-]+)")
_BUTTONS = {APPROVE: "Approve rollback", RESUME: "Resume", HOLD: "Hold"}


def _default_loop() -> tuple[Any, str]:
    from agent.triage import settings_and_loop

    return settings_and_loop(offline=False)


class SlackBridge:
    """Everything the Slack side of Vigil needs, over one sqlite file and one WebClient.

    `tick()` is what the server calls every few seconds: read what the workers recorded, queue
    the incident updates that are due, post what is queued. `start()` runs it in a thread."""

    def __init__(
        self,
        *,
        db_path: Path | str,
        backends: Backends,
        settings: SlackSettings,
        clock: Callable[[], float] = time.time,
        loop_factory: LoopFactory | None = None,
        client: WebClient | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.store = SlackStore(db_path)
        self.client = client or web_client(settings)
        self.outbox = Outbox(self.store, WebPoster(self.client), clock)
        self.notifier = SlackNotifier(
            self.store,
            self.outbox,
            settings,
            clock,
            links=lambda v: incidents.change_links(self.store, backends, v),
        )
        self.feed = SlackFeed(self.store, self.notifier)
        self.approvers = Approvers(settings, self.client, clock)
        self.actions = HumanActions(self.store, backends, clock)
        self.chat = IncidentChat(self.store, backends, clock, loop_factory or _default_loop)
        self.commands = SlackCommands(
            self.store, self.notifier, self.actions, self.approvers, clock
        )
        self.feed.mark()
        self.app = build_app(self)
        self._flushing = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ the loop

    def flush(self) -> FlushReport:
        """Post what is due in the outbox (one flush at a time in this process)."""
        with self._flushing:
            return self.outbox.flush()

    def tick(self) -> FlushReport:
        for step in (self.feed.scan, self.notifier.updates_due):
            try:
                step()
            except Exception:  # one bad record must not stop Slack updates
                log.exception("slack %s", getattr(step, "__name__", "step"))
        return self.flush()

    def start(self, interval_s: float = 2.0) -> None:
        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.tick()
                except Exception:
                    log.exception("slack tick")

        self._thread = threading.Thread(target=loop, name="vigil-slack", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # ------------------------------------------------------------------ listeners

    def ephemeral(self, channel: str, user: str, text: str) -> None:
        """Only `user` sees it; not kept in the outbox (it means nothing later)."""
        try:
            self.client.chat_postEphemeral(channel=channel, user=user, text=text)
        except (SlackClientError, OSError) as exc:
            log.warning("Slack chat.postEphemeral failed: %s", exc)

    def on_message(self, event: dict[str, Any], *, direct: bool) -> None:
        """A mention in a thread, or a DM: answer about the incident, in the thread."""
        channel, user = str(event.get("channel", "")), str(event.get("user", ""))
        if not channel or not USER_ID.match(user):
            return
        key = f"answer:{channel}:{event.get('ts')}"
        if self.outbox.queued(key):
            return  # Slack re-sent an event it thought we missed: answered already
        text = str(event.get("text", ""))
        thread_ts = event.get("thread_ts")
        incident_id = None
        if thread_ts:
            thread = self.store.thread_at(channel, str(thread_ts))
            incident_id = thread.incident_id if thread else None
        if incident_id is None and (m := _INCIDENT_ID.search(text)):
            incident_id = m[1]
        if incident_id is None and direct:
            latest = incidents.recent(self.store, 0.0, limit=1)
            incident_id = latest[0].incident_id if latest else None
        if incident_id is None:
            message = text_message(
                "Ask me in an incident's thread, or name the incident (`inc-…`)."
            )
        else:
            answer = self.chat.answer(incident_id, clean_question(text), user)
            message = text_message(answer.text or "—", notification=f"About {incident_id}")
            notes = [f"`{escape(incident_id)}`"]
            if answer.mode == "offline":
                notes.append(
                    "from Vigil's record" + (f": {escape(answer.note)}" if answer.note else "")
                )
            message.blocks.append(context(" · ".join(notes)).to_dict())
        reply_ts = str(thread_ts or event.get("ts") or "")
        payload = {"channel": channel, **message.payload()}
        if reply_ts:
            payload["thread_ts"] = reply_ts
        self.outbox.enqueue("chat.postMessage", payload, key=key)
        self.flush()

    def on_command(self, body: dict[str, Any], ack: Ack, respond: Respond) -> None:
        user = str(body.get("user_id", ""))
        cmd = parse(str(body.get("text", "")))
        if not USER_ID.match(user):
            ack(response_type="ephemeral", text="Who is asking? (no Slack user id)")
            return
        if self.commands.is_action(cmd):
            ack(
                response_type="ephemeral",
                text=f":hourglass_flowing_sand: Asking the policy guard to {cmd.name} "
                f"{escape(cmd.arg or '')}…",
            )
            message, _ = self.commands.act(cmd, user)
            respond(response_type="ephemeral", replace_original=False, **message.payload())
        else:
            message = self.commands.answer(cmd, user)
            ack(response_type="ephemeral", **message.payload())
        self.flush()

    def on_button(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        """Approve rollback / Resume / Hold on a paused rollout: approvers only, audited."""
        user = str(body.get("user", {}).get("id", ""))
        which, deploy_id = str(action.get("action_id")), str(action.get("value", ""))
        channel = str(
            body.get("container", {}).get("channel_id") or body.get("channel", {}).get("id", "")
        )
        label = _BUTTONS.get(which, which)
        if not USER_ID.match(user) or not channel:
            return
        approval = self.store.approval(deploy_id)
        if approval is None:
            self.ephemeral(channel, user, f"No approval is open for `{escape(deploy_id)}`.")
            return
        allowed = self.approvers.check(user)
        if not allowed.allowed:
            self.actions.note(
                approval.incident_id,
                user,
                f"pressed {label} on the paused rollout of {deploy_id}: refused, {allowed.reason}",
                decision=which,
                deploy_id=deploy_id,
                refused=True,
            )
            self.ephemeral(channel, user, f":no_entry: {label}: {allowed.reason}.")
            return
        if approval.decision is not None:
            self.ephemeral(
                channel,
                user,
                f"Already decided: {approval.decision} by <@{approval.decided_by}>.",
            )
            return
        now = clock_text(self.clock())
        if which == HOLD:
            self.actions.note(
                approval.incident_id,
                user,
                f"held the paused rollout of {deploy_id}: a human takes over",
                decision="hold",
                deploy_id=deploy_id,
            )
            self.store.add_note(deploy_id, f"Held by <@{user}> at {now}: they have taken over.")
            self.notifier.handoff(approval.incident_id, user)
        else:
            decision = "rollback" if which == APPROVE else "resume"
            if not self.store.claim_decision(deploy_id, decision, user, self.clock()):
                self.ephemeral(channel, user, "Someone decided at the same moment.")
                return
            try:
                if decision == "rollback":
                    report = self.actions.act(
                        "rollback", approval.service, user, deploy_id=deploy_id
                    )
                else:
                    report = self.actions.resume(deploy_id, user)
            except Exception:
                self.store.release_decision(deploy_id)  # not carried out: still to decide
                raise
            said = escape(report.detail or report.message)
            if report.done:
                icon = ":rewind:" if decision == "rollback" else ":arrow_forward:"
                self.notifier.reply(
                    approval.incident_id,
                    text_message(
                        f"{icon} <@{user}> decided *{decision}*: {report.status} — {said}"
                    ),
                )
            else:
                self.store.release_decision(deploy_id)
                self.store.add_note(
                    deploy_id, f"<@{user}> asked for {decision} at {now}: {report.status} — {said}"
                )
                self.notifier.reply(
                    approval.incident_id,
                    text_message(
                        f":no_entry: <@{user}> asked for *{decision}*: {report.status} — {said}. "
                        "The rollout stays paused."
                    ),
                )
        self.notifier.refresh_approval(deploy_id)
        self.flush()


def build_app(bridge: SlackBridge) -> App:
    """The bolt App over the bridge: its WebClient, its listeners."""
    secret = bridge.settings.signing_secret
    app = App(
        client=bridge.client,
        signing_secret=secret.get_secret_value() if secret else None,
        request_verification_enabled=secret is not None,  # Socket Mode needs none
        token_verification_enabled=False,  # no Slack call at start-up; auth.test on first use
        process_before_response=False,
        name="vigil",
        logger=logging.getLogger("vigil.slack.bolt"),
    )

    @app.event("app_mention")
    def mention(event: dict[str, Any]) -> None:
        bridge.on_message(event, direct=False)

    @app.event("message")
    def message(event: dict[str, Any]) -> None:
        if event.get("channel_type") != "im" or event.get("bot_id") or event.get("subtype"):
            return
        bridge.on_message(event, direct=True)

    @app.command("/vigil")
    def command(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        bridge.on_command(body, ack, respond)

    @app.action(re.compile(f"^({APPROVE}|{RESUME}|{HOLD})$"))
    def button(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        bridge.on_button(body, action)

    return app


def mount_slack(
    app: FastAPI,
    *,
    db_path: Path | str,
    backends: Backends,
    settings: SlackSettings | None = None,
    clock: Callable[[], float] = time.time,
    loop_factory: LoopFactory | None = None,
    client: WebClient | None = None,
) -> SlackBridge | None:
    """Serve Slack at `POST /slack/events`; None (nothing mounted) when Slack is not
    configured (no SLACK_BOT_TOKEN or SLACK_SIGNING_SECRET)."""
    settings = settings if settings is not None else SlackSettings.from_env()
    if not settings.http_ready:
        return None
    bridge = SlackBridge(
        db_path=db_path,
        backends=backends,
        settings=settings,
        clock=clock,
        loop_factory=loop_factory,
        client=client,
    )

    @app.post("/slack/events", include_in_schema=False)
    async def slack_events(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"status": "rejected", "reason": "body too large"}, 413)
        if not request.headers.get("x-slack-request-timestamp", "").isdigit():
            # Bolt would fail on it (a 500); a request without a valid timestamp is unsigned.
            return JSONResponse({"error": "invalid request"}, 401)
        bolt_request = to_bolt_request(request, body)
        # Bolt's dispatch blocks until the listener acknowledges: off the event loop.
        bolt_response = await run_in_threadpool(bridge.app.dispatch, bolt_request)
        return to_starlette_response(bolt_response)

    return bridge


def socket_handler(bridge: SlackBridge) -> Any:
    """The Socket Mode handler over the bridge's app (connects when started)."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    token = bridge.settings.app_token
    if token is None:
        raise ValueError("Socket Mode needs SLACK_APP_TOKEN")
    return SocketModeHandler(bridge.app, token.get_secret_value())
