"""A postmortem draft for a stored incident, built from the facts Vigil recorded.

`gather_facts` turns the incident's triage result, audit trail and timeline into facts, each
citing the record it comes from (`audit#7`, `incident:evidence`, `deploy:<id>`). The draft is
those facts rendered as Markdown; with a model client, the model writes the prose from the
same facts instead, and its draft is kept only if every time, number, identifier, file name and
reference in it can be found in the facts. Otherwise the rendered draft is used, saying why.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from agent.audit import AuditEvent
from agent.prompts import render
from agent.redact import redact
from agent.store import Store
from agent.timeline import (
    RESPONSES,
    Phase,
    Timeline,
    TimelineEvent,
    human_duration,
    iso,
    load_timeline,
    phase_duration,
    seconds_between,
)

if TYPE_CHECKING:
    from agent.llm import ModelSettings

SECTIONS = (
    "Summary",
    "Impact",
    "Timeline",
    "Root cause and contributing factors",
    "Detection and response",
    "Action items",
)
# A postmortem is longer than a triage answer: at least this many output tokens.
MIN_OUTPUT_TOKENS = 4096
# A phase slower than this is an action item.
TARGET_S = {"detection": 300.0, "diagnosis": 120.0, "action": 120.0}
_ADVICE = {
    "detection": "alert on the judge's tier while the deploy rolls out instead of waiting for "
    "a fixed threshold to fire",
    "diagnosis": "start the investigation as soon as the alert arrives",
    "action": "look at what held the action back after the conclusion",
}


class Fact(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str
    refs: tuple[str, ...]

    def markdown(self) -> str:
        return f"{self.text} " + " ".join(f"[{r}]" for r in self.refs)


class PostmortemFacts(BaseModel):
    incident_id: str
    title: str
    service: str | None
    environment: str | None
    deploy_id: str | None
    slo_breached: bool | None
    summary: list[Fact]
    impact: list[Fact]
    root_cause: list[Fact]
    contributing: list[Fact]
    response: list[Fact]
    action_items: list[Fact]
    timeline: Timeline

    def refs(self) -> list[str]:
        """Every reference a document may cite."""
        found = {e.ref for e in self.timeline.events}
        for section in self._sections().values():
            for fact in section:
                found.update(fact.refs)
        return sorted(found)

    def _sections(self) -> dict[str, list[Fact]]:
        return {
            "summary": self.summary,
            "impact": self.impact,
            "root_cause": self.root_cause,
            "contributing_factors": self.contributing,
            "detection_and_response": self.response,
            "action_items": self.action_items,
        }

    def for_model(self) -> dict[str, Any]:
        """The facts as the model sees them: times in UTC, every fact with its references."""
        return {
            "incident_id": self.incident_id,
            "title": self.title,
            "service": self.service,
            "environment": self.environment,
            "deploy_id": self.deploy_id,
            "slo_breached": self.slo_breached,
            **{
                name: [{"fact": f.text, "refs": list(f.refs)} for f in facts]
                for name, facts in self._sections().items()
            },
            "timeline": [
                {"time": iso(e.at), "kind": e.kind, "actor": e.actor, "what": e.what, "ref": e.ref}
                for e in self.timeline.events
            ],
            "phases": [
                {
                    "phase": p.name,
                    "state": p.state,
                    "from": None if p.start is None else iso(p.start),
                    "to": None if p.end is None else iso(p.end),
                    "seconds": p.seconds,
                    "duration": phase_duration(p),
                    "what": p.what,
                    "refs": [r for r in (p.start_ref, p.end_ref) if r],
                }
                for p in self.timeline.phases
            ],
        }


class Postmortem(BaseModel):
    incident_id: str
    mode: Literal["deterministic", "llm"]
    note: str  # how it was written, and why not by the model
    markdown: str
    facts: PostmortemFacts
    model: str | None = None
    rejected: list[str] = []  # what was wrong with the model's draft, when it was rejected


# --------------------------------------------------------------------------- facts


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
        text += f"; {_ADVICE[p.name]}"
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


# --------------------------------------------------------------------------- the draft


def _bullets(facts: Sequence[Fact], *, checklist: bool = False, empty: str) -> list[str]:
    if not facts:
        return [empty]
    mark = "- [ ] " if checklist else "- "
    return [mark + f.markdown() for f in facts]


def render_draft(facts: PostmortemFacts, note: str) -> str:
    """The deterministic draft: the facts as Markdown, every line with its references."""
    lines = [
        f"# Postmortem (draft): {facts.title}",
        "",
        f"_Incident `{facts.incident_id}`. {note} References: `audit#N` is event N of the "
        "incident's audit trail, `incident:<field>` a field of the stored triage result, "
        "`deploy:<id>` the deploy record._",
        "",
        "## Summary",
        "",
        *_bullets(facts.summary, empty="Nothing recorded."),
        "",
        "## Impact",
        "",
        *_bullets(facts.impact, empty="Nothing recorded."),
        "",
        "## Timeline",
        "",
        *facts.timeline.events_table(),
        "",
        "## Root cause and contributing factors",
        "",
        *_bullets(facts.root_cause, empty="Unknown."),
        "",
        "Contributing factors:",
        "",
        *_bullets(facts.contributing, empty="None recorded."),
        "",
        "## Detection and response",
        "",
        *_bullets(facts.response, empty="Nothing recorded."),
        "",
        *facts.timeline.phases_table(),
        "",
        "## Action items",
        "",
        *_bullets(facts.action_items, checklist=True, empty="None."),
    ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- checking


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


# --------------------------------------------------------------------------- writing


def facts_for(store: Store, incident_id: str) -> PostmortemFacts:
    """The facts of a stored incident (`IncidentNotFound` when there is none)."""
    timeline = load_timeline(store, incident_id)
    incident = store.incident(incident_id) or {}
    return gather_facts(incident, store.audit(incident_id), timeline)


def deterministic(facts: PostmortemFacts, why: str) -> Postmortem:
    note = f"Written from the recorded facts without a model: {why}."
    return Postmortem(
        incident_id=facts.incident_id,
        mode="deterministic",
        note=note,
        markdown=redact(render_draft(facts, note)),
        facts=facts,
    )


def write_postmortem(
    facts: PostmortemFacts,
    *,
    client: Any | None = None,
    settings: ModelSettings | None = None,
    organisation: str = "this organisation",
    offline_reason: str = "no model configured",
) -> Postmortem:
    """The postmortem: by the model through `client` (an `anthropic.Anthropic`) when given and
    its draft checks out against the facts, else the deterministic draft with the reason."""
    if client is None:
        return deterministic(facts, offline_reason)
    import anthropic

    from agent.llm import ModelSettings

    s = settings or ModelSettings()
    model = s.model

    facts_text = redact(json.dumps(facts.for_model(), indent=2, ensure_ascii=False))
    refs = facts.refs()
    system = render("writer_system.md.j2", organisation=organisation)
    user = render(
        "postmortem.md.j2",
        incident_id=facts.incident_id,
        title=facts.title,
        facts=facts_text,
        refs=refs,
        sections=list(SECTIONS),
    )
    try:
        response = client.messages.create(
            model=model,
            max_tokens=max(s.max_output_tokens, MIN_OUTPUT_TOKENS),
            system=system,
            messages=[{"role": "user", "content": user}],
            timeout=s.request_timeout_s,
        )
    except anthropic.APIError as exc:
        return deterministic(facts, f"the model was unavailable ({type(exc).__name__}: {exc})")
    draft = "".join(b.text for b in response.content if getattr(b, "type", "") == "text")
    allowed = facts_text + "\n" + redact(render_draft(facts, ""))
    problems = check_draft(draft, allowed, refs)
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        shown = "; ".join(problems[:5]) + more
        fallback = deterministic(facts, f"the model's draft was rejected: {shown}")
        return fallback.model_copy(update={"rejected": problems, "model": model})
    note = (
        f"Written by {model} from the recorded facts; every time, number, identifier, file name "
        "and reference in it was checked against them."
    )
    return Postmortem(
        incident_id=facts.incident_id,
        mode="llm",
        note=note,
        markdown=redact(draft.strip()) + f"\n\n---\n\n_{note}_\n",
        facts=facts,
        model=model,
    )
