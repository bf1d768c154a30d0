"""`vigil thresholds`: alert thresholds proposed from a service's history and its incidents.

For every signal with a current rule or a known incident: replay the current rule (the seed
thresholds, or `--current`), then search for a rule that catches every known incident within
the maximum delay with as few false alarms as the history allows. When traffic has a daily
pattern, peak and off-peak hours get their own thresholds; ratios may need a minimum of
events, so one error among five requests at 4 AM does not page. The goal is at least half the
false alarms gone and no incident missed; when the history does not allow it, the report says
so with the numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Literal

import numpy as np
from pydantic import BaseModel

from agent.bundle.model import SignalKind, SignalSpec, SignalUnit
from agent.errors import VigilError
from agent.thresholds_history import History, KnownIncident, SignalHistory, check_incidents
from agent.thresholds_rule import (
    ALL_HOURS,
    Outcome,
    Prepared,
    ThresholdRule,
    condition,
    fmt_duration,
    replay,
    score,
    seed_rule,
)
from agent.thresholds_search import Found, daily_bands, rank, search

DEFAULT_MAX_DELAY_S = 900.0
TARGET_CUT = 0.5
VISIBLE_QUANTILE = 0.995  # an incident shows in a signal whose median during it is past this
LIKELY_RANK = 0.95  # ... else in the one where it ranks highest, if at least this high


class IncidentReport(BaseModel):
    start: float
    end: float
    source: str
    signal: str | None  # as given
    signals: list[str]  # the signals it showed in (given, or found in the data)
    current_delay_s: float | None  # the first current rule to fire on it; None: none did
    proposed_delay_s: float | None


class SignalReport(BaseModel):
    signal: str
    kind: str
    unit: str
    query: str | None
    incidents: int
    seasonal: bool
    traffic_signal: str | None
    peak_hours: list[int] | None
    current: ThresholdRule | None
    current_source: Literal["seed", "--current"] | None
    current_outcome: Outcome | None
    proposed: ThresholdRule
    proposed_outcome: Outcome
    false_positive_cut: float | None  # share of the current false alarms gone (0..1)
    target_met: bool
    note: str


class Totals(BaseModel):
    incidents: int
    current_false_positives: int
    proposed_false_positives: int
    current_missed: int  # incidents no current rule caught within the maximum delay
    proposed_missed: int
    false_positive_cut: float | None
    target_met: bool


class Explanation(BaseModel):
    text: str
    source: Literal["deterministic", "llm"]
    fallback_reason: str | None = None


class ThresholdReport(BaseModel):
    service: str
    source: str
    start: float
    end: float
    days: float  # the time the samples cover, in days
    step_s: float
    samples: int
    max_delay_s: float
    signals: list[SignalReport]
    skipped: list[str]
    queries: dict[str, str]  # every signal's PromQL the history knows (for the events guard)
    incidents: list[IncidentReport]
    totals: Totals
    notes: list[str]
    explanation: Explanation | None = None


def propose_thresholds(
    history: History,
    *,
    current: Sequence[ThresholdRule] = (),
    max_delay_s: float = DEFAULT_MAX_DELAY_S,
) -> ThresholdReport:
    """Replay the current rules and search for better ones; the numbers behind every choice."""
    live = {name: s for name, s in history.signals.items() if len(s) and np.isfinite(s.v).any()}
    if not live:
        raise VigilError(f"{history.source or history.service}: the history holds no samples")
    check_incidents(history, history.incidents)
    incidents = sorted(history.incidents, key=lambda i: i.start)
    given = {r.signal: r for r in current}
    for name in given:
        if name not in live:
            raise VigilError(f"--current names {name!r}, which has no samples in the history")
    shows_in = attribute(live, incidents)
    notes = list(history.notes)
    hidden = [i for i, names in enumerate(shows_in) if not names]
    for i in hidden:
        notes.append(
            f"incident from {_iso(incidents[i].start)} ({incidents[i].source}) does not show in "
            "any signal: no threshold can catch it"
        )
    hours = {int(h) for s in live.values() for h in np.unique((s.t // 3600) % 24)}
    if len(hours) < 24:
        notes.append(
            f"the history covers {len(hours)} of the 24 hours of the day: no daily pattern can "
            "be seen, so each threshold holds at all hours"
        )
    reports: list[SignalReport] = []
    skipped: list[str] = []
    preps: dict[str, Prepared] = {}
    for name, sig in live.items():
        targets = [inc for inc, names in zip(incidents, shows_in, strict=True) if name in names]
        rule = given.get(name) or seed_rule(sig.spec)
        if rule is None and not targets:
            skipped.append(f"{name}: no current rule and no known incident shows in it")
            continue
        events = _events_for(sig.spec, live)
        prep = Prepared.build(
            sig,
            step_s=history.step_s,
            incidents=incidents,
            targets=targets,
            max_delay_s=max_delay_s,
            events=events,
        )
        preps[name] = prep
        source: Literal["seed", "--current"] | None = (
            "--current" if name in given else "seed" if rule is not None else None
        )
        reports.append(_signal_report(sig, prep, rule, source, targets, live, incidents))
    incident_reports = _incident_reports(incidents, shows_in, reports, preps)
    start, end = history.span
    return ThresholdReport(
        service=history.service,
        source=history.source,
        start=start,
        end=end,
        days=round(history.covered_s / 86400, 2),
        step_s=history.step_s,
        samples=history.samples,
        max_delay_s=max_delay_s,
        signals=reports,
        skipped=skipped,
        queries={n: s.spec.query for n, s in history.signals.items() if s.spec.query},
        incidents=incident_reports,
        totals=_totals(reports, incident_reports, max_delay_s),
        notes=notes,
    )


def attribute(
    signals: Mapping[str, SignalHistory], incidents: Sequence[KnownIncident]
) -> list[list[str]]:
    """The signals each incident showed in: the one it names, else every signal whose median
    during the incident is past its 99.5th percentile outside incidents (in the bad
    direction), else the one where that median ranks highest (if in the top 5 %)."""
    out: list[list[str]] = []
    outside: dict[str, np.ndarray] = {}
    for name, sig in signals.items():
        keep = np.isfinite(sig.v)
        for inc in incidents:
            keep &= (sig.t < inc.start) | (sig.t > inc.end)
        outside[name] = _bad_up(sig.spec, sig.v[keep])
    for inc in incidents:
        if inc.signal is not None:
            out.append([inc.signal] if inc.signal in signals else [])
            continue
        shown: list[str] = []
        ranks: dict[str, float] = {}
        for name, sig in signals.items():
            during = _bad_up(sig.spec, sig.v[(sig.t >= inc.start) & (sig.t <= inc.end)])
            during = during[np.isfinite(during)]
            calm = outside[name]
            if len(during) < 2 or len(calm) < 10:
                continue
            middle = float(np.median(during))
            if middle > float(np.quantile(calm, VISIBLE_QUANTILE)):
                shown.append(name)
            ranks[name] = float(np.mean(calm < middle))
        if not shown and ranks:
            name, best = max(ranks.items(), key=lambda kv: kv[1])
            if best >= LIKELY_RANK:
                shown.append(name)
        out.append(shown)
    return out


def _bad_up(spec: SignalSpec, values: np.ndarray) -> np.ndarray:
    """Values oriented so that larger is worse."""
    out: np.ndarray = -values if spec.bad_direction == "down" else values
    return out


def _events_for(spec: SignalSpec, live: Mapping[str, SignalHistory]) -> SignalHistory | None:
    if spec.unit in (SignalUnit.RATIO, SignalUnit.PERCENT) and spec.events is not None:
        return live.get(spec.events)
    return None


def _traffic_for(spec: SignalSpec, live: Mapping[str, SignalHistory]) -> SignalHistory | None:
    """What follows the daily cycle for this signal: a traffic signal itself, its events,
    else the service's (first) traffic signal."""
    if spec.kind == SignalKind.TRAFFIC:
        return live.get(spec.name)
    if spec.events is not None and spec.events in live:
        return live[spec.events]
    return next((s for s in live.values() if s.spec.kind == SignalKind.TRAFFIC), None)


def _signal_report(
    sig: SignalHistory,
    prep: Prepared,
    rule: ThresholdRule | None,
    source: Literal["seed", "--current"] | None,
    targets: Sequence[KnownIncident],
    live: Mapping[str, SignalHistory],
    incidents: Sequence[KnownIncident],
) -> SignalReport:
    spec = sig.spec
    op: Literal[">", "<"] = "<" if spec.bad_direction == "down" else ">"
    traffic = _traffic_for(spec, live)
    bands = None if traffic is None else daily_bands(traffic, incidents)
    events_signal = spec.events if prep.events is not None else None
    starts = [i.start for i in targets]
    flat = search(
        prep,
        signal=spec.name,
        op=op,
        bands=[ALL_HOURS],
        events_signal=events_signal,
        target_starts=starts,
    )
    found = flat
    if bands is not None:
        split = search(
            prep,
            signal=spec.name,
            op=op,
            bands=[bands.peak, bands.off_peak],
            events_signal=events_signal,
            target_starts=starts,
        )
        if rank(split.outcome) <= rank(flat.outcome):
            found = split
    before = None if rule is None else replay(prep, rule)
    kept = before is not None and (
        rank(before) <= rank(found.outcome) or (not targets and before.false_positives == 0)
    )
    if kept and rule is not None and before is not None:
        found = Found(rule, before)
    after = found.outcome
    cut = None
    if before is not None and before.false_positives:
        cut = (before.false_positives - after.false_positives) / before.false_positives
    met = after.not_caught == 0 and (cut is None or cut >= TARGET_CUT)
    return SignalReport(
        signal=spec.name,
        kind=str(spec.kind),
        unit=str(spec.unit),
        query=spec.query,
        incidents=len(targets),
        seasonal=bands is not None,
        traffic_signal=None if traffic is None else traffic.name,
        peak_hours=None if bands is None else list(bands.peak),
        current=rule,
        current_source=source,
        current_outcome=before,
        proposed=found.rule,
        proposed_outcome=after,
        false_positive_cut=None if cut is None else round(cut, 4),
        target_met=met,
        note=_note(before, after, cut, bands is not None, found.rule, prep.max_delay_s, kept),
    )


def _note(
    before: Outcome | None,
    after: Outcome,
    cut: float | None,
    seasonal: bool,
    rule: ThresholdRule,
    max_delay_s: float,
    kept: bool,
) -> str:
    """One honest sentence or three: what the numbers allow and what they do not."""
    parts = []
    if kept:
        parts.append("no rule searched does better than the current one: keep it")
    if after.incidents == 0:
        parts.append("no known incident shows in this signal")
    elif after.not_caught:
        parts.append(
            f"no rule searched catches every incident within {fmt_duration(max_delay_s)}: "
            f"{after.not_caught} of {after.incidents} not caught"
        )
    if before is None:
        parts.append("no current rule to compare with")
    elif before.false_positives == 0:
        parts.append("the current rule raised no false alarm on this history")
    elif cut is not None and cut < TARGET_CUT and not after.not_caught:
        parts.append(
            "the history does not allow halving the false alarms without missing an incident: "
            f"{before.false_positives} -> {after.false_positives}"
        )
    if seasonal and not rule.time_of_day and not kept:
        parts.append("traffic is seasonal, but one threshold for all hours does as well")
    return "; ".join(parts) or "target met"


def _incident_reports(
    incidents: Sequence[KnownIncident],
    shows_in: Sequence[list[str]],
    reports: Sequence[SignalReport],
    preps: Mapping[str, Prepared],
) -> list[IncidentReport]:
    """Per incident: how soon any current rule, and any proposed rule, fired on it."""
    out = []
    for inc, names in zip(incidents, shows_in, strict=True):
        span = np.array([[inc.start, inc.end]])
        current: list[float] = []
        proposed: list[float] = []
        for r in reports:
            prep = preps[r.signal]
            for rule, delays in ((r.current, current), (r.proposed, proposed)):
                if rule is None:
                    continue
                d = score(prep, condition(prep, rule), rule.for_s, span).delays_s[0]
                if d is not None:
                    delays.append(d)
        out.append(
            IncidentReport(
                start=inc.start,
                end=inc.end,
                source=inc.source,
                signal=inc.signal,
                signals=names,
                current_delay_s=min(current) if current else None,
                proposed_delay_s=min(proposed) if proposed else None,
            )
        )
    return out


def _totals(
    reports: Sequence[SignalReport], incidents: Sequence[IncidentReport], max_delay_s: float
) -> Totals:
    def missed(delay: float | None) -> bool:
        return delay is None or delay > max_delay_s + 1e-6

    before = sum(r.current_outcome.false_positives for r in reports if r.current_outcome)
    after = sum(r.proposed_outcome.false_positives for r in reports)
    cut = None if before == 0 else round((before - after) / before, 4)
    proposed_missed = sum(missed(i.proposed_delay_s) for i in incidents)
    return Totals(
        incidents=len(incidents),
        current_false_positives=before,
        proposed_false_positives=after,
        current_missed=sum(missed(i.current_delay_s) for i in incidents),
        proposed_missed=proposed_missed,
        false_positive_cut=cut,
        target_met=proposed_missed == 0 and (cut is None or cut >= TARGET_CUT),
    )


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
