"""(1) Mentions: a path, basename or dotted module name in the logs or stack traces names a
file; a mentioned line inside a changed hunk adds a bonus.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass

from agent.suspects.change import ChangedFile, ChangeType, Hunk
from agent.suspects.weights import (
    LINE_IN_HUNK,
    MENTION_BASENAME,
    MENTION_MODULE,
    MENTION_PATH,
    OUTER_FRAME,
)

EXTENSIONS = (
    "py|pyx|go|js|mjs|cjs|ts|tsx|jsx|java|kt|kts|scala|rb|rs|cs|php|swift|c|cc|cpp|h|hpp|"
    "ex|exs|erl|clj|sql|ya?ml|json|toml|ini|cfg|conf|properties|xml|html|sh|tf|proto"
)
_PATHLIKE = re.compile(
    rf"(?P<path>(?:[A-Za-z]:)?[\w.@+\-/\\]*[\w\-]\.(?:{EXTENSIONS}))\b"
    r"(?:\"?,\s*line\s+(?P<pyline>\d+)|:(?P<line>\d+))?"
)
_JAVA_FRAME = re.compile(r"\bat\s+(?P<qual>[\w$.]+)\((?P<file>[\w$]+\.\w+):(?P<line>\d+)\)")
_DOTTED = re.compile(r"(?<![\w./\\-])(?:[A-Za-z_]\w*\.){1,8}[A-Za-z_]\w*(?![\w/\\-])")
_RECENT_LAST = re.compile(r"most recent call last", re.IGNORECASE)


@dataclass(frozen=True)
class Mention:
    path: str  # as written, normalised to forward slashes without leading ./ or /
    line: int | None
    module: bool  # a dotted module name rather than a path
    weight: float  # 1 for a message or the innermost frame, OUTER_FRAME for outer frames
    where: str  # "stack frame" or "log message"


def _normalise(path: str) -> str:
    path = path.replace("\\", "/")
    while path.startswith(("./", "/")):
        path = path[1:] if path.startswith("/") else path[2:]
    return path


def mentions_in(text: str, *, trace: bool) -> list[Mention]:
    """Paths (with line numbers) and dotted module names named in one text."""
    found: list[tuple[int, str, int | None, bool]] = []  # (offset, path, line, module)
    spans: list[tuple[int, int]] = []
    for m in _JAVA_FRAME.finditer(text):
        package = m.group("qual").rsplit(".", 2)[0] if m.group("qual").count(".") >= 2 else ""
        path = (package.replace(".", "/") + "/" if package else "") + m.group("file")
        found.append((m.start(), path, int(m.group("line")), False))
        spans.append(m.span())
    for m in _PATHLIKE.finditer(text):
        if any(a <= m.start() < b for a, b in spans):
            continue
        line_text = m.group("pyline") or m.group("line")
        found.append((m.start(), _normalise(m.group("path")), _int(line_text), False))
        spans.append(m.span())
    for m in _DOTTED.finditer(text):
        if any(a <= m.start() < b for a, b in spans):
            continue
        found.append((m.start(), m.group(0), None, True))
    found.sort(key=lambda item: item[0])
    if not trace:
        return [Mention(p, n, mod, 1.0, "log message") for _, p, n, mod in found]
    # The innermost frame is the last file mention of a Python traceback, the first otherwise.
    files = [i for i, item in enumerate(found) if not item[3]]
    inner = None
    if files:
        inner = files[-1] if _RECENT_LAST.search(text) else files[0]
    return [
        Mention(p, n, mod, 1.0 if i == inner or mod else OUTER_FRAME, "stack frame")
        for i, (_, p, n, mod) in enumerate(found)
    ]


def _int(text: str | None) -> int | None:
    return int(text) if text else None


def _match_strength(mention: Mention, path: str) -> float:
    if mention.module:
        parts = mention.path.split(".")
        stem = posixpath.splitext(path)[0].split("/")
        # payments.validation.CardError names src/payments/validation.py: try the longest
        # prefix of at least two parts that ends the file's path.
        for k in range(len(parts), 1, -1):
            if len(stem) >= k and stem[-k:] == parts[:k]:
                return MENTION_MODULE
        return 0.0
    said = mention.path
    if said == path or said.endswith("/" + path) or ("/" in said and path.endswith("/" + said)):
        return MENTION_PATH
    if posixpath.basename(said) == posixpath.basename(path):
        return MENTION_BASENAME
    return 0.0


def _hunk_with_line(changed: ChangedFile, line: int) -> Hunk | None:
    for hunk in changed.hunks:
        first, last = (
            hunk.source_range if changed.change_type is ChangeType.REMOVED else (hunk.target_range)
        )
        if first <= line <= last:
            return hunk
    return None


def mention_score(changed: ChangedFile, mentions: Sequence[Mention]) -> tuple[float, list[str]]:
    best, best_reason = 0.0, ""
    bonus, bonus_reason = 0.0, ""
    for mention in mentions:
        strength = _match_strength(mention, changed.path)
        if strength == 0.0 and changed.old_path is not None:
            strength = _match_strength(mention, changed.old_path)
        if strength == 0.0:
            continue
        value = strength * mention.weight
        if value > best:
            kind = "module" if mention.module else "file"
            outer = " (an outer frame)" if mention.weight < 1.0 else ""
            best = value
            best_reason = f"{mention.where}{outer} names {kind} {mention.path}"
        if mention.line is None:
            continue
        hunk = _hunk_with_line(changed, mention.line)
        if hunk is not None and LINE_IN_HUNK * mention.weight > bonus:
            first, last = (
                hunk.source_range
                if changed.change_type is ChangeType.REMOVED
                else hunk.target_range
            )
            bonus = LINE_IN_HUNK * mention.weight
            bonus_reason = (
                f"{mention.where} {changed.path}:{mention.line} is in a changed hunk "
                f"(lines {first}-{last})"
            )
    reasons = [r for r in (best_reason, bonus_reason) if r]
    return best + bonus, reasons
