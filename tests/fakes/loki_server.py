"""A local HTTP server that answers Loki's query API from in-memory streams.

`GET /loki/api/v1/query_range` honours `start` (inclusive) and `end` (exclusive) in ns,
`limit` (across all streams, refused above `max_entries` as Loki does), `direction`, a
selector of `label="value"` matchers, `|= "text"` / `!= "text"` line filters and
`| label=~"regex"` label filters; anything else in the query is a 400 parse error. Answers are
in Loki's exact JSON shape. `/loki/api/v1/labels` and `/ready` answer too.

Faults queue up (`fail`) and are served one per request before normal answers: a status with
a body and headers (500, 429 with Retry-After, garbage with 200), or a delay. Required tenant,
bearer token or basic credentials make requests without them fail with 401. Every request is
recorded (the HTTP side is `HttpRecorder`'s).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.http_recorder import HttpRecorder, RecordedRequest, Reply


@dataclass
class Stream:
    labels: dict[str, str]
    values: list[tuple[int, str]]  # (timestamp in ns, line)


@dataclass
class Fault:
    """One scripted bad answer. `status=None` with a delay: slow, then the normal answer."""

    status: int | None = 500
    body: str = "internal server error"
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/plain; charset=utf-8"
    delay_s: float = 0.0


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]  # lower-case names


class QueryError(ValueError):
    """The query is not one this fake (or Loki) understands."""


_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*")\s*,?')
_STAGE = re.compile(r'\s*(\|=|!=|\|~|!~)\s*("(?:[^"\\]|\\.)*")')
_LABEL_FILTER = re.compile(r'\s*\|\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|=|!=)\s*("(?:[^"\\]|\\.)*")')


@dataclass(frozen=True)
class Query:
    matchers: tuple[tuple[str, str, str], ...]
    line_filters: tuple[tuple[str, str], ...]
    label_filters: tuple[tuple[str, str, str], ...]

    def selects(self, labels: Mapping[str, str]) -> bool:
        return all(_match(labels.get(k, ""), op, v) for k, op, v in self.matchers)

    def keeps(self, labels: Mapping[str, str], line: str) -> bool:
        for op, text in self.line_filters:
            if op == "|=" and text not in line:
                return False
            if op == "!=" and text in line:
                return False
            if op == "|~" and re.search(text, line) is None:
                return False
            if op == "!~" and re.search(text, line) is not None:
                return False
        return all(_match(labels.get(k, ""), op, v) for k, op, v in self.label_filters)


def _match(value: str, op: str, want: str) -> bool:
    if op == "=":
        return value == want
    if op == "!=":
        return value != want
    hit = re.fullmatch(want, value) is not None
    return hit if op == "=~" else not hit


def parse_query(text: str) -> Query:
    """A LogQL log query of the simple kind: `{a="b"} |= "x" | level=~"err|warn"`."""
    text = text.strip()
    if not text.startswith("{") or "}" not in text:
        raise QueryError(f"parse error at line 1, col 1: syntax error: unexpected {text[:1]!r}")
    pos, matchers = 1, []
    while True:
        m = _MATCHER.match(text, pos)
        if m is None:
            break
        matchers.append((m.group(1), m.group(2), json.loads(m.group(3))))
        pos = m.end()
    if not text[pos:].lstrip().startswith("}") or not matchers:
        raise QueryError(f"parse error at col {pos + 1}: syntax error in stream selector")
    pos = text.index("}", pos) + 1
    lines, labels = [], []
    while pos < len(text):
        if not text[pos:].strip():
            break
        m = _STAGE.match(text, pos)
        if m is not None:
            lines.append((m.group(1), json.loads(m.group(2))))
            pos = m.end()
            continue
        m = _LABEL_FILTER.match(text, pos)
        if m is not None:
            labels.append((m.group(1), m.group(2), json.loads(m.group(3))))
            pos = m.end()
            continue
        raise QueryError(f"parse error at col {pos + 1}: syntax error: unexpected {text[pos:]!r}")
    return Query(tuple(matchers), tuple(lines), tuple(labels))


class FakeLoki:
    def __init__(
        self,
        streams: list[Stream] | None = None,
        *,
        tenant: str | None = None,
        token: str | None = None,
        basic: tuple[str, str] | None = None,
        max_entries: int = 5000,
    ) -> None:
        self.streams = list(streams or [])
        self.tenant = tenant
        self.token = token
        self.basic = basic
        self.max_entries = max_entries
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self.http = HttpRecorder().fallback(self._respond)
        self.url = self.http.url

    @property
    def requests(self) -> list[Request]:
        return [
            Request(r.method, r.path, {k: v[-1] for k, v in r.query.items()}, r.headers)
            for r in self.http.received()
        ]

    def fail(self, *faults: Fault) -> None:
        """Serve these answers, one per request, before any normal answer."""
        with self._lock:
            self.faults.extend(faults)

    def queries(self) -> list[Request]:
        return [r for r in self.requests if r.path == "/loki/api/v1/query_range"]

    def _refusal(self, headers: Mapping[str, str]) -> tuple[int, str] | None:
        if self.tenant is not None and headers.get("x-scope-orgid") != self.tenant:
            return 401, "no org id"
        auth = headers.get("authorization", "")
        if self.token is not None and auth != f"Bearer {self.token}":
            return 401, "unauthorized"
        if self.basic is not None:
            expected = base64.b64encode(":".join(self.basic).encode()).decode()
            if auth != f"Basic {expected}":
                return 401, "unauthorized"
        return None

    def answer(self, path: str, params: Mapping[str, str]) -> tuple[int, Any]:
        """(status, JSON body or error text) for a request that passed faults and auth."""
        if path == "/ready":
            return 200, "ready"
        if path == "/loki/api/v1/labels":
            names = sorted({k for s in self.streams for k in s.labels})
            return 200, {"status": "success", "data": names}
        if path != "/loki/api/v1/query_range":
            return 404, "404 page not found"
        try:
            query = parse_query(params.get("query", ""))
            limit = int(params.get("limit", "100"))
            start = int(params.get("start", "0"))
            end = int(params["end"]) if "end" in params else time.time_ns()
        except (QueryError, ValueError) as exc:
            return 400, str(exc)
        if limit > self.max_entries:
            return 400, (
                "max entries limit per query exceeded, limit > max_entries_limit_per_query "
                f"({limit} > {self.max_entries})"
            )
        backward = params.get("direction", "backward") == "backward"
        hits = [
            (ts, index, line)
            for index, stream in enumerate(self.streams)
            if query.selects(stream.labels)
            for ts, line in stream.values
            if start <= ts < end and query.keeps(stream.labels, line)
        ]
        hits.sort(key=lambda h: h[0], reverse=backward)
        grouped: dict[int, list[list[str]]] = {}
        for ts, index, line in hits[:limit]:
            grouped.setdefault(index, []).append([str(ts), line])
        result = [
            {"stream": self.streams[index].labels, "values": values}
            for index, values in sorted(grouped.items())
        ]
        body = {
            "status": "success",
            "data": {
                "resultType": "streams",
                "result": result,
                "stats": {"summary": {"totalEntriesReturned": min(len(hits), limit)}},
            },
        }
        return 200, body

    def _respond(self, request: RecordedRequest) -> Reply:
        with self._lock:
            fault = self.faults.pop(0) if self.faults else None
        if fault is not None and fault.status is not None:
            headers = {"content-type": fault.content_type, **fault.headers}
            return Reply(fault.status, fault.body, headers, delay_s=fault.delay_s)
        delay = fault.delay_s if fault is not None else 0.0  # slow, then the normal answer
        refusal = self._refusal(request.headers)
        if refusal is not None:
            return Reply(refusal[0], refusal[1] + "\n", delay_s=delay)
        params = {k: v[-1] for k, v in request.query.items()}
        status, body = self.answer(request.path, params)
        if isinstance(body, str):
            return Reply(status, body + "\n", delay_s=delay)
        return Reply(status, body, {"content-type": "application/json; charset=UTF-8"}, delay)

    def start(self) -> FakeLoki:
        self.http.start()
        return self

    def stop(self) -> None:
        self.http.stop()


@contextmanager
def fake_loki(streams: list[Stream] | None = None, **kw: Any) -> Iterator[FakeLoki]:
    server = FakeLoki(streams, **kw).start()
    try:
        yield server
    finally:
        server.stop()
