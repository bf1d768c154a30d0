"""logs.jsonl of a simulated deploy: routine lines, pod lifecycle, and the fault's new template."""

from __future__ import annotations

import string
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from agent.bundle.model import LogLine
from evals.sim.culprits import Culprit
from evals.sim.noise import Rng
from evals.sim.profiles import ServiceProfile, Timeline

_ROUTINE = (
    ("info", "GET /api/v1/{res}/{rid} 200 in {ms}ms"),
    ("info", "POST /api/v1/{res} 201 in {ms}ms"),
    ("info", "cache stats: hit_ratio={hit} entries={n}"),
    ("info", "db pool stats: in_use={k}/20 waiting=0"),
    ("info", "processed {n} events from queue {svc}-events"),
    ("warn", "slow request: GET /api/v1/{res} took {slow}ms"),
    ("warn", "retrying {dep} call (attempt 2/3)"),
    ("warn", "client closed connection before response was sent"),
)
_RESOURCES = ("items", "orders", "sessions", "records", "quotes", "lookups")


@dataclass(frozen=True)
class Pods:
    """Pod names by version, and when each served traffic."""

    old: tuple[str, ...]
    old_until: tuple[float, ...]  # inf: still serving beside a canary
    new: tuple[str, ...]
    new_from: tuple[float, ...]  # when each new pod passed its readiness probe
    canary: bool


def make_pods(rng: Rng, profile: ServiceProfile, timeline: Timeline, strategy: str) -> Pods:
    old_rs, new_rs, svc = _hash(rng, 10), _hash(rng, 10), profile.service
    old = tuple(f"{svc}-{old_rs}-{_hash(rng, 5)}" for _ in range(profile.pods))
    start = timeline.start
    if strategy == "canary":
        count = max(1, round(profile.pods * 0.2))
        new = tuple(f"{svc}-canary-{new_rs}-{_hash(rng, 5)}" for _ in range(count))
        ready = tuple(start + float(x) for x in rng.uniform(5, 20, count))
        return Pods(old, tuple(float("inf") for _ in old), new, ready, True)
    new = tuple(f"{svc}-{new_rs}-{_hash(rng, 5)}" for _ in range(profile.pods))
    if strategy == "blue-green":
        switch = start + float(rng.uniform(5, 30))
        return Pods(old, (switch,) * len(old), new, (switch,) * len(new), False)
    span = max(timeline.finished - start, 1.0)
    ready = tuple(sorted(start + float(x) for x in rng.uniform(5, span, len(new))))
    return Pods(old, ready, new, ready, False)


def log_values(rng: Rng, profile: ServiceProfile) -> dict[str, Any]:
    """Variable parts of one log line."""
    lat_ms = profile.latency_base * 1000.0
    return {
        "svc": profile.service,
        "dep": profile.dependency_name,
        "res": str(rng.choice(_RESOURCES)),
        "rid": _hash(rng, 8),
        "ms": int(lat_ms * rng.uniform(0.2, 0.9)),
        "slow": int(lat_ms * rng.uniform(2.0, 6.0)),
        "hit": round(float(rng.uniform(0.8, 0.99)), 2),
        "n": int(rng.integers(5, 400)),
        "k": int(rng.integers(1, 12)),
        "order": f"ord_{_hash(rng, 8)}",
        "user": f"usr_{_hash(rng, 8)}",
        "short": int(rng.choice([15, 14, 19])),
        "bytes": int(rng.integers(2_000, 900_000)),
        "restarts": int(rng.integers(1, 9)),
        "mb": int(profile.memory_base / 2**20 * rng.uniform(1.1, 1.9)),
        "grow": int(rng.integers(20, 400)),
        "coupon": "".join(rng.choice(list(string.ascii_uppercase), 6)),
        "country": str(rng.choice(["DE", "FR", "GB", "US", "NL", "CA"])),
        "attempt": int(rng.integers(1, 4)),
    }


class LogBook:
    """Collects log lines; `lines()` returns them validated and in time order."""

    def __init__(self, profile: ServiceProfile, version: str, previous: str, pods: Pods) -> None:
        self.profile = profile
        self.version = version
        self.previous = previous
        self.pods = pods
        self._rows: list[dict[str, Any]] = []

    def add(self, ts: float, level: str, message: str, pod: str, **extra: Any) -> None:
        version = self.version if pod in self.pods.new else self.previous
        self._rows.append(
            {
                "ts": datetime.fromtimestamp(round(ts, 3), tz=UTC),
                "level": level,
                "service": self.profile.service,
                "message": message,
                "labels": {"pod": pod, "version": version},
                "logger": f"{self.profile.module}.{extra.pop('logger', 'app')}",
                **extra,
            }
        )

    def serving_pod(self, rng: Rng, ts: float, new_only: bool = False) -> str:
        """A pod serving at `ts` (a new-version one when `new_only`)."""
        p = self.pods
        new = [pod for pod, at in zip(p.new, p.new_from, strict=True) if at <= ts]
        if new_only:
            return str(rng.choice(new or list(p.new)))
        old = [pod for pod, at in zip(p.old, p.old_until, strict=True) if at > ts]
        return str(rng.choice(old + new))

    def __len__(self) -> int:
        return len(self._rows)

    def lines(self) -> tuple[LogLine, ...]:
        rows = sorted(self._rows, key=lambda r: r["ts"])
        return tuple(LogLine.model_validate(r) for r in rows)


def routine(rng: Rng, book: LogBook, timeline: Timeline, count: int) -> None:
    """Background lines over the whole window, a fixed template mix."""
    times = np.sort(rng.uniform(timeline.t[0] - timeline.step, timeline.watch_until, count))
    weights = np.array([6, 4, 2, 2, 2, 1.0, 0.6, 0.6])
    picks = rng.choice(len(_ROUTINE), size=count, p=weights / weights.sum())
    for ts, pick in zip(times, picks, strict=True):
        level, template = _ROUTINE[int(pick)]
        values = log_values(rng, book.profile)
        book.add(float(ts), level, template.format_map(values), book.serving_pod(rng, float(ts)))


def lifecycle(rng: Rng, book: LogBook, commit: str) -> None:
    """New pods start and pass readiness; replaced old pods drain and stop."""
    p, svc = book.pods, book.profile.service
    for pod, ready in zip(p.new, p.new_from, strict=True):
        at = ready - float(rng.uniform(8, 25))
        book.add(at, "info", f"starting {svc} {book.version} (commit {commit})", pod, logger="main")
        book.add(at + rng.uniform(1, 4), "info", "listening on 0.0.0.0:8080", pod, logger="main")
        book.add(ready, "info", "readiness probe passed", pod, logger="main")
    for pod, until in zip(p.old, p.old_until, strict=True):
        if until == float("inf"):
            continue
        drain = int(rng.integers(3, 60))
        book.add(
            until, "info", f"received SIGTERM, draining {drain} connections", pod, logger="main"
        )
        book.add(until + rng.uniform(2, 10), "info", "shutdown complete", pod, logger="main")


def traceback_text(culprit: Culprit, names: dict[str, str], rng: Rng) -> str:
    """A short Python traceback whose last frame is the culprit function."""
    m = names["m"]
    caller = int(rng.integers(40, 220))
    line = int(rng.integers(12, 180))
    path = culprit.path.format_map(names)
    frames = [
        "Traceback (most recent call last):",
        f'  File "/app/src/{m}/api.py", line {caller}, in handle',
        "    return await endpoint(request)",
        f'  File "/app/{path}", line {line}, in {culprit.function}',
        f"    {culprit.raise_line.format_map(names).strip()}",
        culprit.exception.format_map(names),
    ]
    return "\n".join(frames)


def _hash(rng: Rng, length: int) -> str:
    alphabet = list("bcdfghjklmnpqrstvwxz2456789")
    return "".join(rng.choice(alphabet, length))
