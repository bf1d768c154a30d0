"""Facts from the incident's triage result, audit trail and timeline, each citing its record
(`audit#7`, `incident:evidence`, `deploy:<id>`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agent.audit import AuditEvent
from agent.postmortem.model import ADVICE, TARGET_S, Fact, PostmortemFacts
from agent.timeline import (
    RESPONSES,
    Phase,
    Timeline,
    TimelineEvent,
    human_duration,
    iso,
    phase_duration,
    seconds_between,
)


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else "yes" if value else "no"


def _last(events: Sequence[TimelineEvent], **match: Any) -> TimelineEvent | None:
    found = [e for e in events if all(getattr(e, k) == v for k, v in match.items())]
    return found[-1] if found else None


def _first(events: Sequence[TimelineEvent], **match: Any) -> TimelineEvent | None:
    return next((e for e in events if all(getattr(e, k) == v for k, v in match.items())), None)


def _seq(ref: str) -> int | None:
    return int(ref.removeprefix("audit#")) if ref.startswith("audit#") else None


def _slow(p: Phase, tl: Sequence[TimelineEvent]) -> list[Fact]:
    """An action item for a phase slower than its target, saying what the records show."""
    target = TARGET_S.get(p.name)
    if target is None or p.seconds is None or p.seconds <= target or p.start is None:
        return []
    refs = tuple(r for r in (p.start_ref, p.end_ref) if r)
    text = (
        f"Shorten {p.name}: it took {human_duration(p.seconds)}, more than the "
        f"{human_duration(target)} target"
    )
    waited = next(
        (
            e
            for e in tl
            if e.kind == "following" and e.tier is not None and e.tier >= 2 and p.start <= e.at
        ),
        None,
    )
    if p.name == "action" and waited is not None:
        text += (
            "; the first answer came before the judge could decide, and the judge asked for "
            f"an action only at {iso(waited.at)}: check whether it could decide from fewer "
            "samples"
        )
        refs = (*refs, waited.ref)
    else:
        text += f"; {ADVICE[p.name]}"
    return [Fact(text=text + ".", refs=refs)]


def _phase_fact(p: Phase) -> Fact:
    refs = tuple(r for r in (p.start_ref, p.end_ref) if r)
    name = p.name.capitalize()
    if p.state == "measured" and p.start is not None and p.end is not None:
        text = f"{name}: {phase_duration(p)}, {p.what}, from {iso(p.start)} to {iso(p.end)}."
    elif p.state == "open" and p.start is not None:
        text = f"{name}: open since {iso(p.start)} ({p.what})."
    else:
        text = f"{name}: unknown ({p.what})."
    return Fact(text=text, refs=refs or ("incident:result",))


class _Record:
    """One stored incident, read for facts: its result, audit events and timeline."""

    def __init__(
        self, incident: Mapping[str, Any], events: Sequence[AuditEvent], timeline: Timeline
    ) -> None:
        self.inc = incident
        self.tl = timeline.events
        self.timeline = timeline
        self.by_seq = {e.seq: e for e in events}
        self.caused: bool | None = incident.get("deploy_caused")
        self.tier: int | None = incident.get("tier")
        self.alert = _first(self.tl, kind="alert_fired")
        self.deploy = _first(self.tl, kind="deploy_started")
        judged = _last(self.tl, kind="tool_call", tool="judge_deploy")
        self.judge_refs = ((judged.ref,) if judged else ()) + ("incident:tier",)
        self.evidence = [str(x) for x in incident.get("evidence") or []]
        self.missing = [str(s) for s in incident.get("missing_sources") or []]
        self.alerting: list[str] = next(
            (
                list(e.data["incident"].get("services_affected") or [])
                for e in events
                if isinstance(e.data.get("incident"), dict)
            ),
            [],
        )

    def raw(self, e: TimelineEvent) -> AuditEvent | None:
        seq = _seq(e.ref)
        return None if seq is None else self.by_seq.get(seq)

    def summary(self) -> list[Fact]:
        inc, out = self.inc, []
        if self.alert is not None:
            where = f" in {inc['environment']}" if inc.get("environment") else ""
            out.append(
                Fact(
                    text=f"{inc.get('alertname') or 'An alert'} fired on {inc.get('service')}"
                    f"{where} at {iso(self.alert.at)}, severity "
                    f"{inc.get('severity') or 'unknown'}.",
                    refs=(self.alert.ref,),
                )
            )
        if inc.get("deploy_id"):
            text = (
                f"The suspect deploy is {inc['deploy_id']} ({inc.get('version') or 'no version'})"
            )
            refs: tuple[str, ...] = ("incident:deploy_id",)
            if self.deploy is not None:
                text += f", started at {iso(self.deploy.at)}"
                refs = (self.deploy.ref, *refs)
            out.append(Fact(text=text + ".", refs=refs))
        else:
            out.append(
                Fact(text="No deploy of the service was found.", refs=("incident:deploy_id",))
            )
        if self.tier is not None:
            name = f" ({inc['tier_name']})" if inc.get("tier_name") else ""
            out.append(
                Fact(
                    text=f"The judge's last verdict: tier {self.tier}{name}; caused by the "
                    f"deploy: {_yes_no(self.caused)}.",
                    refs=(*self.judge_refs, "incident:deploy_caused"),
                )
            )
        else:
            out.append(Fact(text="The judge gave no verdict.", refs=self.judge_refs))
        responses = [e for e in self.tl if e.kind == "action" and e.action in RESPONSES]
        for e in responses:
            out.append(
                Fact(text=f"{e.action} {e.status} by {e.actor} at {iso(e.at)}.", refs=(e.ref,))
            )
        if not any(e.status in ("executed", "no_op") for e in responses):
            out.append(
                Fact(
                    text="No rollback, pause or escalation was executed.",
                    refs=("incident:actions",),
                )
            )
        if inc.get("summary"):
            out.append(
                Fact(
                    text=f"Investigation summary ({inc.get('mode') or 'unknown'} mode): "
                    f"{inc['summary']}",
                    refs=("incident:summary",),
                )
            )
        return out

    def impact(self) -> tuple[list[Fact], bool | None]:
        out: list[Fact] = []
        recovered = next((e for e in self.tl if e.kind in ("alert_resolved", "healthy")), None)
        # A regression the deploy caused began with it; otherwise all we know is the alert.
        start = self.deploy if self.caused is True and self.deploy else self.alert or self.deploy
        if start is not None and self.tl:
            label = "the deploy started" if start is self.deploy else "the alert fired"
            end = recovered or self.tl[-1]
            took = human_duration(seconds_between(start.at, end.at))
            text = (
                f"Duration: {took}, from when {label} at {iso(start.at)} to {end.what} at "
                f"{iso(end.at)}."
                if recovered is not None
                else f"Duration: still open; {took} from when {label} at {iso(start.at)} to "
                f"the last recorded event at {iso(end.at)}."
            )
            out.append(Fact(text=text, refs=(start.ref, end.ref)))
        measured = (*self.judge_refs[:1], "incident:evidence")
        out += [Fact(text=line, refs=measured) for line in self.evidence]
        breached = [line.split(":", 1)[0] for line in self.evidence if "past its SLO" in line]
        slo = None if self.tier is None or "evidence" not in self.inc else bool(breached)
        which = f" ({', '.join(breached)})" if breached else ""
        out.append(Fact(text=f"SLO breached: {_yes_no(slo)}{which}.", refs=measured))
        if self.alerting and self.alert is not None:
            out.append(
                Fact(text=f"Services alerting: {', '.join(self.alerting)}.", refs=(self.alert.ref,))
            )
        return out, slo

    def root_cause(self) -> list[Fact]:
        deploy_id = self.inc.get("deploy_id")
        refs = (*self.judge_refs, "incident:deploy_caused")
        if self.caused is True:
            out = [
                Fact(
                    text=f"The judge found the regression caused by deploy {deploy_id}.", refs=refs
                )
            ]
        elif self.caused is False:
            out = [
                Fact(
                    text=f"The regression was not caused by deploy {deploy_id or '(none)'}: "
                    "its cause lies outside the deploy.",
                    refs=refs,
                )
            ]
        else:
            out = [
                Fact(
                    text="Whether the deploy caused the regression is unknown.",
                    refs=("incident:deploy_caused",),
                )
            ]
        suspects = [str(s) for s in self.inc.get("suspect_files") or []]
        diff = _last(self.tl, kind="tool_call", tool="fetch_diff")
        if suspects:
            text = f"Most likely change: {suspects[0]}"
            if len(suspects) > 1:
                text += f"; other changed files, most likely first: {', '.join(suspects[1:])}"
            cited = ((diff.ref,) if diff else ()) + ("incident:suspect_files",)
            out.append(Fact(text=text + ".", refs=cited))
        reasons: dict[str, str] = {}
        for e in self.tl:
            raw = self.raw(e)
            reason = "" if raw is None or e.kind != "guard" else str(raw.data.get("reason") or "")
            if reason.startswith("judge tier"):
                reasons.setdefault(reason, e.ref)
        out += [Fact(text=f"The judge's reasons: {r}", refs=(ref,)) for r, ref in reasons.items()]
        return out

    def contributing(self) -> list[Fact]:
        out: list[Fact] = []
        for e in self.tl:
            raw = self.raw(e)
            if e.kind == "guard" and e.status == "blocked":
                why = (raw.summary if raw else e.what).removeprefix("blocked by policy: ")
                out.append(Fact(text=f"{e.action} was blocked by policy: {why}", refs=(e.ref,)))
            elif e.kind == "guard" and raw is not None and raw.data.get("escalate"):
                out.append(
                    Fact(text=f"A human had to decide on {e.action}: {raw.summary}", refs=(e.ref,))
                )
            elif e.kind == "action" and e.status == "dry_run":
                out.append(Fact(text=f"{e.action} was not executed (dry run).", refs=(e.ref,)))
            elif e.kind == "model" and e.actor == "vigil":
                out.append(Fact(text=e.what, refs=(e.ref,)))
            elif e.kind == "following":
                out.append(
                    Fact(
                        text=f"At {iso(e.at)}, while following the deploy: {e.what}", refs=(e.ref,)
                    )
                )
        if self.missing:
            out.append(
                Fact(
                    text=f"Sources that could not be read: {', '.join(self.missing)}.",
                    refs=("incident:missing_sources",),
                )
            )
        return out

    def action_items(self) -> list[Fact]:
        out = [
            Fact(text=str(step), refs=("incident:next_steps",))
            for step in self.inc.get("next_steps") or []
        ]
        for p in self.timeline.phases:
            out += _slow(p, self.tl)
        recovery = self.timeline.phase("recovery")
        if recovery.state == "open" and recovery.start is not None and recovery.start_ref:
            out.append(
                Fact(
                    text="Confirm recovery: nothing shows the service healthy again since "
                    f"{iso(recovery.start)}.",
                    refs=(recovery.start_ref,),
                )
            )
        out += [
            Fact(
                text=f"Review the policy decision that blocked {e.action}, and decide whether "
                "it should have been allowed.",
                refs=(e.ref,),
            )
            for e in self.tl
            if e.kind == "guard" and e.status == "blocked"
        ]
        if self.missing:
            out.append(
                Fact(
                    text=f"Restore access to {', '.join(self.missing)} so the next "
                    "investigation sees it.",
                    refs=("incident:missing_sources",),
                )
            )
        return out


def _merged(facts: list[Fact]) -> list[Fact]:
    """One fact per text, citing every record it was found in (a rollback refused twice)."""
    refs: dict[str, tuple[str, ...]] = {}
    for f in facts:
        refs[f.text] = tuple(dict.fromkeys((*refs.get(f.text, ()), *f.refs)))
    return [Fact(text=text, refs=cited) for text, cited in refs.items()]


def gather_facts(
    incident: Mapping[str, Any], events: Sequence[AuditEvent], timeline: Timeline
) -> PostmortemFacts:
    """The facts of one incident, each with the records it comes from."""
    r = _Record(incident, events, timeline)
    impact, slo = r.impact()
    title = f"{incident.get('alertname') or 'Incident'} on {incident.get('service')}"
    if r.caused is True and incident.get("deploy_id"):
        title += f" after deploy {incident['deploy_id']}"
    return PostmortemFacts(
        incident_id=str(incident["incident_id"]),
        title=title,
        service=incident.get("service"),
        environment=incident.get("environment"),
        deploy_id=incident.get("deploy_id"),
        slo_breached=slo,
        summary=r.summary(),
        impact=impact,
        root_cause=r.root_cause(),
        contributing=_merged(r.contributing()),
        response=[_phase_fact(p) for p in timeline.phases],
        action_items=_merged(r.action_items()),
        timeline=timeline,
    )
