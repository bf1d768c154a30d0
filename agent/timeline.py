"""An incident's timeline, built deterministically from what the store recorded.

Sources, merged in time order: the incident's audit trail (tool calls, guard decisions,
actions with their outcome, model notes, "following deploy" notes, human decisions), the
alert's `startsAt` (from the triage's first note), and typed extra events: the deploy's start
and finish, the judge's "first reached tier N" marks, alert resolutions and a verdict back to
healthy. `load_timeline` reads the extras the server stores (deploys, deploy events, watch
sessions, health checks, alerts); callers may add their own.

Where time was lost, in four phases, each measured in whole milliseconds:
    detection   deploy start (or regression onset) -> first alert or first tier >= 2
    diagnosis   alert -> first conclusion (judge_deploy / fetch_diff result, model answer,
                the judge's first tier >= 2 in a deploy watch)
    action      conclusion -> first executed rollback, pause or escalation
    recovery    action -> alert resolved or verdict back to healthy ("open" until then)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from agent.audit import AuditEvent
from agent.backends.base import DeployInfo
from agent.errors import VigilError
from agent.store import Store

TimelineKind = Literal[
    "deploy_started",
    "deploy_finished",
    "deploy_event",
    "regression_onset",
    "tier_reached",
    "alert_fired",
    "alert_resolved",
    "healthy",
    "tool_call",
    "guard",
    "action",
    "model",
    "note",
    "following",
    "human",
]
PhaseName = Literal["detection", "diagnosis", "action", "recovery"]

# Actions that respond to an incident; a notification alone does not.
RESPONSES = frozenset({"rollback", "pause_rollout", "escalate"})
CONCLUDING_TOOLS = frozenset({"judge_deploy", "fetch_diff"})
_DONE = frozenset({"executed", "no_op"})
_WHAT_MAX = 240


class IncidentNotFound(VigilError):
    """No incident with that id in the store."""


class TimelineEvent(BaseModel):
    """One line of the timeline; `ref` names the record it comes from (e.g. `audit#7`)."""

    model_config = ConfigDict(frozen=True)

    at: float
    kind: TimelineKind
    actor: str
    what: str
    ref: str
    tier: int | None = None
    action: str | None = None  # guard and action events: the action's name
    tool: str | None = None  # tool calls: the tool's name
    status: str | None = None  # executed | dry_run | no_op | allowed | blocked | ok | error ...


class Phase(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: PhaseName
    state: Literal["measured", "open", "unknown"]
    what: str  # "deploy started -> alert fired", or why it cannot be measured
    start: float | None = None
    end: float | None = None
    seconds: float | None = None
    start_ref: str | None = None
    end_ref: str | None = None


class Timeline(BaseModel):
    incident_id: str
    service: str | None
    deploy_id: str | None
    events: list[TimelineEvent]
    phases: list[Phase]

    def phase(self, name: PhaseName) -> Phase:
        return next(p for p in self.phases if p.name == name)

    def to_json(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "service": self.service,
            "deploy_id": self.deploy_id,
            "events": [{"time": iso(e.at), **e.model_dump(exclude_none=True)} for e in self.events],
            "phases": [
                {
                    **p.model_dump(exclude_none=True),
                    "duration": None if p.seconds is None else human_duration(p.seconds),
                }
                for p in self.phases
            ],
        }

    def events_table(self) -> list[str]:
        """The events as a Markdown table, one row each."""
        began = self.events[0].at if self.events else 0.0
        lines = [
            "| time (UTC) | since first event | kind | actor | what happened | evidence |",
            "|---|---|---|---|---|---|",
        ]
        for e in self.events:
            lines.append(
                f"| {iso(e.at)} | +{human_duration(seconds_between(began, e.at))} | {e.kind} "
                f"| {_cell(e.actor)} | {_cell(e.what)} | {e.ref} |"
            )
        return lines

    def phases_table(self) -> list[str]:
        """Where time was lost, as a Markdown table."""
        lines = ["| phase | from | to | duration | evidence |", "|---|---|---|---|---|"]
        for p in self.phases:
            lines.append(
                f"| {p.name} | {_when(p.start)} | {_when(p.end)} | {phase_duration(p)} "
                f"| {_cell(p.what)}{_refs(p)} |"
            )
        return lines

    def to_markdown(self) -> str:
        title = f"## Timeline of {self.incident_id}" + (
            f" ({self.service})" if self.service else ""
        )
        lines = [title, "", *self.events_table(), "", "### Where time was lost", ""]
        return "\n".join([*lines, *self.phases_table()]) + "\n"


# --------------------------------------------------------------------------- formatting


def _ms(ts: float) -> int:
    return round(ts * 1000)


def iso(ts: float) -> str:
    """RFC 3339 in UTC with milliseconds, exactly (no float drift)."""
    ms = _ms(ts)
    dt = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def seconds_between(start: float, end: float) -> float:
    """`end - start` in whole milliseconds (283.696, never 283.69599986)."""
    return (_ms(end) - _ms(start)) / 1000


def human_duration(seconds: float) -> str:
    """`4 min 43.696 s`, `30 s`, `5 min`, `1 h 0 min 5 s`; negative durations keep their sign."""
    ms = round(abs(seconds) * 1000)
    sign = "-" if seconds < 0 else ""
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest // 1000}" if rest % 1000 == 0 else f"{rest / 1000:.3f}".rstrip("0")
    parts = [f"{hours} h"] if hours else []
    if hours or minutes:
        parts.append(f"{minutes} min")
    if rest or not parts:
        parts.append(f"{secs} s")
    elif hours and not minutes:
        parts.pop()
    return sign + " ".join(parts)


def phase_duration(p: Phase) -> str:
    if p.seconds is not None:
        return human_duration(p.seconds)
    return p.state


def _when(ts: float | None) -> str:
    return "—" if ts is None else iso(ts)


def _refs(p: Phase) -> str:
    refs = [r for r in (p.start_ref, p.end_ref) if r]
    return f" ({' → '.join(refs)})" if refs else ""


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _short(text: str) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= _WHAT_MAX else one_line[: _WHAT_MAX - 1] + "…"


# --------------------------------------------------------------------------- audit events


def _is_human(actor: str) -> bool:
    return actor.startswith(("human:", "slack:"))


def _from_audit(e: AuditEvent) -> list[tuple[int, TimelineEvent]]:
    """An audit event as timeline events; the int orders events recorded at the same time."""
    ref = f"audit#{e.seq}"
    d = e.data
    out: list[tuple[int, TimelineEvent]] = []
    if e.kind == "note" and isinstance(d.get("incident"), dict):
        inc = d["incident"]
        if isinstance(inc.get("started_at"), int | float):
            name = inc.get("alertname") or "alert"
            what = f"{name} fired on {inc.get('service')}"
            if inc.get("summary"):
                what += f": {inc['summary']}"
            alert = TimelineEvent(
                at=float(inc["started_at"]),
                kind="alert_fired",
                actor="alertmanager",
                what=_short(what),
                ref=ref,
            )
            out.append((0, alert))
    kind: TimelineKind
    extra: dict[str, Any] = {}
    if e.kind == "tool_call":
        kind = "tool_call"
        ok = bool(d.get("ok"))
        extra = {"tool": str(d.get("tool", "")), "status": "ok" if ok else "error"}
        what = e.summary if ok else f"{e.summary}: {d.get('error') or 'error'}"
    elif e.kind == "guard":
        kind = "guard"
        allowed = bool(d.get("allowed"))
        extra = {"action": str(d.get("action", "")), "status": "allowed" if allowed else "blocked"}
        what = f"guard {'allowed' if allowed else 'blocked'} {d.get('action')}: {e.summary}"
        if d.get("escalate"):
            what += " (a human must decide)"
    elif e.kind == "action":
        kind = "action"
        status = str(d.get("status") or ("executed" if d.get("executed") else "not executed"))
        extra = {"action": str(d.get("action", "")), "status": status}
        what = f"{d.get('action')} {status}: {e.summary}"
    elif e.kind == "model":
        kind = "model"
        what = e.summary
    elif e.kind == "note" and e.summary.startswith(("following ", "followed ")):
        kind = "following"
        what = e.summary
        if isinstance(d.get("tier"), int):
            extra = {"tier": d["tier"]}
    else:
        kind = "note"
        what = e.summary
    if _is_human(e.actor) and kind in ("note", "model"):
        kind = "human"
        what = f"human decision: {what}"
    item = TimelineEvent(at=e.at, kind=kind, actor=e.actor, what=_short(what), ref=ref, **extra)
    out.append((1, item))
    return out


# --------------------------------------------------------------------------- extras


def deploy_events(deploy: DeployInfo, *, actor: str = "deploy system") -> list[TimelineEvent]:
    """A deploy's start and finish as timeline events."""
    ref = f"deploy:{deploy.id}"
    name = f"{deploy.service} {deploy.version}"
    if deploy.previous_version:
        name += f" (from {deploy.previous_version})"
    out = [
        TimelineEvent(
            at=deploy.started_at.timestamp(),
            kind="deploy_started",
            actor=actor,
            what=f"deploy {deploy.id} of {name} started",
            ref=ref,
        )
    ]
    if deploy.finished_at is not None:
        out.append(
            TimelineEvent(
                at=deploy.finished_at.timestamp(),
                kind="deploy_finished",
                actor=actor,
                what=f"deploy {deploy.id} finished rolling out",
                ref=ref,
            )
        )
    return out


def tier_marks(deploy_id: str, first_at: Mapping[str, float]) -> list[TimelineEvent]:
    """The judge's "first reached tier N at T" marks, keyed "1", "2", "3" as watch sessions
    store them."""
    return [
        TimelineEvent(
            at=float(at),
            kind="tier_reached",
            actor="judge",
            what=f"the judge first said tier {int(tier)} for {deploy_id}",
            ref=f"watch:{deploy_id}",
            tier=int(tier),
        )
        for tier, at in sorted(first_at.items(), key=lambda kv: int(kv[0]))
    ]


def _parse_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp() if dt.year > 1 else None  # Alertmanager's "0001-01-01" = unset


def stored_events(store: Store, incident: Mapping[str, Any]) -> list[TimelineEvent]:
    """What the server recorded about the incident outside its audit trail."""
    conn = store.db.conn
    out: list[TimelineEvent] = []
    deploy_id = incident.get("deploy_id")
    if deploy_id:
        for row in conn.execute(
            "SELECT service, version, previous_version, source, status, started_at, finished_at"
            " FROM deploys WHERE id = ?",
            [deploy_id],
        ):
            service, version, previous, source, status, started, finished = row
            name = f"{service} {version}" + (f" (from {previous})" if previous else "")
            out.append(
                TimelineEvent(
                    at=float(started),
                    kind="deploy_started",
                    actor=str(source),
                    what=f"deploy {deploy_id} of {name} started",
                    ref=f"deploy:{deploy_id}",
                )
            )
            if finished is not None and status == "succeeded":
                out.append(
                    TimelineEvent(
                        at=float(finished),
                        kind="deploy_finished",
                        actor=str(source),
                        what=f"deploy {deploy_id} finished rolling out",
                        ref=f"deploy:{deploy_id}",
                    )
                )
        for kind, source, at in conn.execute(
            "SELECT kind, source, at FROM deploy_events WHERE deploy_id = ?"
            " AND kind IN ('failed', 'rolled_back', 'aborted') ORDER BY at",
            [deploy_id],
        ):
            out.append(
                TimelineEvent(
                    at=float(at),
                    kind="deploy_event",
                    actor=str(source),
                    what=f"deploy {deploy_id} {kind.replace('_', ' ')} (reported by {source})",
                    ref=f"deploy:{deploy_id}",
                    status=str(kind),
                )
            )
        marks: dict[str, float] = {}
        for (first,) in conn.execute(
            "SELECT first_tier_at FROM watch_sessions WHERE deploy_id = ?", [deploy_id]
        ):
            marks = {str(k): float(v) for k, v in json.loads(first or "{}").items()}
            out += tier_marks(str(deploy_id), marks)
        out += _back_to_healthy(store, str(deploy_id), marks)
    for fingerprint, starts_at, status, ends_at, name in conn.execute(
        "SELECT fingerprint, starts_at, status, ends_at, alertname FROM alerts"
        " WHERE incident_id = ? ORDER BY starts_at",
        [incident.get("incident_id")],
    ):
        began = _parse_time(starts_at)
        if began is not None:
            out.append(
                TimelineEvent(
                    at=began,
                    kind="alert_fired",
                    actor="alertmanager",
                    what=f"{name or 'alert'} fired",
                    ref=f"alert:{fingerprint}",
                )
            )
        ended = _parse_time(ends_at)
        if status == "resolved" and ended is not None:
            out.append(
                TimelineEvent(
                    at=ended,
                    kind="alert_resolved",
                    actor="alertmanager",
                    what=f"{name or 'alert'} resolved",
                    ref=f"alert:{fingerprint}",
                )
            )
    return out


def _back_to_healthy(
    store: Store, deploy_id: str, marks: Mapping[str, float]
) -> list[TimelineEvent]:
    """The first tier-0 health check after the judge first asked for an action."""
    acted = [at for tier, at in marks.items() if int(tier) >= 2]
    if not acted:
        return []
    row = store.db.conn.execute(
        "SELECT at FROM health_checks WHERE deploy_id = ? AND tier = 0 AND status = 'judged'"
        " AND at > ? ORDER BY at LIMIT 1",
        [deploy_id, min(acted)],
    ).fetchone()
    if row is None:
        return []
    return [
        TimelineEvent(
            at=float(row[0]),
            kind="healthy",
            actor="judge",
            what=f"the judge says {deploy_id} is healthy again (tier 0)",
            ref=f"health:{deploy_id}@{iso(float(row[0]))}",
            tier=0,
        )
    ]


# --------------------------------------------------------------------------- phases


def _first(events: Iterable[TimelineEvent], after: float | None = None) -> TimelineEvent | None:
    return next((e for e in events if after is None or _ms(e.at) >= _ms(after)), None)


def _span(
    name: PhaseName, start: TimelineEvent | None, end: TimelineEvent | None, what: str, missing: str
) -> Phase:
    if start is None:
        return Phase(name=name, state="unknown", what=missing)
    if end is None:
        return Phase(name=name, state="open", what=missing, start=start.at, start_ref=start.ref)
    seconds = seconds_between(start.at, end.at)
    return Phase(
        name=name,
        state="measured",
        what=what,
        start=start.at,
        end=end.at,
        seconds=seconds,
        start_ref=start.ref,
        end_ref=end.ref,
    )


def _label(e: TimelineEvent) -> str:
    if e.kind == "tool_call":
        return f"{e.tool} result"
    if e.kind == "action":
        return f"{e.action} {e.status}"
    if e.kind in ("tier_reached", "following"):
        return f"judge tier {e.tier}"
    if e.kind == "model":
        return "model answer"
    return e.kind.replace("_", " ")


def phases(events: Sequence[TimelineEvent]) -> list[Phase]:
    def of(*kinds: str) -> list[TimelineEvent]:
        return [e for e in events if e.kind in kinds]

    onset = _first(of("regression_onset")) or _first(of("deploy_started"))
    alert = _first(of("alert_fired"))
    acted_tier = _first(
        e for e in of("tier_reached", "following") if e.tier is not None and e.tier >= 2
    )
    candidates = [e for e in (alert, acted_tier) if e is not None]
    detected = min(candidates, key=lambda e: e.at) if candidates else None
    if onset is not None and detected is not None and _ms(detected.at) < _ms(onset.at):
        detection = Phase(
            name="detection",
            state="unknown",
            what=f"{_label(detected)} came before {_label(onset)}: the regression is older",
            start=onset.at,
            end=detected.at,
            start_ref=onset.ref,
            end_ref=detected.ref,
        )
    else:
        detection = _span(
            "detection",
            onset,
            detected,
            f"{_label(onset) if onset else ''} → {_label(detected) if detected else ''}",
            "no deploy start recorded" if onset is None else "not detected",
        )
    started = alert or detected
    conclusion = _first(
        (
            e
            for e in events
            if (e.kind == "tool_call" and e.tool in CONCLUDING_TOOLS and e.status == "ok")
            or (e.kind == "model" and e.actor != "vigil")
            or (e.kind == "tier_reached" and e.tier is not None and e.tier >= 2)
        ),
        after=None if started is None else started.at,
    )
    diagnosis = _span(
        "diagnosis",
        started,
        conclusion,
        f"{_label(started) if started else ''} → {_label(conclusion) if conclusion else ''}",
        "no alert or tier mark recorded" if started is None else "no conclusion recorded",
    )
    response = _first(
        (e for e in of("action") if e.action in RESPONSES and e.status in _DONE),
        after=None if conclusion is None else conclusion.at,
    )
    action = _span(
        "action",
        conclusion,
        response,
        f"{_label(conclusion) if conclusion else ''} → {_label(response) if response else ''}",
        "no conclusion recorded" if conclusion is None else "no rollback, pause or escalation",
    )
    recovered = _first(
        of("alert_resolved", "healthy"), after=None if response is None else response.at
    )
    recovery = _span(
        "recovery",
        response,
        recovered,
        f"{_label(response) if response else ''} → {_label(recovered) if recovered else ''}",
        "no action taken" if response is None else "no resolution recorded yet",
    )
    return [detection, diagnosis, action, recovery]


# --------------------------------------------------------------------------- building


def build_timeline(
    incident: Mapping[str, Any],
    events: Sequence[AuditEvent],
    extra: Sequence[TimelineEvent] = (),
) -> Timeline:
    """The timeline of one incident (its result JSON and audit trail), plus `extra` events.

    Deterministic: the same records give the same timeline. Events at the same moment keep
    their recorded order, with marks and extras (deploys, alerts, tiers) first."""
    keyed: list[tuple[int, int, int, TimelineEvent]] = []
    for i, e in enumerate(sorted(events, key=lambda e: e.seq)):
        for group, item in _from_audit(e):
            keyed.append((_ms(item.at), group, i, item))
    alerts = {_ms(item.at) for *_, item in keyed if item.kind == "alert_fired"}
    seen: set[tuple[str, int, str]] = set()
    for i, item in enumerate(extra):
        key = (item.kind, _ms(item.at), item.ref)
        if key in seen or (item.kind == "alert_fired" and key[1] in alerts):
            continue  # recorded twice (the store and the caller, or the triage's first note)
        seen.add(key)
        keyed.append((key[1], 0, i - len(extra), item))
    ordered = [item for *_, item in sorted(keyed, key=lambda k: k[:3])]
    return Timeline(
        incident_id=str(incident["incident_id"]),
        service=incident.get("service"),
        deploy_id=incident.get("deploy_id"),
        events=ordered,
        phases=phases(ordered),
    )


def load_timeline(store: Store, incident_id: str, extra: Sequence[TimelineEvent] = ()) -> Timeline:
    """The timeline of a stored incident; `IncidentNotFound` when there is none."""
    incident = store.incident(incident_id)
    if incident is None:
        raise IncidentNotFound(f"no incident {incident_id!r} in {store.path}")
    return build_timeline(
        incident, store.audit(incident_id), [*stored_events(store, incident), *extra]
    )
