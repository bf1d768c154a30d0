"""(3) Kind hints: what a regressed signal's kind suggests about which code to suspect."""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass

from agent.bundle.model import SignalKind
from agent.suspects.change import Change, ChangedFile
from agent.suspects.evidence import RegressedSignal
from agent.suspects.text import FileText
from agent.suspects.weights import CONFIG, HINT_MAX, MIGRATION_PATH, NEARBY, Role


@dataclass(frozen=True)
class Hint:
    label: str
    pattern: re.Pattern[str]
    weight: float = 1.0
    on: str = "lines"  # "lines": changed lines (context at half weight); "name": the basename
    config_only: bool = False


def _rx(pattern: str, flags: int = re.IGNORECASE) -> re.Pattern[str]:
    return re.compile(pattern, flags)


_SQL = _rx(
    r"\b(?:select\b.+\bfrom|insert\s+into|update\b.+\bset|delete\s+from|create\s+(?:unique\s+)?"
    r"index|alter\s+table|create\s+table|drop\s+(?:table|index)|join)\b"
)
_DB_CALL = _rx(
    r"\b(?:execute(?:many)?|fetch_?(?:one|all|many|row|val)|fetchone|fetchall|cursor|query|"
    r"select_related|prefetch_related|objects\.(?:get|filter|all)|session\.(?:query|execute|"
    r"add|commit|get)|find_?(?:one|many|all)|\w+_SQL)\b"
)
_LOOP_WITH_QUERY = _rx(
    r"\b(?:for\s+\w+(?:\s*,\s*\w+)*\s+in\b|\.for_?each\(|\.map\()[^\n]*\n(?:[^\n]*\n){0,2}"
    r"[^\n]*\b(?:fetch\w*|query|execute|select|find\w*|get)\s*\("
)
_HINTS: dict[str, tuple[Hint, ...]] = {
    # A database dependency slowed or failing: migrations, SQL, ORM and connection handling.
    "db": (
        Hint(
            "database code",
            _rx(
                r"(?:^|[_.])(?:db|database|models?|repository|repositories|"
                r"dao|orm|schema|queries|sql)(?:[_.]|$)"
            ),
            on="name",
        ),
        Hint("a migration", MIGRATION_PATH, on="path"),
        Hint("SQL", _SQL),
        Hint("database queries", _DB_CALL),
        Hint(
            "connection pool handling",
            _rx(
                r"\b(?:pool|getconn|putconn|connection|conn|pool_size|max_connections|"
                r"max_overflow)\b"
            ),
        ),
        Hint("transactions or indexes", _rx(r"\b(?:transaction|rollback|index|lock)\b"), 0.5),
    ),
    # Slower responses: tuning knobs, timeouts and retries, caches, blocking I/O, compression,
    # queries in loops (N+1) and, more weakly, any database access.
    "latency": (
        Hint(
            "a numeric setting in configuration",
            _rx(r"^\s*[\w.\-\"']+\s*[:=]\s*\"?\d+(?:\.\d+)?(?:ms|s|m|mb|kb|gb)?\"?\s*,?\s*$"),
            config_only=True,
        ),
        Hint("timeouts or retries", _rx(r"timeout|deadline|retr(?:y|ies)|backoff")),
        Hint(
            "pool or concurrency sizes",
            _rx(
                r"pool_?size|max_?conn\w*|\bworkers\b|\bthreads\b|\bconcurrency\b|max_?concurren\w*|"
                r"semaphore|"
                r"batch_?size|max_?inflight|queue_?size|\bmaxsize\b|\bprefetch\b"
            ),
        ),
        Hint("caching", _rx(r"lru_cache|@cache\b|\bcache[ds]?\b|memoi[sz]|\bttl\b")),
        Hint(
            "blocking I/O or locking",
            _rx(
                r"\bfsync\b|\bsleep\(|\bflush\(|\bblocking\b|\block\b|\.acquire\(|"
                r"\bsynchronous\b|put_nowait|run_in_executor|\bawait\s+\w+(?:\.\w+)*\.write\b"
            ),
        ),
        Hint("compression", _rx(r"compress|gzip|zstd|brotli|deflate")),
        Hint("a query inside a loop", _LOOP_WITH_QUERY, on="hunk"),
        Hint("database access", _DB_CALL, 0.5),
    ),
    # Memory growth: caches without bounds or expiry, collections that only grow, listeners
    # and references kept alive, bulk loading.
    "memory": (
        Hint("cache code", _rx(r"cache|memo|buffer|registry|pool"), 0.5, on="name"),
        Hint(
            "cache bounds or expiry",
            _rx(
                r"lru_cache|\bttl\b|maxsize|max_?size|max_?entries|expir\w*|evict\w*|\bcache[ds]?\b|"
                r"memoi[sz]"
            ),
        ),
        Hint(
            "a growing collection",
            _rx(
                r"=\s*(?:\[\]|\{\}|list\(\)|dict\(\)|set\(\))|\bdeque\(|defaultdict\(|\.append\(|"
                r"\.extend\(|\.add\(|^\s*_?\w+\[[^\]]+\]\s*=[^=]|history"
            ),
        ),
        Hint(
            "listeners or references kept alive",
            _rx(r"\bweak\w*|subscribe|listener|add_handler|on_event|register|global\s+\w+"),
        ),
        Hint(
            "bulk loading",
            _rx(
                r"preload|load_all|\.all\(\)|readlines\(|\.read\(\)|include_\w+|\blimit\b|"
                r"bytearray|buffer"
            ),
        ),
    ),
    # CPU saturation: compression, hashing, serialisation, regular expressions, loops.
    "cpu": (
        Hint(
            "CPU-heavy work",
            _rx(
                r"compress|gzip|zstd|brotli|bcrypt|scrypt|pbkdf2|hashlib|re\.compile|regex|"
                r"json\.(?:dumps|loads)|serializ\w*|validate=True|\blevel\b"
            ),
        ),
        Hint("caching", _rx(r"lru_cache|@cache\b|\bcache[ds]?\b|memoi[sz]")),
    ),
    # Business conversion: checkout, pricing, promotions, payment and address rules, flags.
    "business": (
        Hint(
            "checkout or pricing code",
            _rx(
                r"checkout|cart|pricing|price|promo\w*|coupon|discount|payment|billing|invoice|"
                r"refund|tax|currency|address\w*|postcode|postal|order"
            ),
            on="name",
        ),
        Hint(
            "checkout or pricing logic",
            _rx(
                r"checkout|\bcart\b|pric(?:e|es|ing)\b|promo\w*|coupon|discount|voucher|\btax\b|"
                r"currency|payment|\bcard\b|refund|postcode|postal|zip_?code|address|country|"
                r"shipping_?(?:fee|cost|rate)|subtotal|\btotal\b|amount"
            ),
        ),
        Hint(
            "a feature flag",
            _rx(
                r"\bfeatures?\b|feature_?flag|\bflags?\b|toggle|rollout|experiment|variant|"
                r"launchdarkly|unleash"
            ),
        ),
    ),
    # An upstream service failing: HTTP clients, endpoints, retries and timeouts.
    "upstream": (
        Hint(
            "an HTTP client",
            _rx(r"client|http|gateway|upstream|sdk|rpc|grpc|api_?client"),
            0.5,
            on="name",
        ),
        Hint(
            "HTTP client settings",
            _rx(
                r"https?://|base_?url|endpoint|\burl\b|httpx|requests\.|aiohttp|urllib|okhttp|"
                r"grpc|circuit_?breaker"
            ),
        ),
        Hint("timeouts or retries", _rx(r"timeout|deadline|retr(?:y|ies)|backoff")),
    ),
}
_MEMORY_NAME = _rx(r"mem|rss|heap|oom|working_set|resident")
_CPU_NAME = _rx(r"cpu|throttl")
_DB_NAME = _rx(r"db|sql|postgres|mysql|mongo|database|query|redis|dynamo|cassandra")


def _themes(signal: RegressedSignal) -> tuple[str, ...]:
    """Which hint families a regressed signal calls for."""
    name = signal.name
    if signal.kind is SignalKind.LATENCY:
        return ("latency", "db") if _DB_NAME.search(name) else ("latency",)
    if signal.kind is SignalKind.SATURATION:
        if _MEMORY_NAME.search(name):
            return ("memory",)
        if _CPU_NAME.search(name):
            return ("cpu",)
        return ("memory", "cpu")
    if signal.kind is SignalKind.BUSINESS:
        return ("business",)
    if signal.kind is SignalKind.DEPENDENCY:
        return ("db",) if _DB_NAME.search(name) else ("upstream",)
    return ()  # errors and traffic: the error text says more than the signal's kind


def _path_words(path: str) -> set[str]:
    return {w for w in re.split(r"[^A-Za-z]+", path.lower()) if len(w) >= 3}


def shared_words(change: Change) -> re.Pattern[str] | None:
    """Words in the paths of half the changed files or more: package or service names.

    `checkout` in src/checkout/api.py and config/checkout.yaml says nothing about either file,
    so these words are blanked out (also inside identifiers) before the hints look.
    """
    counts: dict[str, int] = {}
    for changed in change.files:
        for word in _path_words(changed.path):
            counts[word] = counts.get(word, 0) + 1
    needed = max(2, math.ceil(len(change.files) / 2))
    words = sorted(w for w, n in counts.items() if n >= needed)
    if not words:
        return None
    return re.compile(r"(?<![A-Za-z])(?:" + "|".join(words) + r")(?![A-Za-z])", re.IGNORECASE)


def hint_score(
    changed: ChangedFile,
    ft: FileText,
    role: Role,
    signals: Sequence[RegressedSignal],
    shared: re.Pattern[str] | None,
) -> tuple[float, list[str]]:
    wanted: dict[str, list[str]] = {}
    for signal in signals:
        for theme in _themes(signal):
            wanted.setdefault(theme, []).append(signal.name)
    if not wanted:
        return 0.0, []
    changed_text = ft.changed_text if shared is None else shared.sub(" ", ft.changed_text)
    near_text = ft.near_text if shared is None else shared.sub(" ", ft.near_text)
    stem = posixpath.splitext(posixpath.basename(changed.path))[0]
    if shared is not None:
        stem = shared.sub(" ", stem)
    hunk_texts = [changed_text]
    best_total, reasons = 0.0, []
    for theme in sorted(wanted):
        found: dict[str, float] = {}
        for hint in _HINTS[theme]:
            weight = _hint_weight(hint, changed, role, stem, changed_text, near_text, hunk_texts)
            if weight > found.get(hint.label, 0.0):
                found[hint.label] = weight
        raw = sum(found.values())
        if raw <= 0.0:
            continue
        score = HINT_MAX * (1.0 - math.exp(-raw / HINT_MAX))
        best_total = max(best_total, score)
        labels = ", ".join(sorted(found, key=lambda k: (-found[k], k)))
        names = ", ".join(sorted(set(wanted[theme])))
        reasons.append((score, f"touches {labels}: fits the regressed {names}"))
    reasons.sort(key=lambda r: (-r[0], r[1]))
    # Several themes of one incident each add a little beyond the best one.
    total = best_total + 0.25 * (sum(s for s, _ in reasons) - best_total)
    return min(total, HINT_MAX * 1.25), [text for _, text in reasons]


def _hint_weight(
    hint: Hint,
    changed: ChangedFile,
    role: Role,
    stem: str,
    changed_text: str,
    near_text: str,
    hunk_texts: Sequence[str],
) -> float:
    if hint.on == "name":
        return hint.weight if hint.pattern.search(stem) else 0.0
    if hint.on == "path":
        return hint.weight if hint.pattern.search(changed.path) else 0.0
    if hint.on == "hunk":
        return hint.weight if any(hint.pattern.search(t + "\n") for t in hunk_texts) else 0.0
    if hint.config_only and role is not CONFIG:
        return 0.0
    if any(hint.pattern.search(line) for line in changed_text.splitlines()):
        return hint.weight
    if any(hint.pattern.search(line) for line in near_text.splitlines()):
        return hint.weight * NEARBY
    return 0.0
