"""A local HTTP server playing the Slack Web API, recording every call.

    with FakeSlackApi(usergroups={"S0ONCALL": ["U1"]}) as slack:
        slack.fail("chat.postMessage", Reply(500, {"ok": False, "error": "internal_error"}))
        ...  # point VIGIL_SLACK_API_URL (or SlackSettings.api_url) at slack.url
        (call,) = slack.calls("chat.postMessage")
        assert call.args["channel"] == "C1" and call.args["thread_ts"] == ...

Methods answer as Slack does (`ok`, `channel`, `ts` ...) with increasing message timestamps;
`fail` queues answers given before the normal one (500s, 429 with Retry-After, `drop` for a
network error). `response_url` stands in for the URLs Slack gives slash commands and buttons.
Calls are parsed from JSON bodies, form bodies and query strings alike.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from tests.fakes.http_recorder import HttpRecorder, RecordedRequest, Reply

METHODS = (
    "auth.test",
    "chat.postMessage",
    "chat.update",
    "chat.postEphemeral",
    "usergroups.users.list",
    "apps.connections.open",
)


@dataclass(frozen=True)
class SlackCall:
    method: str  # e.g. chat.postMessage
    args: dict[str, Any]
    headers: dict[str, str]
    answered: int  # the HTTP status the fake answered (0: the connection was dropped)
    answer: Any = None  # the body it answered with


def _args(request: RecordedRequest) -> dict[str, Any]:
    kind = request.headers.get("content-type", "")
    args: dict[str, Any] = {k: v[-1] for k, v in request.query.items()}
    if request.body and kind.startswith("application/json"):
        args.update(request.json())
    elif request.body:
        args.update({k: v[-1] for k, v in parse_qs(request.text).items()})
    return args


class FakeSlackApi:
    def __init__(
        self, *, usergroups: dict[str, list[str]] | None = None, bot_user: str = "UVIGILBOT"
    ) -> None:
        self.usergroups = usergroups or {}
        self.bot_user = bot_user
        self.http = HttpRecorder()
        self._calls: list[SlackCall] = []
        self._failures: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        for method in METHODS:
            for verb in ("GET", "POST"):
                self.http.on(verb, f"/api/{method}", self._answer)
        self.http.on("POST", "/respond", self._respond)
        self.url = f"{self.http.url}/api/"
        self.response_url = f"{self.http.url}/respond"
        self.socket_url: str | None = None  # what apps.connections.open hands out

    # ------------------------------------------------------------------ script

    def fail(self, method: str, *replies: Reply) -> FakeSlackApi:
        """Answer the next calls of `method` with `replies`, in order, then normally."""
        with self._lock:
            self._failures.setdefault(method, []).extend(replies)
        return self

    # ------------------------------------------------------------------ what was called

    def calls(self, method: str | None = None) -> list[SlackCall]:
        with self._lock:
            found = list(self._calls)
        return [c for c in found if method is None or c.method == method]

    def posted(self, method: str = "chat.postMessage") -> list[dict[str, Any]]:
        """The arguments of the calls of `method` that succeeded."""
        return [c.args for c in self.calls(method) if c.answered == 200]

    def ts(self, args: dict[str, Any]) -> str:
        """The ts Slack gave the message posted with these arguments."""
        found = [c for c in self.calls("chat.postMessage") if c.answered == 200 and c.args == args]
        return str(found[-1].answer["ts"])

    def responses(self) -> list[dict[str, Any]]:
        """What was posted to the response_url (slash commands' `respond`)."""
        return [r.json() for r in self.http.received("POST", "/respond")]

    def wait_for(self, check: Callable[[], bool], timeout: float = 5.0) -> None:
        """Listeners work after they acknowledge: wait for their calls."""
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; calls: {[c.method for c in self.calls()]}")
            time.sleep(0.01)

    # ------------------------------------------------------------------ answers

    def _next_ts(self) -> str:
        n = next(self._ts)
        return f"{1_760_000_000 + n}.{n:06d}"

    def _ok(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://vigil-test.slack.com/",
                "team": "Vigil test",
                "user": "vigil",
                "team_id": "T0VIGIL",
                "user_id": self.bot_user,
                "bot_id": "B0VIGIL",
            }
        if method == "chat.postMessage":
            ts = self._next_ts()
            message = {"type": "message", "ts": ts, "text": args.get("text", "")}
            if args.get("thread_ts"):
                message["thread_ts"] = args["thread_ts"]
            return {"ok": True, "channel": args.get("channel"), "ts": ts, "message": message}
        if method == "chat.update":
            return {"ok": True, "channel": args.get("channel"), "ts": args.get("ts")}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self._next_ts()}
        if method == "apps.connections.open" and self.socket_url is not None:
            return {"ok": True, "url": self.socket_url}
        if method == "usergroups.users.list":
            group = str(args.get("usergroup", ""))
            if group not in self.usergroups:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": self.usergroups[group]}
        return {"ok": False, "error": "not_allowed_token_type"}

    def _answer(self, request: RecordedRequest) -> Reply:
        method = request.path.rsplit("/", 1)[1]
        args = _args(request)
        with self._lock:
            queue = self._failures.get(method)
            reply = queue.pop(0) if queue else None
            if reply is None:
                reply = Reply(200, self._ok(method, args))
            self._calls.append(
                SlackCall(
                    method, args, request.headers, 0 if reply.drop else reply.status, reply.body
                )
            )
        return reply

    def _respond(self, request: RecordedRequest) -> Reply:
        return Reply(200, "ok")

    # ------------------------------------------------------------------ server

    def start(self) -> FakeSlackApi:
        self.http.start()
        return self

    def stop(self) -> None:
        self.http.stop()

    def __enter__(self) -> FakeSlackApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
