"""A local HTTP server that speaks enough of the Anthropic Messages API to play scripted turns.

Each scripted turn is a response dict (a message), an `Error(status, type)`, or a callable
taking the request body and returning either. Every request is recorded (by `HttpRecorder`).
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.http_recorder import HttpRecorder, RecordedRequest, Reply


@dataclass
class Error:
    status: int
    type: str = "api_error"
    message: str = "scripted failure"
    headers: dict[str, str] = field(default_factory=dict)


Turn = dict[str, Any] | Error | Callable[[dict[str, Any]], "dict[str, Any] | Error"]

_ids = itertools.count(1)


def message(
    *blocks: dict[str, Any], stop: str | None = None, usage: dict[str, int] | None = None
) -> dict[str, Any]:
    has_tool = any(b["type"] == "tool_use" for b in blocks)
    return {
        "id": f"msg_{next(_ids):04d}",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": list(blocks),
        "stop_reason": stop or ("tool_use" if has_tool else "end_turn"),
        "stop_sequence": None,
        "usage": usage
        or {
            "input_tokens": 1200,
            "output_tokens": 150,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 900,
        },
    }


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def tool_use(name: str, arguments: Any = None, id: str | None = None) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "id": id or f"toolu_{next(_ids):04d}",
        "name": name,
        "input": {} if arguments is None else arguments,
    }


class FakeAnthropic:
    def __init__(self, script: list[Turn]) -> None:
        self.script = list(script)
        self._lock = threading.Lock()
        self.http = HttpRecorder().on("POST", "/v1/messages", self._respond)
        self.http.fallback(
            lambda _r: Reply(404, {"type": "error", "error": {"type": "not_found_error"}})
        )
        self.url = self.http.url

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The bodies of the Messages API calls, in order."""
        return [r.json() for r in self.http.received("POST", "/v1/messages")]

    @property
    def headers(self) -> list[dict[str, str]]:
        """The headers of every request (names lower-cased), in order."""
        return [r.headers for r in self.http.received()]

    def _respond(self, request: RecordedRequest) -> Reply:
        body = json.loads(request.body or b"{}")
        with self._lock:
            turn = (
                self.script.pop(0) if self.script else Error(500, "api_error", "script exhausted")
            )
        out = turn(body) if callable(turn) else turn
        if isinstance(out, Error):
            payload = {"type": "error", "error": {"type": out.type, "message": out.message}}
            return Reply(out.status, payload, out.headers)
        return Reply(200, out)

    def start(self) -> FakeAnthropic:
        self.http.start()
        return self

    def stop(self) -> None:
        self.http.stop()


@contextmanager
def fake_anthropic(script: list[Turn]) -> Iterator[FakeAnthropic]:
    server = FakeAnthropic(script).start()
    try:
        yield server
    finally:
        server.stop()
