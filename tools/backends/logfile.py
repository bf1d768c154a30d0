"""Log lines from files, and the three shapes one line of log text comes in.

`parse_line` splits a line — a JSON object, logfmt (`level=error msg="..."`), or plain text
with an optional RFC 3339 timestamp and level word in front — into time, level, message,
stack trace and other fields; the Loki source reads line bodies with it too.

`FileLogSource` is a `LogSource` over log files found by a path pattern per service: JSONL
(one object per line, `ts`/`time`/`timestamp` as RFC 3339 or epoch seconds, ms, µs or ns) or
plain text (each entry starts with an RFC 3339 timestamp; the lines after it that do not,
such as a stack trace, belong to it). Files are streamed and only the oldest `limit` matching
lines are held, so a huge file costs time, not memory.
"""

from __future__ import annotations

import glob
import gzip
import heapq
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Literal

from agent.backends.base import SourceUnavailable
from agent.bundle.model import LogLine

LineFormat = Literal["json", "logfmt", "text"]
FileFormat = Literal["auto", "jsonl", "text"]

MESSAGE_KEYS = ("message", "msg", "event")
LEVEL_KEYS = ("level", "severity", "lvl", "levelname", "loglevel", "log.level")
TIME_KEYS = ("ts", "time", "timestamp", "@timestamp")
# Where JSON and logfmt loggers put a stack trace; it is kept as the line's `stack_trace`.
TRACE_KEYS = (
    "stack_trace",
    "stacktrace",
    "stack",
    "exception",
    "exc_info",
    "traceback",
    "error.stack_trace",
)
DEFAULT_LEVEL = "info"  # a line that names no level it is known by

_LEVELS: dict[str, str] = {
    "trace": "trace",
    "trc": "trace",
    "debug": "debug",
    "dbg": "debug",
    "dbug": "debug",
    "info": "info",
    "inf": "info",
    "information": "info",
    "informational": "info",
    "notice": "info",
    "warn": "warn",
    "warning": "warn",
    "wrn": "warn",
    "error": "error",
    "err": "error",
    "eror": "error",
    "severe": "error",
    "critical": "critical",
    "crit": "critical",
    "fatal": "fatal",
    "panic": "fatal",
    "dpanic": "fatal",
    "emerg": "fatal",
    "emergency": "fatal",
    "alert": "fatal",
}
_RESERVED = frozenset(LogLine.model_fields)  # keys that cannot be kept as extra fields
_LOGFMT_KEYS = frozenset({"msg", "message", "level", "lvl", "severity", "ts", "time"})
_LOGFMT_PAIR = re.compile(r'([A-Za-z_@][\w.@/-]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)(?:\s+|$)')
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:[Zz]|[+-]\d{2}:?\d{2})"
)
# A timestamp-shaped head of a plain-text line (the offset may be missing: then it is unusable).
_TEXT_HEAD = re.compile(
    r"\[?(\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:[Zz]|[+-]\d{2}:?\d{2})?)\]?\s*"
)
# A level word after the timestamp: upper case (`ERROR`) or bracketed (`[error]`).
_LEVEL_HEAD = re.compile(r"(?:\[([A-Za-z]+)\]|([A-Z]+)):?(?:\s+|$)")
_SERVICE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def normalize_level(value: Any) -> str | None:
    """The canonical level (trace, debug, info, warn, error, critical, fatal) a value names;
    numbers are pino's (10 trace ... 60 fatal). None when it names no known level."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        word = value.strip().strip("[]").lower()
        if word.isdigit():
            return normalize_level(int(word))
        return _LEVELS.get(word)
    if isinstance(value, int | float):
        for bound, name in (
            (10, "trace"),
            (20, "debug"),
            (30, "info"),
            (40, "warn"),
            (50, "error"),
        ):
            if value <= bound:
                return name if value >= 10 else None
        return "fatal"
    return None


def parse_time(value: Any) -> datetime | None:
    """An aware UTC time from RFC 3339 text or a Unix epoch number (seconds, ms, µs or ns,
    told apart by size); None for anything else, including times without an offset."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            return parse_time(int(text) if text.isdigit() else float(text))
        if not _RFC3339.fullmatch(text):
            return None
        try:
            return datetime.fromisoformat(text.upper()).astimezone(UTC)
        except ValueError:
            return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if abs(value) < 10**11:
            try:
                return datetime.fromtimestamp(value, tz=UTC)
            except (OverflowError, OSError, ValueError):
                return None
        value = int(value)
    if isinstance(value, int):
        size = abs(value)
        if size >= 10**17:
            per_second = 10**9
        elif size >= 10**14:
            per_second = 10**6
        elif size >= 10**11:
            per_second = 10**3
        else:
            per_second = 1
        try:
            return _EPOCH + timedelta(microseconds=value * 10**6 // per_second)
        except OverflowError:
            return None
    return None


@dataclass(frozen=True)
class ParsedLine:
    """One line of log text taken apart; `fields` holds whatever else a structured line had."""

    format: LineFormat
    message: str
    ts: datetime | None = None
    level: str | None = None
    stack_trace: str | None = None
    trace_key: str = "stack_trace"  # the key the trace came under; kept in the LogLine
    service: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)

    def to_log_line(
        self,
        *,
        ts: datetime,
        level: str | None = None,
        service: str | None = None,
        labels: Mapping[str, str] | None = None,
        message: str | None = None,
    ) -> LogLine:
        """A `LogLine`; arguments given win over what the line itself said."""
        extra = {k: v for k, v in self.fields.items() if k not in _RESERVED}
        if self.stack_trace is not None:
            # Dotted keys (ECS `error.stack_trace`) become `stack_trace`, as log mining expects.
            extra["stack_trace" if "." in self.trace_key else self.trace_key] = self.stack_trace
        return LogLine.model_validate(
            {
                **extra,
                "ts": ts,
                "level": level or self.level or DEFAULT_LEVEL,
                "message": self.message if message is None else message,
                "service": service or self.service,
                "labels": {**self.labels, **(labels or {})},
            }
        )


def parse_line(text: str) -> ParsedLine:
    """Take one line apart: JSON object, then logfmt, else plain text."""
    stripped = text.strip()
    if stripped.startswith("{"):
        obj = json_object(stripped)
        if obj is not None:
            return from_mapping("json", obj, stripped)
    pairs = _logfmt(stripped)
    if pairs is not None:
        return from_mapping("logfmt", pairs, stripped)
    return _from_text(text)


def json_object(text: str) -> dict[str, Any] | None:
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def from_mapping(fmt: LineFormat, obj: Mapping[str, Any], raw: str) -> ParsedLine:
    """A structured line (JSON or logfmt) by its usual keys; without a message, the raw line."""
    rest = dict(obj)
    message = _pop_first(rest, MESSAGE_KEYS)
    level = _pop_first(rest, LEVEL_KEYS)
    ts = _pop_first(rest, TIME_KEYS)
    trace, trace_key = None, "stack_trace"
    for key in TRACE_KEYS:
        value = rest.get(key)
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            value = "\n".join(value)
        if isinstance(value, str) and value.strip():
            trace, trace_key = value, key
            del rest[key]
            break
    service = rest.pop("service", None)
    labels = rest.pop("labels", None)
    return ParsedLine(
        format=fmt,
        message=message if isinstance(message, str) and message else raw,
        ts=parse_time(ts),
        level=normalize_level(level),
        stack_trace=trace,
        trace_key=trace_key,
        service=service if isinstance(service, str) and service else None,
        labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
        fields=rest,
    )


def _pop_first(obj: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in obj:
            return obj.pop(key)
    return None


def _logfmt(text: str) -> dict[str, str] | None:
    """`key=value key2="quoted value"` pairs, or None unless the whole line is such pairs
    (at least two) and one of them is a message, level or time."""
    pairs: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        match = _LOGFMT_PAIR.match(text, pos)
        if match is None:
            return None
        key, value = match.groups()
        pairs[key] = _unquote(value) if value.startswith('"') else value
        pos = match.end()
    if len(pairs) < 2 or not pairs.keys() & _LOGFMT_KEYS:
        return None
    return pairs


def _unquote(value: str) -> str:
    try:
        text = json.loads(value)  # logfmt quotes like Go's strconv.Quote: JSON-compatible
    except ValueError:
        return value[1:-1]
    return text if isinstance(text, str) else value[1:-1]


def _from_text(text: str) -> ParsedLine:
    line = text.rstrip("\r\n")
    rest = line.lstrip()
    ts = None
    head = _TEXT_HEAD.match(rest)
    if head is not None:
        ts = parse_time(head.group(1))
        rest = rest[head.end() :]
    level = None
    word = _LEVEL_HEAD.match(rest)
    if word is not None:
        level = normalize_level(word.group(1) or word.group(2))
        if level is not None:
            rest = rest[word.end() :]
    return ParsedLine(format="text", message=rest.strip() or line.strip(), ts=ts, level=level)


class FileLogSource:
    """`LogSource` over log files. `paths` is a mapping service -> path, or one template for
    every service where `{service}` is replaced by its name; a path may be a file, a folder
    (its files) or a glob (`/var/log/{service}/*.log*`, `**` allowed). `.gz` files are read
    too. `format` is `jsonl`, `text`, or `auto` (by suffix, else by the first line).

    Lines that cannot be read (bad JSON, no usable timestamp, text before the first entry)
    are skipped; `skipped` says how many the last `read` skipped. A JSONL line naming another
    service is left out. A missing file raises `SourceUnavailable` naming the path.
    """

    def __init__(
        self,
        paths: Mapping[str, str | Path] | str | Path,
        *,
        format: FileFormat = "auto",
        max_entry_lines: int = 200,
    ) -> None:
        self.paths: dict[str, str] | str = (
            {k: str(v) for k, v in paths.items()} if isinstance(paths, Mapping) else str(paths)
        )
        self.format: FileFormat = format
        self.max_entry_lines = max_entry_lines  # lines kept of one plain-text entry
        self.skipped = 0

    def files(self, service: str) -> list[Path]:
        """The files holding `service`'s logs, in name order."""
        if isinstance(self.paths, dict):
            pattern = self.paths.get(service)
            if pattern is None:
                known = ", ".join(sorted(self.paths)) or "none"
                raise SourceUnavailable(
                    f"log files: no path configured for service {service!r} (known: {known})"
                )
        else:
            if "{service}" in self.paths and (
                not _SERVICE_NAME.fullmatch(service) or ".." in service
            ):
                raise SourceUnavailable(f"log files: {service!r} is not a valid service name")
            pattern = self.paths.replace("{service}", service)
        if any(ch in pattern for ch in "*?["):
            found = [Path(p) for p in sorted(glob.glob(pattern, recursive=True))]
            files = [p for p in found if p.is_file()]
            if not files:
                raise SourceUnavailable(f"log files: no file matches {pattern}")
            return files
        path = Path(pattern)
        if path.is_dir():
            return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        if not path.exists():
            raise SourceUnavailable(f"log files: {path} does not exist")
        return [path]

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
        self.skipped = 0
        files = self.files(service)
        if limit <= 0 or end < start:
            return []
        needle = contains.lower() if contains else None
        wanted = {normalize_level(v) or v.lower() for v in levels} if levels else None

        def keep(line: LogLine) -> bool:
            if line.service not in (None, service):
                return False
            if not start <= line.ts.timestamp() <= end:
                return False
            if wanted is not None and line.level not in wanted:
                return False
            return needle is None or needle in line.message.lower()

        matching = (line for path in files for line in self._lines(path) if keep(line))
        # The oldest `limit` lines in a bounded heap: files need not be in time order.
        return heapq.nsmallest(limit, matching, key=lambda line: line.ts)

    def _lines(self, path: Path) -> Iterator[LogLine]:
        try:
            with _open(path) as handle:
                fmt = self.format if self.format != "auto" else _sniff(path, handle)
                if fmt == "jsonl":
                    yield from self._jsonl(handle)
                else:
                    yield from self._text(handle)
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise SourceUnavailable(f"log files: cannot read {path}: {reason}") from None

    def _jsonl(self, handle: IO[str]) -> Iterator[LogLine]:
        for raw in handle:
            text = raw.strip()
            if not text:
                continue
            obj = json_object(text)
            parsed = None if obj is None else from_mapping("json", obj, text)
            if parsed is None or parsed.ts is None:
                self.skipped += 1
                continue
            yield parsed.to_log_line(ts=parsed.ts)

    def _text(self, handle: IO[str]) -> Iterator[LogLine]:
        entry: ParsedLine | None = None
        more: list[str] = []
        for raw in handle:
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            parsed = parse_line(line)
            if parsed.ts is not None:
                if entry is not None:
                    yield _entry(entry, more)
                entry, more = parsed, []
            elif entry is None or _TEXT_HEAD.match(line.lstrip()):
                # Before the first entry, or a timestamp without an offset: cannot be placed.
                self.skipped += 1
                if entry is not None:
                    yield _entry(entry, more)
                    entry, more = None, []
            elif len(more) < self.max_entry_lines:
                more.append(line)
        if entry is not None:
            yield _entry(entry, more)


def _entry(head: ParsedLine, more: list[str]) -> LogLine:
    assert head.ts is not None
    message = "\n".join([head.message, *more]) if more else None
    return head.to_log_line(ts=head.ts, message=message)


def _open(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return path.open(encoding="utf-8", errors="replace")


def _sniff(path: Path, handle: IO[str]) -> Literal["jsonl", "text"]:
    suffixes = [s for s in path.suffixes if s != ".gz"]
    if suffixes and suffixes[-1] in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    first = ""
    for raw in handle:
        if raw.strip():
            first = raw
            break
    handle.seek(0)
    return "jsonl" if first.lstrip().startswith("{") else "text"
