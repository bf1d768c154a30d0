"""Error patterns a deploy introduced: which log templates are new or grew since it started.

`mine` feeds the error-level lines of the window before the deploy and of the window since it
started into one drain3 template miner, so that a template means the same thing in both
windows. Each template's lines are counted per window, the counts become rates (lines per
second) and every template gets a status:

- new: no line before the deploy, at least one since;
- gone: lines before, none since;
- grew: the rate rose at least `_MIN_RATIO`-fold with at least `_MIN_COUNT` lines since, and a
  conditional Poisson test says so many of the template's lines falling after the deploy is
  unlikely to be chance (p <= `_ALPHA`): given n lines in all, the after-window count is
  Binomial(n, after_s / (before_s + after_s)) when the rate did not change;
- shrank: the same, downwards;
- steady: anything else (1 -> 2 lines is steady, not grew).

Patterns come most suspicious first. A new pattern outranks a grown one only when its lines
are unlikely to have all fallen after the deploy by chance (the same test, p <= `_ALPHA`): two
lines of a new warning should not hide an error that went from 2 to 100.

Multi-line messages are mined by their first line; the rest (or an `exception`-like extra key
of the line) is kept as the pattern's stack trace. Lines are sorted by content before mining,
so the same lines give the same patterns in any input order.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from drain3 import TemplateMiner
from drain3.masking import LogMasker, MaskingInstruction
from drain3.template_miner_config import TemplateMinerConfig
from pydantic import BaseModel, ConfigDict
from scipy.special import bdtr, bdtrc

from agent.bundle.model import LogLine

PatternStatus = Literal["new", "grew", "steady", "shrank", "gone"]

DEFAULT_LEVELS: tuple[str, ...] = ("error", "fatal", "critical", "warn", "warning")

_STATUS_ORDER: dict[str, int] = {"new": 0, "grew": 1, "steady": 2, "shrank": 3, "gone": 4}
_ALPHA = 0.01  # one-sided p-value a rate change needs to count as grew or shrank
_MIN_RATIO = 1.5  # ... and the least factor the rate must change by
_MIN_COUNT = 3  # ... and the least lines the larger window must hold
_SIM_TH = 0.45  # drain similarity threshold: share of equal tokens to join a cluster
_DEPTH = 4
_TRACE_KEYS = ("exception", "exc_info", "stack_trace", "stacktrace", "traceback", "stack")

# Masks run in order before drain sees a line; each value becomes `<NAME>` in the template.
# A token must not be glued to letters, digits or `_` on either side (nor to a `.` on its left,
# so versions like v5.6.0 stay whole).
_L = r"(?<![A-Za-z0-9_.])"
_R = r"(?![A-Za-z0-9_])"
_MASKS: tuple[tuple[str, str], ...] = (
    ("UUID", _L + r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}" + _R),
    ("IP", _L + r"\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?" + _R),
    ("HEX", _L + r"0[xX][0-9a-fA-F]+" + _R),
    ("HEX", _L + r"(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}" + _R),
    # Prefixed ids: ord_99nz647j, usr_r8l99sv7, req-8f3k2j1q.
    ("ID", _L + r"[A-Za-z]{2,}[_-](?=[A-Za-z0-9]*\d)[A-Za-z0-9]{6,}" + _R),
    # Bare random ids: pppb98dm (two digits and a letter; base64 or sha256 are too short).
    ("ID", _L + r"(?=[A-Za-z0-9]*\d[A-Za-z0-9]*\d)(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{8,}" + _R),
    ("DUR", _L + r"\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h|d)" + _R),
    ("NUM", _L + r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?" + _R),
)


class Pattern(BaseModel):
    """One log template and how often it occurred before and since the deploy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    template: str  # masked, with <*> where drain found lines to differ
    example: str  # the first line of the template since the deploy (else before it)
    before: int
    after: int
    rate_before: float  # lines per second
    rate_after: float
    growth: float | None  # rate_after / rate_before; None when nothing before
    p_increase: float  # chance of >= `after` lines since the deploy if the rate had not changed
    status: PatternStatus
    first_seen_after: datetime | None
    levels: tuple[str, ...]
    stack_trace: str | None = None


class LogMining(BaseModel):
    """Every error pattern of the two windows, most suspicious first: new patterns too
    frequent to be chance (p_increase <= 0.01), grown ones, the other new ones, then steady,
    shrank and gone; within each, most lines since the deploy first."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    patterns: tuple[Pattern, ...]
    total_before: int  # mined lines (of the chosen levels) before the deploy
    total_after: int
    before_s: float
    after_s: float
    levels: tuple[str, ...] | None  # the levels mined; None for every level

    @property
    def new(self) -> tuple[Pattern, ...]:
        return tuple(p for p in self.patterns if p.status == "new")

    @property
    def grew(self) -> tuple[Pattern, ...]:
        return tuple(p for p in self.patterns if p.status == "grew")

    @property
    def suspicious(self) -> tuple[Pattern, ...]:
        """New and grown patterns, most suspicious first."""
        return tuple(p for p in self.patterns if p.status in ("new", "grew"))

    @property
    def messages(self) -> tuple[str, ...]:
        """Example lines of the suspicious patterns (for `suspects.Evidence.messages`)."""
        return tuple(dict.fromkeys(p.example for p in self.suspicious))

    @property
    def stack_traces(self) -> tuple[str, ...]:
        """Stack traces of the suspicious patterns (for `suspects.Evidence.stack_traces`)."""
        return tuple(dict.fromkeys(p.stack_trace for p in self.suspicious if p.stack_trace))

    def summary(self, *, limit: int = 10, max_trace_chars: int = 1500) -> dict[str, Any]:
        """A JSON-ready digest for a tool result: counts and the `limit` first patterns."""
        counts = {status: 0 for status in _STATUS_ORDER}
        for pattern in self.patterns:
            counts[pattern.status] += 1
        return {
            "window_seconds": {"before": self.before_s, "after": self.after_s},
            "lines": {"before": self.total_before, "after": self.total_after},
            "levels": list(self.levels) if self.levels is not None else None,
            "patterns_by_status": counts,
            "patterns": [_pattern_summary(p, max_trace_chars) for p in self.patterns[:limit]],
            "more_patterns": max(0, len(self.patterns) - limit),
        }


def _pattern_summary(pattern: Pattern, max_trace_chars: int) -> dict[str, Any]:
    data = pattern.model_dump(mode="json")
    for key in ("rate_before", "rate_after", "growth"):
        if data[key] is not None:
            data[key] = float(f"{data[key]:.4g}")
    data["p_increase"] = float(f"{pattern.p_increase:.3g}")
    trace = pattern.stack_trace
    if trace is not None and len(trace) > max_trace_chars:
        # The innermost frames and the exception sit at the end of a Python traceback.
        data["stack_trace"] = "[...]\n" + trace[-max_trace_chars:]
    return data


def split_at(
    lines: Sequence[LogLine], moment: datetime
) -> tuple[tuple[LogLine, ...], tuple[LogLine, ...]]:
    """Lines before `moment` and lines at or after it, in their given order."""
    return (
        tuple(line for line in lines if line.ts < moment),
        tuple(line for line in lines if line.ts >= moment),
    )


@dataclass(frozen=True)
class _Line:
    ts: datetime
    level: str
    head: str
    trace: str | None


def _trace_of(line: LogLine, rest: str) -> str | None:
    if rest.strip():
        return rest.strip("\n")
    extra = line.model_extra or {}
    for key in _TRACE_KEYS:
        value = extra.get(key)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = "\n".join(value)
        if isinstance(value, str) and value.strip():
            return value.strip("\n")
    return None


def _prepare(lines: Sequence[LogLine], wanted: frozenset[str] | None) -> list[_Line]:
    out = []
    for line in lines:
        level = line.level.lower()
        if wanted is not None and level not in wanted:
            continue
        text = line.message.replace("\r\n", "\n").strip("\n")
        head, _, rest = text.partition("\n")
        out.append(_Line(line.ts, level, head.strip(), _trace_of(line, rest)))
    # Drain depends on the order it sees lines in; sorting by content makes the result
    # independent of the caller's order.
    out.sort(key=_content_key)
    return out


def _content_key(line: _Line) -> tuple[datetime, str, str, str]:
    return line.ts, line.level, line.head, line.trace or ""


def _template_miner() -> TemplateMiner:
    config = TemplateMinerConfig()  # built here: no drain3.ini is read, nothing is persisted
    config.drain_sim_th = _SIM_TH
    config.drain_depth = _DEPTH
    config.drain_max_children = 100
    config.drain_max_clusters = None
    config.parametrize_numeric_tokens = True
    config.profiling_enabled = False
    config.masking_instructions = _masking_instructions()
    return TemplateMiner(persistence_handler=None, config=config)


def _masking_instructions() -> list[MaskingInstruction]:
    return [MaskingInstruction(rx, name) for name, rx in _MASKS]


def mask(text: str) -> str:
    """`text` with numbers, ids, hex, uuids, IPs and durations masked, as the miner sees it."""
    return str(LogMasker(_masking_instructions(), "<", ">").mask(text))


def _p_increase(before: int, after: int, share: float) -> float:
    """P(X >= after) for X ~ Binomial(before + after, share)."""
    if after == 0:
        return 1.0
    return float(bdtrc(after - 1, before + after, share))


def _p_decrease(before: int, after: int, share: float) -> float:
    """P(X <= after) for X ~ Binomial(before + after, share)."""
    return float(bdtr(after, before + after, share))


def _status(before: int, after: int, before_s: float, after_s: float) -> PatternStatus:
    if before == 0:
        return "new"
    if after == 0:
        return "gone"
    share = after_s / (before_s + after_s)
    ratio = (after / after_s) / (before / before_s)
    if after >= _MIN_COUNT and ratio >= _MIN_RATIO and _p_increase(before, after, share) <= _ALPHA:
        return "grew"
    if (
        before >= _MIN_COUNT
        and ratio <= 1 / _MIN_RATIO
        and _p_decrease(before, after, share) <= _ALPHA
    ):
        return "shrank"
    return "steady"


def mine(
    before: Sequence[LogLine],
    after: Sequence[LogLine],
    *,
    before_s: float,
    after_s: float,
    levels: Collection[str] | None = DEFAULT_LEVELS,
) -> LogMining:
    """Mine the lines of the window before a deploy and of the window since it started.

    `before_s` and `after_s` are the windows' lengths in seconds (they turn counts into
    rates); `levels` picks the lines to mine (case-insensitive), None mines every line.
    """
    if before_s <= 0 or after_s <= 0:
        raise ValueError(
            f"window lengths must be positive (before_s={before_s}, after_s={after_s}); "
            "pass the seconds each window covers, not the span of its lines"
        )
    wanted = None if levels is None else frozenset(level.lower() for level in levels)
    windows = (_prepare(before, wanted), _prepare(after, wanted))
    miner = _template_miner()
    # Both windows go through one miner, the earlier first, so templates match across them.
    members: dict[int, tuple[list[_Line], list[_Line]]] = {}
    for index, window in enumerate(windows):
        for line in window:
            cluster_id = int(miner.add_log_message(line.head)["cluster_id"])
            members.setdefault(cluster_id, ([], []))[index].append(line)
    templates = {int(c.cluster_id): str(c.get_template()) for c in miner.drain.clusters}
    # Two clusters can end with the same template; they are one pattern to a reader.
    grouped: dict[str, tuple[list[_Line], list[_Line]]] = {}
    for cluster_id, (was, now) in members.items():
        group = grouped.setdefault(templates[cluster_id], ([], []))
        group[0].extend(was)
        group[1].extend(now)
    patterns = [
        _pattern(template, was, now, before_s, after_s) for template, (was, now) in grouped.items()
    ]
    patterns.sort(key=_suspicion_key)
    return LogMining(
        patterns=tuple(patterns),
        total_before=len(windows[0]),
        total_after=len(windows[1]),
        before_s=before_s,
        after_s=after_s,
        levels=None if wanted is None else tuple(sorted(wanted)),
    )


def _suspicion_key(pattern: Pattern) -> tuple[int, int, int, str]:
    rank = _STATUS_ORDER[pattern.status] + 1  # new 1, grew 2, steady 3, shrank 4, gone 5
    if pattern.status == "new" and pattern.p_increase > _ALPHA:
        rank = 2  # a handful of new lines could be chance: after the grown patterns
    elif pattern.status == "new":
        rank = 0
    return rank, -pattern.after, -pattern.before, pattern.template


def _pattern(
    template: str, was: list[_Line], now: list[_Line], before_s: float, after_s: float
) -> Pattern:
    was.sort(key=_content_key)
    now.sort(key=_content_key)
    shown = now or was
    rate_before = len(was) / before_s
    rate_after = len(now) / after_s
    share = after_s / (before_s + after_s)
    return Pattern(
        template=template or "(empty message)",
        example=shown[0].head,
        before=len(was),
        after=len(now),
        rate_before=rate_before,
        rate_after=rate_after,
        growth=rate_after / rate_before if was else None,
        p_increase=_p_increase(len(was), len(now), share),
        status=_status(len(was), len(now), before_s, after_s),
        first_seen_after=now[0].ts if now else None,
        levels=tuple(sorted({x.level for x in was + now})),
        stack_trace=next((x.trace for x in shown if x.trace), None),
    )
