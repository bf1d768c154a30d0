"""The proposed thresholds as a Prometheus alerting rule file.

Each signal's rule uses the signal's own PromQL (from vigil.yaml or the bundle's `query`):

    (Q) > 0.04 and on() (hour() >= 12 < 20)            a threshold for peak hours,
    or (Q) > 0.18 and on() (hour() >= 20 or hour() < 12)   another for the rest,
    ... and on() ((EVENTS) >= 0.02)                    and a minimum of events for ratios.

`hour()` is UTC, as the history's hours are.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import yaml

from agent.thresholds import SignalReport, ThresholdReport
from agent.thresholds_rule import ThresholdRule, fmt_duration, hour_runs


def number(value: float) -> str:
    return format(value, ".10g")


def hour_selector(hours: Sequence[int]) -> str:
    """UTC hours as a PromQL filter on `hour()`; runs across midnight become two clauses."""
    parts = []
    for a, b in hour_runs(hours):
        if b > 24:
            parts += [f"hour() >= {a}", f"hour() < {b - 24}"]
        elif a == 0:
            parts.append(f"hour() < {b}")
        elif b == 24:
            parts.append(f"hour() >= {a}")
        else:
            parts.append(f"hour() >= {a} < {b}")
    return " or ".join(parts)


def expression(rule: ThresholdRule, query: str, events_query: str | None = None) -> str:
    """The rule's PromQL: one comparison per band of hours, and the events guard."""
    if len(rule.bands) == 1 and len(rule.bands[0].hours) == 24:
        expr = f"({query}) {rule.op} {number(rule.bands[0].threshold)}"
    else:
        expr = "\n or ".join(
            f"(({query}) {rule.op} {number(b.threshold)} and on() ({hour_selector(b.hours)}))"
            for b in rule.bands
        )
    if rule.min_events is not None and events_query is not None:
        expr = f"({expr})\n and on() (({events_query}) >= {number(rule.min_events)})"
    return expr


def alert_name(service: str, signal: str, rule: ThresholdRule) -> str:
    words = re.split(r"[^A-Za-z0-9]+", f"{service} {signal}")
    camel = "".join(w[:1].upper() + w[1:] for w in words if w)
    return f"{camel}{'Low' if rule.direction == 'down' else 'High'}"


def _rule(report: ThresholdReport, sig: SignalReport, queries: dict[str, str]) -> dict[str, Any]:
    rule = sig.proposed
    query = sig.query
    assert query is not None
    events_query = queries.get(rule.events_signal) if rule.events_signal else None
    before = sig.current_outcome
    after = sig.proposed_outcome
    history = (
        f"On {report.days:g} days of history: {after.false_positives} false alarms"
        + (f" (the current rule: {before.false_positives})" if before is not None else "")
        + f", {after.caught} of {after.incidents} known incidents caught within "
        f"{fmt_duration(report.max_delay_s)}."
    )
    return {
        "alert": alert_name(report.service, sig.signal, rule),
        "expr": expression(rule, query, events_query),
        "for": fmt_duration(rule.for_s),
        "labels": {"severity": "warning", "service": report.service, "signal": sig.signal},
        "annotations": {
            "summary": f"{sig.signal} of {report.service}: {rule.describe()}",
            "description": f"Proposed by vigil thresholds. {history}",
        },
    }


def rule_file(report: ThresholdReport) -> tuple[str, list[str]]:
    """The YAML text, and the signals left out because the history has no query for them."""
    queries = {**report.queries, **{s.signal: s.query for s in report.signals if s.query}}
    rules, skipped = [], []
    for sig in report.signals:
        events = sig.proposed.events_signal
        if not sig.query or (
            events and sig.proposed.min_events is not None and events not in queries
        ):
            skipped.append(sig.signal)
            continue
        rules.append(_rule(report, sig, queries))
    doc = {"groups": [{"name": f"vigil-thresholds-{report.service}", "rules": rules}]}
    text = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)
    return text, skipped


class _Dumper(yaml.SafeDumper):
    """Multi-line PromQL as a `|` block, as people write rule files."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)
