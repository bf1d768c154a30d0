"""A local WebSocket server playing Slack's Socket Mode, for `vigil slack --socket`.

    with FakeSlackApi() as slack, FakeSocketMode() as socket:
        slack.socket_url = socket.url          # apps.connections.open answers with it
        ...                                    # start the app; it connects and gets `hello`
        ack = socket.send("slash_commands", {...})   # an envelope; waits for its ack
        assert "..." in json.dumps(ack["payload"])

As Slack does, the server greets each connection with `hello`, sends envelopes with an
`envelope_id`, and expects the app to acknowledge each one (with a response payload for
slash commands). It speaks plain ws:// on 127.0.0.1 (Slack's SDK uses TLS only on port 443).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve


class FakeSocketMode:
    def __init__(self) -> None:
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: list[ServerConnection] = []
        self._acks: dict[str, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self._ids = itertools.count(1)
        self.url = ""

    def _handle(self, conn: ServerConnection) -> None:
        conn.send(json.dumps({"type": "hello", "num_connections": 1, "debug_info": {}}))
        with self._cond:
            self._connections.append(conn)
            self._cond.notify_all()
        try:
            for raw in conn:
                message = json.loads(raw)
                if isinstance(message, dict) and "envelope_id" in message:
                    with self._cond:
                        self._acks[str(message["envelope_id"])] = message
                        self._cond.notify_all()
        except ConnectionClosed:
            pass
        finally:
            with self._cond:
                self._connections.remove(conn)

    def wait_connected(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._connections:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("the app never connected over Socket Mode")
                self._cond.wait(left)

    def send(self, kind: str, payload: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        """Send one envelope to the connected app and return its acknowledgement."""
        self.wait_connected(timeout)
        envelope_id = f"env-{next(self._ids)}"
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind == "slash_commands",
        }
        with self._cond:
            conn = self._connections[-1]
        conn.send(json.dumps(envelope))
        deadline = time.monotonic() + timeout
        with self._cond:
            while envelope_id not in self._acks:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"envelope {envelope_id} ({kind}) was never acknowledged")
                self._cond.wait(left)
            return self._acks[envelope_id]

    def start(self) -> FakeSocketMode:
        self._server = serve(self._handle, "127.0.0.1", 0)
        port = self._server.socket.getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/link"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeSocketMode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
