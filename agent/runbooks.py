"""Runbooks as data: Markdown with a YAML front matter the agent, the planner and the guard read.

All structure lives in the front matter and is validated here: what the runbook is for
(`trigger`, `alerts`, `signals`), `diagnostic_steps` (each one a call of one of the agent's
read tools, with arguments and what each result means), `remediation` options with the
authority each one needs, `post_actions` and `escalation_triggers`. The Markdown body is for
people. A runbook can never grant more than the policy guard allows: an option that claims a
rollback below judge tier 3, or a pause the guard would refuse, does not validate.

Step arguments may name what is known only at the moment of the investigation:
`"{deploy_id}"` (the suspect deploy; left out when unknown, so the tool takes the latest one)
and `"{signal:KIND}"` (the service's signal of that kind, most regressed first; the step is
skipped when the service has none). `plan_steps` resolves them into tool calls.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from agent.bundle import yamlpos
from agent.bundle.model import SignalKind
from agent.errors import InputError
from agent.guard import GuardPolicy

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "runbooks"

# The agent's read-only tools: a diagnostic step is a call of one of them.
ReadTool = Literal["judge_deploy", "read_logs", "fetch_diff", "query_metrics", "list_deploys"]
READ_TOOLS: tuple[str, ...] = get_args(ReadTool)
RemedyAction = Literal["pause_rollout", "rollback", "escalate", "notify", "manual"]
Scalar = str | int | float | bool | None

_NAME = r"^[a-z0-9][a-z0-9-]*$"
_PLACEHOLDER = re.compile(r"^\{(deploy_id|signal:([a-z_]+))\}$")
_KINDS = frozenset(k.value for k in SignalKind)
_FRONT_MATTER = re.compile(r"---\n(.*?)^---[ \t]*$\n?(.*)", re.DOTALL | re.MULTILINE)


class RunbookError(InputError):
    """A runbook could not be read: the message names the file, line and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Compare(_Strict):
    """A test on one field of a tool's result beyond equality (all given parts must hold)."""

    min: int | float | None = None
    max: int | float | None = None
    in_: tuple[Scalar, ...] | None = Field(None, alias="in")
    not_: Scalar = Field(None, alias="not")
    empty: bool | None = None

    def holds(self, value: Any) -> bool:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if self.min is not None and not (number and value >= self.min):
            return False
        if self.max is not None and not (number and value <= self.max):
            return False
        if self.in_ is not None and value not in self.in_:
            return False
        if "not_" in self.model_fields_set and value == self.not_:
            return False
        if self.empty is not None:
            if not isinstance(value, list | tuple | dict | str):
                return False
            return (len(value) == 0) == self.empty
        return True


class Outcome(_Strict):
    """What a step's result means: `when` tests top-level fields of the tool's output
    (a value for equality, or a Compare); `{}` means "otherwise". `then` names the
    remediation option or the later step it leads to."""

    when: dict[str, Scalar | Compare] = Field(default_factory=dict)
    means: str = Field(min_length=1)
    then: str | None = None

    def when_json(self) -> dict[str, Any]:
        """`when` as written in the front matter (comparisons by their YAML names)."""
        return {
            k: v.model_dump(mode="json", by_alias=True, exclude_unset=True)
            if isinstance(v, Compare)
            else v
            for k, v in self.when.items()
        }

    def holds(self, result: Mapping[str, Any]) -> bool:
        for key, test in self.when.items():
            if key not in result:
                return False
            value = result[key]
            if isinstance(test, Compare):
                if not test.holds(value):
                    return False
            elif value != test or isinstance(value, bool) != isinstance(test, bool):
                return False
        return True


class DiagnosticStep(_Strict):
    id: str = Field(pattern=_NAME)
    check: str = Field(min_length=1, description="what to find out")
    tool: ReadTool
    arguments: dict[str, Any] = Field(default_factory=dict)
    outcomes: tuple[Outcome, ...] = Field(min_length=1)


class Authority(_Strict):
    """What an option needs: who does it, and what the judge and the agent must find first."""

    by: Literal["agent", "human"] = "agent"
    min_tier: int | None = Field(None, ge=0, le=3, description="the judge's verdict, now")
    deploy_caused: bool | None = None
    min_confidence: float | None = Field(None, ge=0, le=1)

    def describe(self) -> str:
        parts = ["a human decides" if self.by == "human" else "the agent, through the guard"]
        if self.min_tier is not None:
            parts.append(f"judge tier >= {self.min_tier}")
        if self.deploy_caused is not None:
            parts.append("deploy-caused" if self.deploy_caused else "not deploy-caused")
        if self.min_confidence is not None:
            parts.append(f"confidence >= {self.min_confidence:g}")
        return ", ".join(parts)


class Remediation(_Strict):
    id: str = Field(pattern=_NAME)
    action: RemedyAction
    when: str = Field(min_length=1, description="the situation this option is for")
    requires: Authority = Authority()
    how: str = ""


class PostAction(_Strict):
    what: str = Field(min_length=1)
    tool: ReadTool | Literal["notify", "escalate"] | None = None
    by: Literal["agent", "human"] = "agent"


class EscalationTrigger(_Strict):
    condition: str = Field(min_length=1)
    severity: Literal["info", "warning", "critical"] = "critical"


class Runbook(_Strict):
    name: str = Field(pattern=_NAME)
    title: str = Field(min_length=1)
    service: str | None = Field(None, description="only for this service (None: any)")
    trigger: str = Field(min_length=1, description="the situation this runbook is for")
    alerts: tuple[str, ...] = ()  # alert names this runbook answers
    signals: tuple[SignalKind, ...] = ()  # signal kinds it is about
    allows_pause: bool = False  # a confident agent may pause the rollout below tier 2
    preconditions: tuple[str, ...] = ()
    diagnostic_steps: tuple[DiagnosticStep, ...] = Field(min_length=1)
    remediation: tuple[Remediation, ...] = Field(min_length=1)
    post_actions: tuple[PostAction, ...] = ()
    escalation_triggers: tuple[EscalationTrigger, ...] = ()
    body: str = Field("", exclude=True)

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Runbook:
        context = info.context if isinstance(info.context, dict) else {}
        policy = context.get("policy")
        problem = _structure_problem(self) or _authority_problem(
            self, policy if isinstance(policy, GuardPolicy) else GuardPolicy()
        )
        if problem is not None:
            raise ValueError(problem)
        return self


# --------------------------------------------------------------------------- validation


def _tool_models() -> dict[str, tuple[type[BaseModel], type[BaseModel]]]:
    """Input and output models of the read tools (imported late: tools import this module)."""
    from tools import all_tools

    return {t.name: (t.input_model, t.output_model) for t in all_tools() if t.name in READ_TOOLS}


def _placeholder_problem(value: Any) -> str | None:
    if not isinstance(value, str) or "{" not in value:
        return None
    match = _PLACEHOLDER.match(value)
    if match is None:
        return f"{value!r} is not a placeholder: use {{deploy_id}} or {{signal:KIND}}"
    if match.group(2) is not None and match.group(2) not in _KINDS:
        return f"{value!r}: no signal kind {match.group(2)!r} (one of {', '.join(sorted(_KINDS))})"
    return None


def _sample(value: Any) -> Any:
    """A placeholder stands for a string; anything else is itself."""
    if isinstance(value, list):
        return [_sample(v) for v in value]
    return "placeholder" if isinstance(value, str) and _PLACEHOLDER.match(value) else value


def _arguments_problem(
    where: str, model: type[BaseModel], arguments: Mapping[str, Any]
) -> str | None:
    unknown = sorted(set(arguments) - set(model.model_fields))
    if unknown:
        accepted = ", ".join(model.model_fields) or "none"
        return f"{where}.{unknown[0]}: not an argument of this tool (accepted: {accepted})"
    for key, value in arguments.items():
        for item in value if isinstance(value, list) else [value]:
            if (problem := _placeholder_problem(item)) is not None:
                return f"{where}.{key}: {problem}"
    try:
        model.model_validate({k: _sample(v) for k, v in arguments.items()})
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in err["loc"])
        return f"{where}.{field}: {err['msg']}"
    return None


def _is_list(annotation: Any) -> bool:
    return get_origin(annotation) in (list, tuple)


def _when_problem(where: str, model: type[BaseModel], when: Mapping[str, Any]) -> str | None:
    for key, test in when.items():
        field = model.model_fields.get(key)
        if field is None:
            known = ", ".join(model.model_fields)
            return f"{where}.{key}: not a field of the tool's result (fields: {known})"
        adapter: TypeAdapter[Any] = TypeAdapter(
            Any if field.annotation is None else field.annotation
        )
        values: list[Any] = []
        if isinstance(test, Compare):
            if test.empty is not None and not _is_list(field.annotation):
                return f"{where}.{key}.empty: only a list can be empty"
            values += [v for v in (test.min, test.max) if v is not None]
            values += list(test.in_ or ())
            if "not_" in test.model_fields_set:
                values.append(test.not_)
        else:
            values.append(test)
        for value in values:
            try:
                adapter.validate_python(value, strict=True)
            except ValidationError:
                return f"{where}.{key}: {value!r} can never be a value of this field"
    return None


def _structure_problem(book: Runbook) -> str | None:
    """Ids unique, `then` pointing at something that exists, arguments the tools accept."""
    models = _tool_models()
    step_ids = [s.id for s in book.diagnostic_steps]
    remedy_ids = [r.id for r in book.remediation]
    for label, ids in (("diagnostic_steps", step_ids), ("remediation", remedy_ids)):
        for i, ident in enumerate(ids):
            if ids.index(ident) != i:
                return f"{label}[{i}].id: {ident!r} is used twice"
    if clash := sorted(set(step_ids) & set(remedy_ids)):
        return f"remediation[{remedy_ids.index(clash[0])}].id: {clash[0]!r} is also a step id"
    for i, step in enumerate(book.diagnostic_steps):
        inputs, outputs = models[step.tool]
        where = f"diagnostic_steps[{i}]"
        if problem := _arguments_problem(f"{where}.arguments", inputs, step.arguments):
            return problem
        for j, outcome in enumerate(step.outcomes):
            at = f"{where}.outcomes[{j}]"
            if problem := _when_problem(f"{at}.when", outputs, outcome.when):
                return problem
            later = step_ids[i + 1 :]
            if outcome.then is not None and outcome.then not in (*later, *remedy_ids):
                return (
                    f"{at}.then: {outcome.then!r} is neither a remediation id nor a later step "
                    f"(remediation: {', '.join(remedy_ids)})"
                )
    if not any(r.action == "escalate" or r.requires.by == "human" for r in book.remediation):
        return "remediation: needs an option that hands over to a human (escalate or by: human)"
    return None


def _authority_problem(book: Runbook, policy: GuardPolicy) -> str | None:
    """The first option that claims more than the policy guard would allow, if any."""
    for i, option in enumerate(book.remediation):
        need = option.requires
        where = f"remediation[{i}].requires"
        if option.action == "manual":
            if need.by != "human":
                return f"{where}.by: a manual option is done by a human (by: human)"
            continue
        if option.action not in ("rollback", "pause_rollout") or need.by == "human":
            continue
        if need.deploy_caused is False:
            return (
                f"{where}.deploy_caused: the guard never acts on a regression the deploy did "
                "not cause; escalate instead"
            )
        if need.min_confidence is not None and need.min_confidence < policy.min_confidence:
            return (
                f"{where}.min_confidence: the guard needs confidence >= "
                f"{policy.min_confidence:g} before any {option.action}"
            )
        tier = need.min_tier
        if option.action == "rollback" and tier != 3:
            return f"{where}.min_tier: a rollback needs judge tier 3 (got {tier}); nothing less"
        if option.action == "pause_rollout" and (tier is None or tier < 2):
            by_runbook = (need.min_confidence or 0.0) >= policy.pause_confidence
            if not by_runbook:
                return (
                    f"{where}.min_tier: a pause needs judge tier >= 2, or min_confidence >= "
                    f"{policy.pause_confidence:g} in a runbook that allows a pause"
                )
            if not book.allows_pause:
                return (
                    f"{where}.min_confidence: a pause below tier 2 needs allows_pause: true "
                    "in this runbook"
                )
    return None


# --------------------------------------------------------------------------- reading


def parse_runbook_text(
    text: str, path: Path | str = "<runbook>", *, policy: GuardPolicy | None = None
) -> Runbook:
    """A runbook from its text; every problem names the file, the line and the field."""
    path = Path(path)
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    found = _FRONT_MATTER.match(text)
    if found is None:
        if not text.startswith("---\n"):
            raise RunbookError(
                path, "a runbook starts with a '---' line and a YAML front matter", line=1
            )
        raise RunbookError(path, "the front matter has no closing '---' line")
    head, body = found.group(1), found.group(2)
    try:
        # A leading newline keeps the YAML's line numbers equal to the file's (line 1 is ---).
        data, root = yamlpos.load("\n" + head)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = None if mark is None else int(mark.line) + 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise RunbookError(path, f"front matter is not valid YAML: {problem}", line=line) from None
    if not isinstance(data, dict) or root is None:
        raise RunbookError(path, "the front matter must be a YAML mapping (name, title, ...)")
    if (duplicate := yamlpos.duplicate_key(root)) is not None:
        line, loc = duplicate
        raise RunbookError(path, "key written twice", line=line, field=yamlpos.dotted(loc))
    if "body" in data:
        raise RunbookError(
            path, "the body is the Markdown after the front matter", line=2, field="body"
        )
    try:
        return Runbook.model_validate(
            {**data, "body": body.strip()}, context={"policy": policy or GuardPolicy()}
        )
    except ValidationError as exc:
        raise yamlpos.validation_error(
            path, root, exc, error=RunbookError, unknown="unknown field (not part of a runbook)"
        ) from None


def parse_runbook(path: Path, *, policy: GuardPolicy | None = None) -> Runbook:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RunbookError(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RunbookError(path, f"cannot read: {exc}") from None
    return parse_runbook_text(text, path, policy=policy)


def runbook_text(book: Runbook) -> str:
    """The runbook as a file: front matter (defaults left out) and the Markdown body."""
    meta = book.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    meta["allows_pause"] = book.allows_pause  # the guard reads it: always written
    order = [name for name in Runbook.model_fields if name in meta]
    head = yaml.safe_dump(
        {k: meta[k] for k in order}, sort_keys=False, allow_unicode=True, width=96
    )
    return f"---\n{head}---\n{book.body.strip()}\n"


class RunbookLibrary:
    def __init__(self, runbooks: list[Runbook]) -> None:
        self.runbooks = {r.name: r for r in runbooks}

    @classmethod
    def load(cls, folder: Path = DEFAULT_DIR) -> RunbookLibrary:
        """Every `*.md` in the folder; each one's name must be its file name."""
        if not folder.is_dir():
            return cls([])
        books = []
        for path in sorted(folder.glob("*.md")):
            book = parse_runbook(path)
            if book.name != path.stem:
                raise RunbookError(
                    path, f"name {book.name!r} must be the file's name ({path.stem!r})", line=2
                )
            books.append(book)
        return cls(books)

    def get(self, name: str) -> Runbook | None:
        return self.runbooks.get(name)

    def match(
        self, alertname: str | None, kinds: tuple[str, ...] = (), *, service: str | None = None
    ) -> list[Runbook]:
        """Runbooks for an alert name first, then those about the regressed signal kinds.

        A runbook written for one service only matches that service (and comes first within
        its group); without `service` only the runbooks for any service match."""
        usable = [r for r in self.runbooks.values() if r.service is None or r.service == service]
        usable.sort(key=lambda r: r.service is None)  # stable: the service's own first
        by_alert = [r for r in usable if alertname and alertname in r.alerts]
        by_kind = [r for r in usable if r not in by_alert and any(k in r.signals for k in kinds)]
        return by_alert + by_kind


# --------------------------------------------------------------------------- following


class PlanContext(BaseModel):
    """What is known when a runbook is followed."""

    deploy_id: str | None = None
    signals: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="signal names by kind, most regressed first"
    )

    @classmethod
    def from_findings(
        cls, deploy_id: str | None, findings: Sequence[Mapping[str, Any]]
    ) -> PlanContext:
        """From judge_deploy's findings (dicts with signal, kind, tier): regressed first."""
        ranked = sorted(findings, key=lambda f: -int(f.get("tier") or 0))
        by_kind: dict[str, list[str]] = {}
        for f in ranked:
            by_kind.setdefault(str(f["kind"]), []).append(str(f["signal"]))
        return cls(deploy_id=deploy_id, signals={k: tuple(v) for k, v in by_kind.items()})


class PlannedStep(BaseModel):
    """One diagnostic step as a tool call, ready for `Toolbox.call(tool, arguments)`."""

    id: str
    tool: str
    arguments: dict[str, Any]
    check: str
    outcomes: list[Outcome]


class SkippedStep(BaseModel):
    id: str
    reason: str


class StepPlan(BaseModel):
    calls: list[PlannedStep]
    skipped: list[SkippedStep] = Field(default_factory=list)


class _Unresolved(Exception):
    pass


def _resolve(value: Any, context: PlanContext) -> Any:
    if isinstance(value, list):
        return [_resolve(v, context) for v in value]
    if not isinstance(value, str) or (match := _PLACEHOLDER.match(value)) is None:
        return value
    if match.group(1) == "deploy_id":
        return context.deploy_id
    kind = match.group(2)
    names = context.signals.get(kind, ())
    if not names:
        raise _Unresolved(f"no {kind} signal is known for this service")
    return names[0]


def plan_steps(book: Runbook, context: PlanContext) -> StepPlan:
    """The runbook's diagnostic steps as tool calls, in order, with placeholders filled in.

    `{deploy_id}` unknown: the argument is left out (the tool takes the latest deploy).
    `{signal:KIND}` with no such signal: the step is skipped, with the reason."""
    models = _tool_models()
    plan = StepPlan(calls=[])
    for step in book.diagnostic_steps:
        try:
            args = {k: _resolve(v, context) for k, v in step.arguments.items()}
        except _Unresolved as exc:
            plan.skipped.append(SkippedStep(id=step.id, reason=str(exc)))
            continue
        args = {k: v for k, v in args.items() if v is not None}
        try:
            models[step.tool][0].model_validate(args)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            why = f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            plan.skipped.append(SkippedStep(id=step.id, reason=f"invalid arguments: {why}"))
            continue
        plan.calls.append(
            PlannedStep(
                id=step.id,
                tool=step.tool,
                arguments=args,
                check=step.check,
                outcomes=list(step.outcomes),
            )
        )
    return plan


def read_outcome(step: DiagnosticStep | PlannedStep, result: Mapping[str, Any]) -> Outcome | None:
    """The first outcome of `step` that holds for the tool's result (as JSON), if any."""
    return next((o for o in step.outcomes if o.holds(result)), None)
