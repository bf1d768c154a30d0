"""Grafana Loki as a log source, over its HTTP API (`GET /loki/api/v1/query_range`).

A read is one LogQL query: the service's stream selector (a template such as
`{app="{service}"}`), a `|= "text"` line filter for `contains` (`|~ "(?i)text"` with
`ignore_case`, as the other log sources match), and — when the streams carry a level label —
a label filter for `levels`. Loki answers forward in time, at most `page_size`
entries per request across all streams; the streams are merged by time and each line body
(JSON, logfmt or plain text) becomes a `LogLine`. Levels come from the stream's `level` label,
then `detected_level`, then the line itself, else `info`; levels are also filtered here, so
the answer is the same whether Loki could filter them or not.

Any failure — refused, timed out, an HTTP error (with Loki's own reason), `status` other than
`success`, a body that is not Loki's JSON — raises `SourceUnavailable("loki: ...")`.
Connection errors, 5xx and 429 are retried a few times with a short capped backoff first
(429's `Retry-After` is honoured up to that cap).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.backends.base import SourceUnavailable
from agent.bundle.model import LogLine
from agent.errors import ConfigError
from tools.backends.http import (
    Backoff,
    GaveUp,
    Retry,
    network_failure,
    retried,
    short,
    tries_text,
    unless_busy,
)
from tools.backends.logfile import normalize_level, parse_line

QUERY_RANGE = "/loki/api/v1/query_range"
LABELS = "/loki/api/v1/labels"
DEFAULT_SELECTOR = '{service="{service}"}'

_log = logging.getLogger(__name__)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PUNCTUATION = re.compile(r"[!-/:-@\[-`{-~]")  # ASCII punctuation
_ERROR_CHARS = 300  # of Loki's error text shown in a message
# Every spelling a level filter pushed down to Loki must match (stream labels are raw text).
_SPELLINGS: dict[str, tuple[str, ...]] = {
    "trace": ("trace", "trc"),
    "debug": ("debug", "dbg", "dbug"),
    "info": ("info", "inf", "information", "informational", "notice"),
    "warn": ("warn", "warning", "wrn"),
    "error": ("error", "err", "eror", "severe"),
    "critical": ("critical", "crit"),
    "fatal": ("fatal", "panic", "dpanic", "emerg", "emergency", "alert"),
}


class _Stream(BaseModel):
    stream: dict[str, str] = Field(default_factory=dict)
    # [timestamp in ns as text, line] or, with structured metadata, [ts, line, {metadata}]
    values: list[tuple[str, str] | tuple[str, str, dict[str, Any]]]


class _Data(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    result_type: str = Field(alias="resultType")
    result: list[Any]


class _QueryAnswer(BaseModel):
    status: str
    data: _Data | None = None
    error: str | None = None


class _LabelsAnswer(BaseModel):
    status: str
    data: list[str] | None = None
    error: str | None = None


@dataclass(frozen=True)
class LokiRead:
    """How the last `read` went: whether it reached `end` or stopped at the page cap."""

    query: str
    pages: int
    lines: int
    complete: bool  # False: stopped at max_pages; lines after `stopped_at` were not read
    stopped_at: datetime | None = None


@dataclass(frozen=True)
class _Entry:
    ns: int
    line: str
    labels: dict[str, str]  # the stream's labels and the entry's structured metadata
    key: tuple[str, str]  # (stream labels, line): tells a re-read entry from a new one


class LokiLogSource:
    """`LogSource` over Loki. Secrets (`token`, `basic_auth`) only go into request headers.

    Paging: when a page is full, the next one starts at the last entry's timestamp (entries
    already read at that very nanosecond are dropped, so none is lost or doubled) until
    `limit` lines are read, the window ends, or `max_pages` requests were made. At that cap
    the oldest lines read so far are returned, a warning is logged naming the time of the last
    line read, and `last_read.complete` is False with `stopped_at` set to it: the newest lines
    of the window are then missing, never silently. (If more than a page of entries share one
    nanosecond, the rest of that nanosecond is skipped to make progress.)
    """

    def __init__(
        self,
        base_url: str,
        *,
        client: httpx.Client | None = None,
        selector: str = DEFAULT_SELECTOR,
        tenant: str | None = None,
        token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        timeout_s: float = 10.0,
        attempts: int = 3,
        backoff_s: float = 0.25,
        max_backoff_s: float = 2.0,
        page_size: int = 1000,
        max_pages: int = 20,
        level_label: str | None = None,
        ignore_case: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"loki: base URL must be http(s)://host[:port], not {base_url!r}")
        if "{service}" not in selector:
            raise ConfigError(f"loki: selector {selector!r} must contain {{service}}")
        if token is not None and basic_auth is not None:
            raise ConfigError("loki: give a bearer token or basic auth, not both")
        if level_label is not None and not _LABEL_NAME.fullmatch(level_label):
            raise ConfigError(f"loki: {level_label!r} is not a label name")
        if attempts < 1 or page_size < 1 or max_pages < 1:
            raise ConfigError("loki: attempts, page_size and max_pages must be at least 1")
        self.base_url = base_url.rstrip("/")
        # Shown in messages: the URL without any user:password@ in it.
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        port = f":{parts.port}" if parts.port else ""
        self.where = f"{parts.scheme}://{host}{port}{parts.path.rstrip('/')}"
        self._own_client = client is None
        self._client = client if client is not None else httpx.Client()
        self.selector = selector
        self.tenant = tenant
        self._token = token
        self._basic = basic_auth
        self.timeout_s = timeout_s
        self._backoff = Backoff(attempts, backoff_s, max_backoff_s, sleep)
        self.page_size = page_size
        self.max_pages = max_pages
        self.level_label = level_label
        self.ignore_case = ignore_case
        self.last_read: LokiRead | None = None

    def close(self) -> None:
        if self._own_client:
            self._client.close()

    def __enter__(self) -> LokiLogSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Queries

    def build_query(
        self, service: str, *, contains: str | None = None, levels: Iterable[str] | None = None
    ) -> str:
        """The LogQL for one read: selector, line filter, and a level filter when configured."""
        query = self.selector.replace("{service}", _escape(service))
        if contains and self.ignore_case:
            query += f' |~ "(?i){_escape(_literal_regex(contains))}"'
        elif contains:
            query += f' |= "{_escape(contains)}"'
        if levels is not None and self.level_label is not None:
            spellings = sorted({s for v in levels for s in _spellings(v)})
            if spellings:
                query += f' | {self.level_label}=~"(?i){"|".join(spellings)}"'
        return query

    def read(
        self,
        service: str,
        start: float,
        end: float,
        *,
        contains: str | None = None,
        levels: tuple[str, ...] | None = None,
        limit: int = 1000,
    ) -> list[LogLine]:
        query = self.build_query(service, contains=contains, levels=levels)
        lo, hi = _ns(start, ROUND_FLOOR), _ns(end, ROUND_CEILING)
        if limit <= 0 or hi < lo:
            self.last_read = LokiRead(query, 0, 0, complete=True)
            return []
        wanted = {normalize_level(v) or v.lower() for v in levels} if levels else None
        out: list[LogLine] = []
        cursor = lo
        seen: set[tuple[str, str]] = set()  # entries already read at `cursor`
        pages = 0
        complete = False
        while len(out) < limit and pages < self.max_pages:
            # With levels filtered here, a page may hold few wanted lines: ask for full pages.
            ask = self.page_size if wanted else min(self.page_size, limit - len(out) + len(seen))
            entries = self._page(query, cursor, hi, ask)
            pages += 1
            fresh = [e for e in entries if not (e.ns == cursor and e.key in seen)]
            for entry in fresh:
                if not lo <= entry.ns <= hi:
                    continue
                line = _log_line(entry, service)
                if wanted is None or line.level in wanted:
                    out.append(line)
                    if len(out) == limit:
                        break
            if len(entries) < ask:
                complete = True
                break
            last = entries[-1].ns
            if not fresh:
                cursor, seen = last + 1, set()
            elif last == cursor:
                seen |= {e.key for e in fresh}
            else:
                cursor, seen = last, {e.key for e in entries if e.ns == last}
        stopped = None
        if not complete and len(out) < limit:
            stopped = _datetime(cursor)
            _log.warning(
                "loki: read of %s stopped after %d pages (%d lines); lines after %s were "
                "not read (raise max_pages or narrow the window)",
                service,
                pages,
                len(out),
                stopped.isoformat(),
            )
        self.last_read = LokiRead(query, pages, len(out), stopped is None, stopped)
        return out

    def check(self) -> None:
        """Raise SourceUnavailable unless Loki answers a label query (auth and tenant too)."""
        body = self._get(LABELS, {})
        try:
            answer = _LabelsAnswer.model_validate(body)
        except ValidationError as exc:
            raise SourceUnavailable(f"loki: unexpected answer to labels: {_first(exc)}") from None
        if answer.status != "success":
            raise SourceUnavailable(f"loki: labels failed: {short(answer.error or answer.status)}")

    # HTTP

    def _page(self, query: str, start_ns: int, end_ns: int, limit: int) -> list[_Entry]:
        """One request: the page's entries of every stream, merged in time order."""
        params = {
            "query": query,
            "start": str(start_ns),
            "end": str(end_ns + 1),  # Loki's end is exclusive; ours is inclusive
            "limit": str(limit),
            "direction": "forward",
        }
        body = self._get(QUERY_RANGE, params)
        try:
            answer = _QueryAnswer.model_validate(body)
            if answer.status != "success":
                reason = short(answer.error or f"status {answer.status!r}")
                raise SourceUnavailable(f"loki: query {short(query, 120)} failed: {reason}")
            if answer.data is None:
                raise SourceUnavailable("loki: answer has no data")
            if answer.data.result_type != "streams":
                raise SourceUnavailable(
                    f"loki: expected log streams, got {answer.data.result_type!r} "
                    "(is the selector a metric query?)"
                )
            streams = [_Stream.model_validate(s) for s in answer.data.result]
        except ValidationError as exc:
            raise SourceUnavailable(f"loki: unexpected answer format: {_first(exc)}") from None
        entries = []
        for stream in streams:
            key = json.dumps(stream.stream, sort_keys=True)
            for value in stream.values:
                if not value[0].isdigit():
                    raise SourceUnavailable(f"loki: malformed timestamp {value[0][:40]!r}")
                labels = {**stream.stream, **_flat(value[2])} if len(value) == 3 else stream.stream
                entries.append(_Entry(int(value[0]), value[1], labels, (key, value[1])))
        entries.sort(key=lambda e: (e.ns, e.key))
        return entries

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.tenant:
            headers["X-Scope-OrgID"] = self.tenant
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def _get(self, path: str, params: dict[str, str]) -> Any:
        auth = httpx.BasicAuth(*self._basic) if self._basic is not None else None

        def send() -> httpx.Response:
            return unless_busy(
                self._client.get(
                    self.base_url + path,
                    params=params,
                    headers=self._headers(),
                    auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
                    timeout=self.timeout_s,
                )
            )

        try:
            response, tries = retried(send, self._backoff, _RETRY_ON)
        except GaveUp as failed:
            raise self._failure(path, failed) from None
        if response.status_code >= 400:
            raise self._http_error(path, response, tries)
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content type")
            raise SourceUnavailable(
                f"loki: answer from {path} is not JSON ({kind}): {short(response.text, 80)!r}"
            ) from None

    def _failure(self, path: str, failed: GaveUp) -> SourceUnavailable:
        error, tries = failed.error, failed.tries
        if isinstance(error, Retry):
            return self._http_error(path, error.answer, tries)
        return SourceUnavailable(
            "loki: " + network_failure(error, self.where, self.timeout_s, tries)
        )

    def _http_error(self, path: str, response: httpx.Response, tries: int) -> SourceUnavailable:
        text = response.text
        body = _json_or_none(text)
        if isinstance(body, dict) and isinstance(body.get("error") or body.get("message"), str):
            text = body.get("error") or body["message"]
        after = f" after {tries_text(tries)}" if tries > 1 else ""
        reason = short(text) or response.reason_phrase
        return SourceUnavailable(f"loki: HTTP {response.status_code} from {path}{after}: {reason}")


# Refused or broken connections are worth another try; a read that timed out is not (Loki
# was working on it: asking again would only pile up the same query).
_RETRY_ON = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError)


def _log_line(entry: _Entry, service: str) -> LogLine:
    labels = entry.labels
    parsed = parse_line(entry.line)
    level = normalize_level(labels.get("level"))
    if level is None:
        level = parsed.level or normalize_level(labels.get("detected_level"))
    return parsed.to_log_line(ts=_datetime(entry.ns), level=level, service=service, labels=labels)


def _flat(metadata: dict[str, Any]) -> dict[str, str]:
    """Structured metadata as labels; categorised answers nest it one level down."""
    out: dict[str, str] = {}
    for key, value in metadata.items():
        if isinstance(value, dict):
            out.update({str(k): str(v) for k, v in value.items()})
        else:
            out[str(key)] = str(value)
    return out


def _spellings(level: str) -> tuple[str, ...]:
    canonical = normalize_level(level)
    if canonical is not None:
        return _SPELLINGS[canonical]
    word = level.strip().lower()
    return (word,) if _LABEL_NAME.fullmatch(word) else ()


def _escape(text: str) -> str:
    """`text` inside a LogQL double-quoted string: a JSON string body is a valid Go string
    body (quotes, backslashes and control characters escaped; other characters as they are)."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _literal_regex(text: str) -> str:
    """`text` as an RE2 pattern matching itself: RE2 takes `\\` + punctuation literally."""
    return _PUNCTUATION.sub(r"\\\g<0>", text)


def _ns(seconds: float, rounding: str) -> int:
    # Through the decimal text: 1747145053.854 * 1e9 as a float lands a few ns off.
    return int((Decimal(repr(float(seconds))) * 10**9).to_integral_value(rounding))


def _datetime(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)


def _first(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "(body)"
    return f"{where}: {err['msg']}"


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None
