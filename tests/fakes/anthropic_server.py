"""A local HTTP server that speaks enough of the Anthropic Messages API to play scripted turns.

Each scripted turn is a response dict (a message), an `Error(status, type)`, or a callable
taking the request body and returning either. Every request is recorded.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


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
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def _next(self, body: dict[str, Any]) -> dict[str, Any] | Error:
        with self._lock:
            self.requests.append(body)
            if not self.script:
                return Error(500, "api_error", "script exhausted")
            turn = self.script.pop(0)
        return turn(body) if callable(turn) else turn

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                if self.path.rstrip("/") != "/v1/messages":
                    self._send(404, {"type": "error", "error": {"type": "not_found_error"}})
                    return
                out = fake._next(body)
                if isinstance(out, Error):
                    payload = {"type": "error", "error": {"type": out.type, "message": out.message}}
                    self._send(out.status, payload, out.headers)
                else:
                    self._send(200, out)

            def _send(
                self, status: int, payload: Any, headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def start(self) -> FakeAnthropic:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def fake_anthropic(script: list[Turn]) -> Iterator[FakeAnthropic]:
    server = FakeAnthropic(script).start()
    try:
        yield server
    finally:
        server.stop()
