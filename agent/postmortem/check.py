"""Checking a model's draft: every time, number, identifier, file name and reference in it
must be found in the facts, and every line cite them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

from agent.postmortem.model import SECTIONS

_URL = re.compile(r"https?://[^\s)\]>`'\"]+")
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?Z?)?")
_CLOCK = re.compile(r"(?<![\d:.])\d{1,2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?![\d:])")
# Ids hold a digit: "deploy-6704" is an id, "deploy-caused" is a word.
_IDENT = re.compile(r"(?<![\w/.-])(?:inc|watch|deploy)-(?=[\w.-]*\d)[A-Za-z0-9][\w.-]*[A-Za-z0-9]")
_VERSION = re.compile(r"(?<![\w.-])v\d+(?:\.\d+)+(?:[-+][\w.]+)?")
_FILE = re.compile(
    r"(?<![\w/.-])(?:[\w.-]+/)*[\w.-]*\w\.(?:py|go|js|jsx|ts|tsx|java|kt|rb|rs|c|h|cc|cpp|cs|"
    r"php|scala|swift|sql|yaml|yml|json|toml|ini|cfg|conf|sh|tf|proto|md|txt|html|css|lock)\b"
)
# Two slashes at least: "src/app/db" is a path, "and/or" is not.
_PATH = re.compile(r"(?<![\w/.:-])(?:[\w.-]+/){2,}[\w.-]+")
_CITE = re.compile(r"\[([^\[\]]+)\](?!\()")
_REF_TOKEN = re.compile(r"[A-Za-z_]+(?:#\d+|:[^\s,;\]]+)")
_LIST = re.compile(r"^\s*(?:[-*+]\s+(?:\[[ xX]\]\s+)?|\d+[.)]\s+)")
_HEADING_NUMBER = re.compile(r"^(#+\s*)\d+[.)]\s+", re.MULTILINE)
_NUMBER = re.compile(
    r"(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w])|(?<![\w.])\d+(?:\.\d+)?(?!\w)"
)
_REF = re.compile(r"\b(?:audit#\d+|(?:incident|deploy|alert|watch|health):[^\s\"',;\]|)]+)")
_NAMES = (
    (_URL, "link"),
    (_IDENT, "identifier"),
    (_VERSION, "version"),
    (_FILE, "file"),
    (_PATH, "file"),
)


def _number(text: str) -> str:
    try:
        value = Decimal(text.replace(",", ""))
    except InvalidOperation:  # pragma: no cover - the pattern only matches numbers
        return text
    return format(value.normalize(), "f") if value else "0"


def _times(text: str) -> set[str]:
    """Every way a time in the facts may be written: dates, minutes, seconds, milliseconds."""
    out: set[str] = set()
    for m in _ISO.finditer(text):
        stamp = m.group(0).replace(" ", "T").rstrip("Z")
        date, _, clock = stamp.partition("T")
        out.add(date)
        if clock:
            hm, hms = clock[:5], clock[:8]
            out.update({hm, hms, clock, f"{date}T{hm}", f"{date}T{hms}", f"{date}T{clock}"})
    return out


def _clock(text: str) -> str:
    return text if len(text.split(":", 1)[0]) == 2 else "0" + text


def _structure(lines: list[str]) -> list[str]:
    problems = []
    if not lines or not lines[0].startswith("# "):
        problems.append("the draft does not start with a '# ' title")
    headings = [line[3:].strip().lower() for line in lines if line.startswith("## ")]
    for section in SECTIONS:
        if not any(h.lstrip("0123456789.) ").startswith(section.lower()) for h in headings):
            problems.append(f"section '{section}' is missing")
    return problems


def _citations(draft: str, lines: list[str], known: set[str]) -> list[str]:
    problems = []
    for line in lines:
        if _LIST.match(line) and line.strip() not in ("-", "*"):
            cited = {t for c in _CITE.findall(line) for t in _REF_TOKEN.findall(c)}
            if not (cited | set(_REF.findall(line))) & known:
                problems.append(f"a claim cites no fact: {line.strip()[:80]!r}")
    for cite in _CITE.findall(draft):
        for token in _REF_TOKEN.findall(cite):
            if token not in known and not token.startswith("REDACTED:"):
                problems.append(f"it cites {token}, which is not a reference in the facts")
    return problems


def _named(text: str, facts_text: str, problems: list[str]) -> str:
    """Check links, ids, versions and files against the facts; return the text without them."""
    for pattern, what in _NAMES:
        for m in pattern.finditer(text):
            token = m.group(0).rstrip(".,;:")
            if token not in facts_text:
                problems.append(f"{what} {token} is not in the facts")
        text = pattern.sub(" ", text)
    return text


def _bare(text: str) -> str:
    """The text without references, names and times: what is left of its numbers is data."""
    text = _REF.sub(" ", text)
    for pattern, _ in _NAMES:
        text = pattern.sub(" ", text)
    return _CLOCK.sub(" ", _ISO.sub(" ", text))


def check_draft(draft: str, facts_text: str, refs: Sequence[str]) -> list[str]:
    """What in the model's draft is not in the facts (empty when the draft can be used)."""
    lines = draft.strip().splitlines()
    problems = _structure(lines) + _citations(draft, lines, set(refs))
    text = _HEADING_NUMBER.sub(r"\1", draft)
    text = "\n".join(_LIST.sub("", line, count=1) for line in text.splitlines())
    text = _REF.sub(" ", _CITE.sub(" ", text))
    text = _named(text, facts_text, problems)
    times = _times(facts_text)
    for pattern in (_ISO, _CLOCK):
        for m in pattern.finditer(text):
            stamp = m.group(0).replace(" ", "T").rstrip("Z")
            if (_clock(stamp) if pattern is _CLOCK else stamp) not in times:
                problems.append(f"time {m.group(0)} is not in the facts")
        text = pattern.sub(" ", text)
    numbers = {_number(n) for n in _NUMBER.findall(_bare(facts_text))}
    for m in _NUMBER.finditer(text):
        if _number(m.group(0)) not in numbers:
            problems.append(f"number {m.group(0)} is not in the facts")
    return list(dict.fromkeys(problems))
