"""One paragraph explaining a threshold proposal, built from the same facts either way.

Without a model the paragraph is rendered from the facts. With one, the facts (as data,
secrets redacted) go to the model with `prompts/thresholds.md.j2`; its paragraph is kept only
if every number it cites is one of the facts' numbers, and otherwise (or when the model is
unavailable) the deterministic paragraph is used and the reason is recorded.
"""

from __future__ import annotations

import json
import re
from typing import Any

from agent.llm import AgentLoop, ModelUnavailable, parse_json_answer
from agent.prompts import pretty_json, render
from agent.thresholds import Explanation, ThresholdReport
from agent.thresholds_rule import Outcome, fmt_duration
from tools.base import Toolbox

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
MAX_CHARS = 1500
SYSTEM = (
    "You are Vigil, a site reliability engineer. You explain alert threshold proposals to the "
    "on-call team in plain words, using only the facts you are given."
)


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)


def _outcome(o: Outcome | None) -> dict[str, Any] | None:
    if o is None:
        return None
    return {
        "false_alarms": o.false_positives,
        "incidents": o.incidents,
        "caught_in_time": o.caught,
        "late": o.late,
        "missed": o.missed,
        "median_delay_minutes": _minutes(o.median_delay_s),
        "max_delay_minutes": _minutes(o.max_delay_s),
    }


def facts(report: ThresholdReport) -> dict[str, Any]:
    """What an explanation may say: the report's numbers, rounded as people read them."""
    t = report.totals
    return {
        "service": report.service,
        "history_days": report.days,
        "max_delay_minutes": _minutes(report.max_delay_s),
        "known_incidents": t.incidents,
        "current": {
            "false_alarms": t.current_false_positives,
            "incidents_missed": t.current_missed,
        },
        "proposed": {
            "false_alarms": t.proposed_false_positives,
            "incidents_missed": t.proposed_missed,
        },
        "false_alarm_cut_percent": None
        if t.false_positive_cut is None
        else round(100 * t.false_positive_cut),
        "target_met": t.target_met,
        "signals": [
            {
                "signal": s.signal,
                "current_rule": None if s.current is None else s.current.describe(),
                "proposed_rule": s.proposed.describe(),
                "time_of_day": s.proposed.time_of_day,
                "current": _outcome(s.current_outcome),
                "proposed": _outcome(s.proposed_outcome),
                "false_alarm_cut_percent": None
                if s.false_positive_cut is None
                else round(100 * s.false_positive_cut),
                "note": s.note,
            }
            for s in report.signals
        ],
        "notes": report.notes,
    }


def deterministic(f: dict[str, Any]) -> str:
    """The facts as a paragraph."""
    cur, new = f["current"], f["proposed"]
    out = [
        f"On {f['history_days']:g} days of {f['service']} history with {f['known_incidents']} "
        f"known incidents, the current rules raised {cur['false_alarms']} false alarms and "
        f"missed {cur['incidents_missed']} incidents (an incident counts as caught when an "
        f"alert fires within {f['max_delay_minutes']:g} minutes); the proposed rules raise "
        f"{new['false_alarms']} and miss {new['incidents_missed']}."
    ]
    for s in f["signals"]:
        p = s["proposed"]
        caught = f"{p['caught_in_time']} of {p['incidents']} incidents caught in time"
        line = f"{s['signal']}: {s['proposed_rule']}"
        if s["current_rule"] and s["current_rule"] != s["proposed_rule"]:
            c = s["current"]
            line += (
                f" instead of {s['current_rule']} ({c['false_alarms']} -> {p['false_alarms']} "
                f"false alarms, {c['caught_in_time']} -> {caught})"
            )
        else:
            line += f" ({p['false_alarms']} false alarms, {caught})"
        if p["median_delay_minutes"] is not None:
            line += f", median delay {p['median_delay_minutes']:g} minutes"
        out.append(line + f"; {s['note']}.")
    if f["false_alarm_cut_percent"] is not None:
        out.append(f"In all, {f['false_alarm_cut_percent']} % fewer false alarms.")
    out.append(
        "The target (at least half the false alarms gone, no incident missed) is "
        + ("met." if f["target_met"] else "not met on this history.")
    )
    out += [n.rstrip(".") + "." for n in f["notes"]]
    return " ".join(out)


def allowed_numbers(f: dict[str, Any]) -> set[float]:
    text = json.dumps(f)
    return {float(x) for x in _NUMBER.findall(text)}


def check(text: str, f: dict[str, Any]) -> str | None:
    """Why the model's paragraph cannot be used, or None when it can."""
    if not text.strip():
        return "the model wrote no explanation"
    if len(text) > MAX_CHARS:
        return f"the explanation is longer than {MAX_CHARS} characters"
    allowed = allowed_numbers(f)
    invented = sorted({n for n in _NUMBER.findall(text) if float(n) not in allowed})
    if invented:
        return "the explanation cites numbers that are not in the results: " + ", ".join(
            invented[:5]
        )
    return None


def prompt(report: ThresholdReport, f: dict[str, Any]) -> str:
    """The model's task; the facts go in as data (secrets redacted, block tags defused)."""
    return render(
        "thresholds.md.j2",
        service=report.service,
        max_delay=fmt_duration(report.max_delay_s),
        facts=pretty_json(f),
    )


def explain(report: ThresholdReport, loop: AgentLoop | None, offline_reason: str) -> Explanation:
    """The model's paragraph when it holds up, else the deterministic one (saying why)."""
    f = facts(report)
    plain = deterministic(f)
    if loop is None:
        return Explanation(text=plain, source="deterministic", fallback_reason=offline_reason)
    user = prompt(report, f)
    try:
        run = loop.run(SYSTEM, user, Toolbox([], None))
    except ModelUnavailable as exc:
        why = f"model unavailable: {exc}"
        return Explanation(text=plain, source="deterministic", fallback_reason=why)
    answer = parse_json_answer(run.final_text) or {}
    text = answer.get("explanation")
    problem = (
        "the model's answer has no explanation" if not isinstance(text, str) else check(text, f)
    )
    if problem is not None or not isinstance(text, str):
        return Explanation(text=plain, source="deterministic", fallback_reason=problem)
    return Explanation(text=text.strip(), source="llm")
