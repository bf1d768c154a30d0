"""`vigil runbook ...`: list and validate the runbooks, and write a new one for a service.

`generate` builds a runbook from facts: the service's configuration (signals and their SLOs,
cohorts, rollout, escalation, guard policy) and its incidents in the store (the alerts that
fired, what the judge found, the suspect files, the actions taken). Without a model (no key,
or `--offline`) code renders the facts; with one, the model rewrites that rendering from the
same facts, and its answer is kept only if it validates as a runbook, claims nothing the
plain one does not, and cites no number, time or file the facts do not hold.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agent.errors import VigilError
from agent.guard import GuardPolicy
from agent.redact import redact
from agent.runbooks import (
    DEFAULT_DIR,
    READ_TOOLS,
    Runbook,
    RunbookError,
    RunbookLibrary,
    parse_runbook,
    parse_runbook_text,
    runbook_text,
)

if TYPE_CHECKING:
    import anthropic

    from agent.config import ServiceConfig
    from agent.llm import ModelSettings
    from agent.store import Store

runbook_app = typer.Typer(
    help="Runbooks the agent follows: list, validate, generate.", no_args_is_help=True
)
_out = Console()
_err = Console(stderr=True)

HISTORY_LIMIT = 20  # incidents of the service read from the store, newest first


# --------------------------------------------------------------------------- facts


class SignalFact(BaseModel):
    name: str
    kind: str
    unit: str
    bad_direction: str
    slo: float | None
    critical: bool
    events: str | None


class IncidentFact(BaseModel):
    id: str
    at: str | None
    alertname: str | None
    severity: str | None
    deploy_id: str | None
    version: str | None
    tier: int | None
    tier_name: str | None
    deploy_caused: bool | None
    suspect_files: list[str]
    actions: list[str]  # "rollback: executed"
    escalated: bool
    summary: str


class ServiceFacts(BaseModel):
    """Everything a runbook for one service may say, and nothing more."""

    service: str
    environment: str | None
    step: str
    baseline: str
    watch: str
    cohorts: dict[str, str] | None
    rollout: dict[str, str]
    escalation: str
    logs: str | None
    repository: str | None
    min_confidence: float
    pause_confidence: float
    escalate_severities: list[str]
    max_services_affected: int
    signals: list[SignalFact]
    incidents: list[IncidentFact]

    def alerts(self) -> list[str]:
        """Alert names seen for the service, most frequent first."""
        seen = Counter(i.alertname for i in self.incidents if i.alertname)
        return [name for name, _ in sorted(seen.items(), key=lambda kv: (-kv[1], kv[0]))]

    def suspects(self) -> list[tuple[str, int]]:
        """Files named as suspects (the first three of each incident), most frequent first."""
        seen = Counter(f for i in self.incidents for f in i.suspect_files[:3])
        return sorted(seen.items(), key=lambda kv: -kv[1])  # ties: newest, best ranked first


def _incident_fact(result: dict[str, Any]) -> IncidentFact:
    actions = [
        f"{a.get('name')}: {a.get('status')}" for a in result.get("actions") or [] if a.get("name")
    ]
    tier = result.get("tier")
    return IncidentFact(
        id=str(result.get("incident_id")),
        at=None if result.get("at") is None else str(result["at"]),
        alertname=result.get("alertname"),
        severity=result.get("severity"),
        deploy_id=result.get("deploy_id"),
        version=result.get("version"),
        tier=None if tier is None else int(tier),
        tier_name=result.get("tier_name"),
        deploy_caused=result.get("deploy_caused"),
        suspect_files=[redact(str(f)) for f in (result.get("suspect_files") or [])[:5]],
        actions=actions,
        escalated=bool(result.get("escalated")),
        summary=redact(str(result.get("summary") or ""))[:400],
    )


def service_history(store: Store, service: str, limit: int = HISTORY_LIMIT) -> list[dict[str, Any]]:
    """The service's stored investigations (triage results), newest first."""
    found = []
    for row in store.incidents(service)[:limit]:
        result = store.incident(str(row["id"]))
        if result is not None:
            found.append(result)
    return found


def gather_facts(
    service: str, svc: ServiceConfig, history: list[dict[str, Any]] | None = None
) -> ServiceFacts:
    policy = svc.policy()
    rollout: dict[str, str] = {"kind": svc.rollout.kind}
    if svc.rollout.namespace:
        rollout["namespace"] = svc.rollout.namespace
    if svc.rollout.kind in ("argo", "deployment"):
        rollout["name"] = svc.rollout.name or service
    repository = None
    if svc.repository is not None:
        repository = svc.repository.github or "a local git clone"
    return ServiceFacts(
        service=service,
        environment=svc.environment,
        step=svc.step,
        baseline=svc.baseline,
        watch=svc.watch,
        cohorts=None if svc.cohorts is None else svc.cohorts.model_dump(),
        rollout=rollout,
        escalation=svc.escalation.kind,
        logs=None if svc.logs is None else svc.logs.source,
        repository=repository,
        min_confidence=policy.min_confidence,
        pause_confidence=policy.pause_confidence,
        escalate_severities=sorted(policy.escalate_severities),
        max_services_affected=policy.max_services_affected,
        signals=[
            SignalFact(
                name=s.name,
                kind=s.kind.value,
                unit=s.unit.value,
                bad_direction=str(s.bad_direction),
                slo=s.slo,
                critical=s.critical,
                events=s.events,
            )
            for s in svc.signals
        ],
        incidents=[_incident_fact(r) for r in history or []],
    )


# --------------------------------------------------------------------------- plain rendering


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def _rollout_how(facts: ServiceFacts) -> str:
    r = facts.rollout
    if r["kind"] == "argo":
        return f"Argo Rollout {r['name']} in namespace {r['namespace']}."
    if r["kind"] == "deployment":
        return f"Kubernetes Deployment {r['name']} in namespace {r['namespace']}."
    if r["kind"] == "webhook":
        return "The deploy system's signed webhook."
    return "No rollout system is configured: the action is only recorded."


def _worse(s: SignalFact) -> str:
    return "above" if s.bad_direction == "up" else "below"


def _steps(facts: ServiceFacts) -> list[dict[str, Any]]:
    signals = sorted((s for s in facts.signals if s.slo is not None), key=lambda s: not s.critical)
    steps: list[dict[str, Any]] = [
        {
            "id": "find-deploy",
            "check": f"Which deploy of {facts.service} went out before the alert, and when?",
            "tool": "list_deploys",
            "arguments": {"hours": 6},
            "outcomes": [
                {
                    "when": {"deploys": {"empty": True}},
                    "means": "No deploy in the last 6 hours: not a deploy regression.",
                    "then": "escalate",
                },
                {"means": "The newest deploy is the suspect; judge it next."},
            ],
        },
        {
            "id": "judge",
            "check": "Which signals regressed since the deploy, and did the deploy cause it?",
            "tool": "judge_deploy",
            "arguments": {"deploy_id": "{deploy_id}"},
            "outcomes": [
                {
                    "when": {"tier": 3, "deploy_caused": True},
                    "means": "A critical signal is past its SLO because of the deploy.",
                    "then": "roll-back",
                },
                {
                    "when": {"tier": 2, "deploy_caused": True},
                    "means": "A material regression caused by the deploy.",
                    "then": "pause",
                },
                {
                    "when": {"deploy_caused": False},
                    "means": "The regression is not caused by the deploy.",
                    "then": "escalate",
                },
                {
                    "when": {"status": "insufficient_evidence"},
                    "means": "Too little data since the deploy to judge it.",
                    "then": "notify",
                },
                {"means": "No deploy-caused regression now (tier 0 or 1)."},
            ],
        },
    ]
    for s in signals[:4]:
        steps.append(
            {
                "id": f"signal-{_slug(s.name)}",
                "check": f"Is {s.name} ({s.kind}, {s.unit}) {_worse(s)} its SLO of {s.slo:g}?",
                "tool": "query_metrics",
                "arguments": {"query": s.name, "minutes": 60},
                "outcomes": [
                    {
                        "means": f"{s.name} {_worse(s)} {s.slo:g} since the deploy's start "
                        "points at the deploy; before it, it does not."
                    }
                ],
            }
        )
    if facts.logs is not None:
        steps.append(
            {
                "id": "new-errors",
                "check": "Which error signatures are new, or grew, since the deploy?",
                "tool": "read_logs",
                "arguments": {"deploy_id": "{deploy_id}"},
                "outcomes": [
                    {
                        "when": {"new": {"min": 1}},
                        "means": "New error signatures came with the deploy.",
                        "then": "suspect-change" if facts.repository else None,
                    },
                    {"means": "No new error signature since the deploy."},
                ],
            }
        )
    if facts.repository is not None:
        before = [path for path, _ in facts.suspects()[:5]]
        check = "Which changed file matches the new errors and the regressed signals?"
        if before:
            check += " Files suspected before: " + ", ".join(before) + "."
        steps.append(
            {
                "id": "suspect-change",
                "check": check,
                "tool": "fetch_diff",
                "arguments": {"deploy_id": "{deploy_id}", **({"terms": before} if before else {})},
                "outcomes": [
                    {
                        "when": {"suspects": {"empty": True}},
                        "means": "The change could not be tied to the regression.",
                    },
                    {"means": "The first suspect is the most likely change."},
                ],
            }
        )
    return steps


def _remediation(facts: ServiceFacts) -> list[dict[str, Any]]:
    critical = [s.name for s in facts.signals if s.critical and s.slo is not None]
    how = _rollout_how(facts)
    options: list[dict[str, Any]] = []
    if critical:
        options.append(
            {
                "id": "roll-back",
                "action": "rollback",
                "when": "The judge says tier 3 and deploy-caused: a critical signal ("
                + ", ".join(critical)
                + ") past its SLO.",
                "requires": {"min_tier": 3, "deploy_caused": True},
                "how": how,
            }
        )
    options += [
        {
            "id": "pause",
            "action": "pause_rollout",
            "when": "The judge says tier 2 and deploy-caused.",
            "requires": {"min_tier": 2, "deploy_caused": True},
            "how": how,
        },
        {
            "id": "notify",
            "action": "notify",
            "when": "The judge cannot decide yet, or sees a small regression (tier 1).",
        },
        {
            "id": "escalate",
            "action": "escalate",
            "when": "Not deploy-caused, severity "
            + "/".join(s.upper() for s in facts.escalate_severities)
            + ", or an action was blocked by policy.",
            "how": f"Escalation goes through {facts.escalation}.",
        },
        {
            "id": "fix-forward",
            "action": "manual",
            "when": "The owners fix the suspect change, or resume a paused rollout.",
            "requires": {"by": "human"},
        },
    ]
    return options


def _triggers(facts: ServiceFacts) -> list[dict[str, Any]]:
    return [
        {"condition": "Severity " + ", ".join(s.upper() for s in facts.escalate_severities)},
        {
            "condition": f"More than {facts.max_services_affected} service(s) alerting at once.",
        },
        {"condition": "An irreversible migration in the change."},
        {"condition": "The judge finds the regression is not caused by the deploy."},
        {
            "condition": f"Confidence below {facts.min_confidence:g} that the deploy is the cause.",
            "severity": "warning",
        },
    ]


def _body(facts: ServiceFacts) -> str:
    lines = [f"## {facts.service} at a glance"]
    where = f" in {facts.environment}" if facts.environment else ""
    lines.append(
        f"{facts.service}{where} is judged every {facts.step} for {facts.watch} after each "
        f"deploy, against the {facts.baseline} before it. Rollout: {_rollout_how(facts)} "
        f"Escalation: {facts.escalation}."
    )
    if facts.cohorts:
        c = facts.cohorts
        lines.append(
            f"Canary analysis: cohorts by label `{c['label']}` ({c['canary']} against "
            f"{c['baseline']})."
        )
    lines += [
        "",
        "| signal | kind | unit | worse when | SLO | critical |",
        "|---|---|---|---|---|---|",
    ]
    for s in facts.signals:
        slo = "—" if s.slo is None else f"{s.slo:g}"
        lines.append(
            f"| {s.name} | {s.kind} | {s.unit} | {s.bad_direction} | {slo} | "
            f"{'yes' if s.critical else 'no'} |"
        )
    lines += ["", "## History"]
    if not facts.incidents:
        lines.append(f"No incident of {facts.service} in Vigil's store yet.")
        return "\n".join(lines)
    lines.append(
        f"{len(facts.incidents)} incident(s) of {facts.service} in the store, newest first:"
    )
    for i in facts.incidents:
        caused = {True: "deploy-caused", False: "not deploy-caused", None: "cause unknown"}
        tier = "no verdict" if i.tier is None else f"tier {i.tier} ({i.tier_name})"
        parts = [f"- {i.at or 'unknown time'} {i.alertname or 'alert'}: {tier}, "]
        parts.append(caused[i.deploy_caused])
        if i.suspect_files:
            parts.append(f"; suspect {i.suspect_files[0]}")
        if i.actions:
            parts.append("; " + ", ".join(i.actions))
        lines.append("".join(parts) + ".")
    suspects = facts.suspects()
    if suspects:
        lines += ["", "Files most often suspected:"]
        lines += [f"- {path} ({n})" for path, n in suspects[:5]]
    return "\n".join(lines)


def plain_runbook(facts: ServiceFacts, policy: GuardPolicy | None = None) -> Runbook:
    """The runbook code writes from the facts (deterministic: same facts, same text)."""
    kinds = list(dict.fromkeys(s.kind for s in facts.signals))
    listed = ", ".join(
        s.name + ("" if s.slo is None else f" (SLO {s.slo:g})") for s in facts.signals
    )
    where = f" in {facts.environment}" if facts.environment else ""
    preconditions = [
        f"Vigil reads the {len(facts.signals)} signals of {facts.service} from Prometheus.",
    ]
    if facts.logs is None:
        preconditions.append("No log source is configured: there are no log steps.")
    if facts.repository is None:
        preconditions.append("No repository is configured: the change cannot be read.")
    data = {
        "name": f"service-{_slug(facts.service)}",
        "title": f"Deploy regressions of {facts.service}",
        "service": facts.service,
        "trigger": f"An alert on {facts.service}{where}, or a regression of its signals "
        f"({listed}), within {facts.watch} of a deploy.",
        "alerts": facts.alerts(),
        "signals": kinds,
        "allows_pause": False,  # a generated runbook never widens what the guard allows
        "preconditions": preconditions,
        "diagnostic_steps": _steps(facts),
        "remediation": _remediation(facts),
        "post_actions": [
            {
                "what": "Judge the deploy again: the signals must return to baseline.",
                "tool": "judge_deploy",
            },
            {
                "what": f"Tell the owners of {facts.service} what was done and why.",
                "tool": "notify",
            },
            {"what": "Fix the suspect change.", "by": "human"},
        ],
        "escalation_triggers": _triggers(facts),
        "body": _body(facts),
    }
    return Runbook.model_validate(data, context={"policy": policy or GuardPolicy()})


# --------------------------------------------------------------------------- the model


class GeneratedRunbook(BaseModel):
    mode: Literal["llm", "deterministic"]
    text: str
    runbook: Runbook
    fallback_reason: str | None = None


class RunbookRejected(VigilError):
    """The model's runbook cannot be used; the message says why."""


_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
)
# A number, also when a unit follows ("4h"); not inside a name ("p95", "v2").
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\d])")
_NOT_NUMBERS = re.compile(r"(?mi)^\s*\d+\.\s|\b[45]xx\b")  # list items, status classes
_PATH = re.compile(r"(?<![\w/.-])(?:[\w.-]+/)+[\w.-]+\.[A-Za-z0-9]{1,8}\b")


def _numbers(text: str) -> set[float]:
    return {float(n) for n in _NUMBER.findall(_NOT_NUMBERS.sub(" ", _TIMESTAMP.sub(" ", text)))}


def _ungrounded(text: str, facts_text: str) -> str | None:
    """The first time, file or number in `text` that the facts do not hold, if any."""
    for stamp in _TIMESTAMP.findall(text):
        if stamp not in facts_text:
            return f"time {stamp} is not in the facts"
    for path in _PATH.findall(text):
        if path not in facts_text:
            return f"file {path} is not in the facts"
    allowed = _numbers(facts_text) | {0.0, 1.0, 2.0, 3.0}
    for number in sorted(_numbers(text) - allowed):
        return f"number {number:g} is not in the facts"
    return None


def _document(answer: str) -> str:
    """The runbook in the model's answer: fences and chatter around it removed."""
    fenced = re.search(r"```(?:markdown|md|yaml)?\n(.*?)```", answer, re.DOTALL)
    text = fenced.group(1) if fenced else answer
    start = re.search(r"(?m)^---[ \t]*$", text)
    return text[start.start() :].strip() + "\n" if start else text


def check_model_runbook(
    answer: str, plain: Runbook, facts: ServiceFacts, policy: GuardPolicy
) -> tuple[str, Runbook]:
    """The model's runbook if it is usable; else RunbookRejected saying why."""
    text = _document(answer)
    try:
        book = parse_runbook_text(text, "<model answer>", policy=policy)
    except RunbookError as exc:
        raise RunbookRejected(f"it does not validate: {exc}") from None
    if (book.name, book.service) != (plain.name, plain.service):
        raise RunbookRejected(f"it names {book.name!r} for {book.service!r}, not {plain.name!r}")
    if book.allows_pause and not plain.allows_pause:
        raise RunbookRejected("it sets allows_pause, which the plain runbook does not")
    if extra := sorted(set(book.alerts) - set(plain.alerts)):
        raise RunbookRejected(f"alert {extra[0]} is not in the service's history")
    if extra := sorted({k.value for k in book.signals} - {k.value for k in plain.signals}):
        raise RunbookRejected(f"signal kind {extra[0]} is not configured for the service")
    names = {s.name for s in facts.signals}
    for step in book.diagnostic_steps:
        query = step.arguments.get("query")
        if step.tool == "query_metrics" and not (query in names or str(query).startswith("{")):
            raise RunbookRejected(f"step {step.id} queries {query!r}, not a configured signal")
    facts_text = json.dumps(facts.model_dump(mode="json")) + "\n" + runbook_text(plain)
    if (why := _ungrounded(text, facts_text)) is not None:
        raise RunbookRejected(why)
    return text, book


def _history_for_model(facts: ServiceFacts) -> list[dict[str, Any]]:
    return [i.model_dump(mode="json") for i in facts.incidents]


def _ask(client: anthropic.Anthropic, settings: ModelSettings, system: str, user: str) -> str:
    response = client.messages.create(
        model=settings.model,
        max_tokens=max(settings.max_output_tokens, 4096),
        system=system,
        messages=[{"role": "user", "content": user}],
        timeout=settings.request_timeout_s,
    )
    return "".join(b.text for b in response.content if b.type == "text")


def generate_runbook(
    facts: ServiceFacts,
    policy: GuardPolicy | None = None,
    *,
    client: anthropic.Anthropic | None = None,
    settings: ModelSettings | None = None,
    offline_reason: str = "no model configured",
    organisation: str = "this organisation",
) -> GeneratedRunbook:
    """A runbook for the facts' service: the model's when it is usable, else the plain one."""
    policy = policy or GuardPolicy()
    plain = plain_runbook(facts, policy)
    plain_text = runbook_text(plain)
    if client is None:
        return GeneratedRunbook(
            mode="deterministic", text=plain_text, runbook=plain, fallback_reason=offline_reason
        )
    import anthropic

    from agent.llm import ModelSettings
    from agent.prompts import render

    settings = settings or ModelSettings()
    config = facts.model_dump(mode="json", exclude={"incidents"})
    values: dict[str, Any] = {
        "organisation": organisation,
        "service": facts.service,
        "environment": facts.environment,
        "tools": list(READ_TOOLS),
        "pause_confidence": policy.pause_confidence,
        "min_confidence": policy.min_confidence,
        "config": config,
        "history": _history_for_model(facts),
        "skeleton": plain_text,
    }
    system = render("runbook_generate.md.j2", part="system", **values)
    user = render("runbook_generate.md.j2", part="user", **values)
    try:
        answer = _ask(client, settings, system, user)
        text, book = check_model_runbook(answer, plain, facts, policy)
    except anthropic.APIError as exc:
        why = f"the model is unavailable ({type(exc).__name__}: {exc})"
    except RunbookRejected as exc:
        why = f"the model's runbook was rejected: {exc}"
    else:
        return GeneratedRunbook(mode="llm", text=text, runbook=book)
    return GeneratedRunbook(
        mode="deterministic",
        text=plain_text,
        runbook=plain,
        fallback_reason=f"{why}; wrote the plain runbook from the same facts",
    )


def model_client(*, offline: bool) -> tuple[anthropic.Anthropic | None, str]:
    """The official SDK's client when a key is set (and not --offline); else why not."""
    import os

    if offline:
        return None, "offline requested"
    if not os.environ.get("ANTHROPIC_API_KEY") and not os.environ.get("ANTHROPIC_AUTH_TOKEN"):
        return None, "no ANTHROPIC_API_KEY set"
    import anthropic

    from agent.llm import ModelSettings

    settings = ModelSettings()
    # The SDK retries 429/5xx/overloaded itself, with backoff.
    return anthropic.Anthropic(max_retries=2, timeout=settings.request_timeout_s), ""


# --------------------------------------------------------------------------- commands


def _fail(error: VigilError) -> typer.Exit:
    _err.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _open_history(db: Path | None, service: str) -> list[dict[str, Any]]:
    from agent.store import Store, default_path

    path = db or default_path()
    if not path.is_file():
        if db is not None:
            raise VigilError(f"{db}: no such store (run `vigil triage --db {db}` first)")
        return []
    return service_history(Store(path), service)


@runbook_app.command("generate")
def generate_cmd(
    service: Annotated[str, typer.Argument(help="A service of vigil.yaml.")],
    config: Annotated[
        Path | None, typer.Option(help="vigil.yaml (default $VIGIL_CONFIG or ./vigil.yaml).")
    ] = None,
    db: Annotated[
        Path | None,
        typer.Option(help="The store with the service's incidents (default $VIGIL_DB)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the runbook here (default: standard output).")
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Render the facts without a model.")
    ] = False,
) -> None:
    """Write a runbook for SERVICE from its configuration and its incident history.

    Written by the model when ANTHROPIC_API_KEY is set (and checked against the facts),
    rendered by code otherwise."""
    from agent.config import find_config, load_config

    try:
        cfg = load_config(find_config(config))
        svc = cfg.service(service)
        facts = gather_facts(service, svc, _open_history(db, service))
        client, why = model_client(offline=offline)
        made = generate_runbook(facts, svc.policy(), client=client, offline_reason=why)
    except VigilError as exc:
        raise _fail(exc) from None
    if out is not None:
        out.write_text(made.text, encoding="utf-8")
    else:
        print(made.text, end="")
    how = "written by the model" if made.mode == "llm" else f"plain ({made.fallback_reason})"
    where = f" to {out}" if out is not None else ""
    _err.print(
        f"runbook {made.runbook.name}{escape(where)}: {len(facts.incidents)} incident(s), "
        f"{len(made.runbook.diagnostic_steps)} steps; {escape(how)}",
        highlight=False,
        soft_wrap=True,
    )


def _files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        found += sorted(path.glob("*.md")) if path.is_dir() else [path]
    return found


@runbook_app.command("validate")
def validate_cmd(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Runbook files or folders (default: the runbooks folder)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="vigil.yaml: check a service's runbook against its guard policy."),
    ] = None,
) -> None:
    """Check runbooks: format, fields, tool arguments, and that none claims more authority
    than the policy guard allows. Every problem names the file, line and field."""
    from agent.config import load_config

    try:
        cfg = None if config is None else load_config(config)
    except VigilError as exc:
        raise _fail(exc) from None
    folders = {p.resolve() for p in paths or [DEFAULT_DIR] if p.is_dir()}
    failed = 0
    names: dict[str, Path] = {}
    files = _files(paths or [DEFAULT_DIR])
    if not files:
        raise _fail(VigilError("no runbooks found (*.md)"))
    for path in files:
        try:
            book = parse_runbook(path)
            if book.service is not None and cfg is not None:
                book = parse_runbook(path, policy=cfg.service(book.service).policy())
            if path.parent.resolve() in folders and book.name != path.stem:
                raise RunbookError(path, f"name {book.name!r} must be the file's name", line=2)
            if book.name in names:
                raise RunbookError(path, f"name {book.name!r} is also used by {names[book.name]}")
            names[book.name] = path
        except VigilError as exc:
            failed += 1
            _err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            continue
        _out.print(
            f"ok  {escape(str(path))}: {book.name} ({len(book.diagnostic_steps)} steps, "
            f"{len(book.remediation)} options)",
            highlight=False,
            soft_wrap=True,
        )
    if failed:
        raise typer.Exit(code=2)


@runbook_app.command("list")
def list_cmd(
    folder: Annotated[
        Path, typer.Option("--dir", help="The runbooks folder (default: the bundled one).")
    ] = DEFAULT_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False,
) -> None:
    """List the runbooks: the alerts and signal kinds each answers, and its steps."""
    try:
        library = RunbookLibrary.load(folder)
    except VigilError as exc:
        raise _fail(exc) from None
    books = list(library.runbooks.values())
    if as_json:
        rows = [
            {
                "name": b.name,
                "title": b.title,
                "service": b.service,
                "alerts": list(b.alerts),
                "signals": [k.value for k in b.signals],
                "allows_pause": b.allows_pause,
                "steps": [s.id for s in b.diagnostic_steps],
                "remediation": [f"{r.id}: {r.action}" for r in b.remediation],
            }
            for b in books
        ]
        print(json.dumps(rows, indent=2))
        return
    table = Table("name", "title", "alerts", "signals", "pause", "steps")
    for b in books:
        table.add_row(
            b.name + (f" ({b.service})" if b.service else ""),
            b.title,
            ", ".join(b.alerts) or "—",
            ", ".join(k.value for k in b.signals) or "—",
            "yes" if b.allows_pause else "no",
            str(len(b.diagnostic_steps)),
        )
    _out.print(table)
