"""A local HTTP server that records every request and answers from a script.

Stands in for any remote HTTP API in tests (a deploy system's webhook, PagerDuty, ...):

    with HttpRecorder() as server:
        server.on("POST", "/hooks/vigil", Reply(500), Reply(200, {"status": "accepted"}))
        ...  # point the code under test at server.url + "/hooks/vigil"
        [request] = server.received("POST", "/hooks/vigil")[-1:]
        assert request.json()["action"] == "rollback"

A route is a method and a path (the query string is not part of it). Its replies are used in
order and the last one repeats; a reply can also be a function of the request (for a fake
with state). A request with no scripted route goes to the `fallback` responder if one is set
(a fake that routes by itself), else gets a 404 with a JSON error. Every request is
recorded before it is answered, with its exact body bytes and its headers (names lower-cased).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class _QuietServer(ThreadingHTTPServer):
    """A client that gave up (a timeout test) is not a server error worth a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    """One scripted answer. `body` is sent as JSON unless it is bytes or str; `None` sends no
    body. `delay_s` waits before answering (to trigger client timeouts); `drop` closes the
    connection without any answer (a network error for the client)."""

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    drop: bool = False


Responder = Reply | Callable[[RecordedRequest], Reply]


class HttpRecorder:
    """A ThreadingHTTPServer on 127.0.0.1 (a free port) with scripted routes."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._routes: dict[tuple[str, str], list[Responder]] = {}
        self._fallback: Callable[[RecordedRequest], Reply] | None = None
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread: threading.Thread | None = None

    # Script

    def on(self, method: str, path: str, *replies: Responder) -> HttpRecorder:
        """Answer `method path` with `replies` in order; the last one repeats."""
        if not replies:
            raise ValueError("give at least one reply")
        with self._lock:
            self._routes[(method.upper(), path)] = list(replies)
        return self

    def fallback(self, responder: Callable[[RecordedRequest], Reply]) -> HttpRecorder:
        """Answer every request that has no scripted route with `responder`."""
        self._fallback = responder
        return self

    def received(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        """The requests recorded so far, optionally only those to `method` and/or `path`."""
        with self._lock:
            found = list(self.requests)
        return [
            r
            for r in found
            if (method is None or r.method == method.upper()) and (path is None or r.path == path)
        ]

    def forget(self) -> None:
        """Drop the requests recorded so far."""
        with self._lock:
            self.requests.clear()

    def _answer(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            queue = self._routes.get((request.method, request.path))
            fallback = self._fallback
            if not queue and fallback is not None:
                responder: Responder = fallback
            elif not queue:
                return Reply(
                    404, {"error": f"no scripted reply for {request.method} {request.path}"}
                )
            else:
                responder = queue.pop(0) if len(queue) > 1 else queue[0]
        return responder(request) if callable(responder) else responder

    # Server

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = RecordedRequest(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                reply = recorder._answer(request)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if reply.drop:
                    self.close_connection = True
                    return
                self._send(reply)

            def _send(self, reply: Reply) -> None:
                if reply.body is None:
                    data, kind = b"", None
                elif isinstance(reply.body, bytes):
                    data, kind = reply.body, "application/octet-stream"
                elif isinstance(reply.body, str):
                    data, kind = reply.body.encode("utf-8"), "text/plain; charset=utf-8"
                else:
                    data, kind = json.dumps(reply.body).encode("utf-8"), "application/json"
                self.send_response(reply.status)
                names = {k.lower() for k in reply.headers}
                if kind is not None and "content-type" not in names:
                    self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        return Handler

    def start(self) -> HttpRecorder:
        # A short poll interval: `stop` waits for the serving loop to notice.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HttpRecorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
