"""One investigation of one incident: the model with tools, or the offline planner.

Whichever runs, the facts that decide come from code: the tier is the judge's verdict computed
now, actions and their outcomes are read back from the audit trail (never from what the model
says it did), and a tier the judge mandates is acted on even when the model did not ask.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from agent.audit import AuditEvent
from agent.backends.base import DeployInfo
from agent.judge.verdict import TIER_NAMES, Verdict
from agent.llm import AgentLoop, LoopResult, ModelSettings, ModelUnavailable, parse_json_answer
from agent.planner import PlannerFindings, act, investigate, summary
from agent.prompts import render
from agent.redact import redact
from tools import all_tools
from tools.base import Toolbox
from tools.context import ToolContext

_REDACTED = re.compile(r"\[REDACTED:[a-z_]+\]")


class ActionRecord(BaseModel):
    name: str
    status: Literal["executed", "blocked", "proposed"]
    reason: str
    actor: str


class ModelRun(BaseModel):
    model: str
    stopped: str
    calls: int
    tool_calls: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    retries: int
    cost_usd: float


class TriageResult(BaseModel):
    incident_id: str
    mode: Literal["llm", "offline"]
    service: str
    environment: str | None
    alertname: str | None
    severity: str | None
    at: datetime  # the moment the conclusion is about (later than the alert when following)
    first_answer_at: datetime
    deploy_id: str | None
    version: str | None
    deploy_caused: bool | None
    tier: int | None
    tier_name: str | None
    suspect_files: list[str]
    summary: str
    confidence: float = Field(ge=0, le=1)
    actions: list[ActionRecord]
    escalated: bool
    missing_sources: list[str]
    next_steps: list[str] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list)
    fallback_reason: str | None = None
    model: ModelRun | None = None


def redact_counted(text: str) -> tuple[str, int]:
    """Redact secrets; the count is the number of new redaction markers."""
    before = len(_REDACTED.findall(text))
    clean = redact(text)
    return clean, len(_REDACTED.findall(clean)) - before


def toolbox_for(ctx: ToolContext) -> Toolbox:
    return Toolbox(all_tools(), ctx, redact=redact_counted)


def record_calls(toolbox: Toolbox, ctx: ToolContext) -> None:
    """Every tool call lands in the audit trail, whoever made it."""
    inner = toolbox.call

    def call(name: str, arguments: Any) -> Any:
        result = inner(name, arguments)
        ctx.audit.record(
            ctx.now,
            "tool_call",
            ctx.actor,
            f"{name} -> {'ok' if result.ok else 'error'}",
            tool=name,
            arguments=arguments if isinstance(arguments, dict) else repr(arguments)[:500],
            ok=result.ok,
            truncated=result.truncated,
            redactions=result.redactions,
            error=None if result.ok else result.content[:500],
        )
        return result

    toolbox.call = call  # type: ignore[method-assign]


def _verdict(ctx: ToolContext) -> tuple[Any, Verdict | None]:
    deploy = ctx.suspect_deploy()
    return deploy, None if deploy is None else ctx.verdict(deploy)


def _actions(events: list[AuditEvent]) -> list[ActionRecord]:
    out: list[ActionRecord] = []
    pending: dict[str, ActionRecord] = {}
    for e in events:
        if e.kind == "guard":
            name = str(e.data["action"])
            if not e.data.get("allowed"):
                out.append(
                    ActionRecord(name=name, status="blocked", reason=e.summary, actor=e.actor)
                )
            else:
                reason = str(e.data.get("reason") or e.summary)
                record = ActionRecord(name=name, status="proposed", reason=reason, actor=e.actor)
                out.append(record)
                pending[name] = record
        elif e.kind == "action":
            name = str(e.data["action"])
            if name not in pending:
                continue
            record = pending.pop(name)
            status = e.data.get("status")
            if status in ("executed", "no_op"):
                record.status = "executed"
                if status == "no_op":
                    done = e.summary.removeprefix("already done: ")
                    record.reason = f"{record.reason} (already done: {done})"
            else:
                record.reason = f"{record.reason} (dry run: not executed)"
    return out


def _enforce(toolbox: Toolbox, ctx: ToolContext, verdict: Verdict | None, deploy: Any) -> None:
    """What the judge and the guard mandate, done in code if the model did not ask for it."""
    events = ctx.audit.events
    # Asked and allowed (executed, a no-op or a dry run): done. Refused when the model asked
    # (say, at low confidence) is not done: the judge's tier still stands.
    asked = {str(e.data["action"]) for e in events if e.kind == "guard" and e.data.get("allowed")}
    previous, ctx.actor = ctx.actor, "vigil"
    try:
        if verdict is not None and deploy is not None and verdict.deploy_caused:
            if verdict.tier == 3 and "rollback" not in asked:
                toolbox.call(
                    "rollback",
                    {
                        "deploy_id": deploy.id,
                        "confidence": 0.97,
                        "reason": "judge tier 3: " + "; ".join(verdict.reasons)[:1500],
                    },
                )
            elif verdict.tier == 2 and not asked & {"rollback", "pause_rollout"}:
                toolbox.call(
                    "pause_rollout",
                    {
                        "deploy_id": deploy.id,
                        "confidence": 0.85,
                        "reason": "judge tier 2: " + "; ".join(verdict.reasons)[:1500],
                    },
                )
        needs_human = any(e.kind == "guard" and e.data.get("escalate") for e in ctx.audit.events)
        escalated = any(
            e.kind == "action" and e.data.get("action") == "escalate" for e in ctx.audit.events
        )
        if needs_human and not escalated:
            why = next(
                e.summary for e in ctx.audit.events if e.kind == "guard" and e.data.get("escalate")
            )
            toolbox.call(
                "escalate",
                {"summary": f"{ctx.incident.summary or ctx.incident.alertname}: {why}"},
            )
    finally:
        ctx.actor = previous


def _undecided(verdict: Verdict) -> bool:
    return verdict.tier < 3 and verdict.deploy_caused is not False


def _follow(
    toolbox: Toolbox, ctx: ToolContext, deploy: DeployInfo, verdict: Verdict, until: float
) -> tuple[Verdict, PlannerFindings | None]:
    """Re-judge the deploy every step until the judge acts or clears it, or `until`."""
    if ctx.judge is None or not _undecided(verdict):
        return verdict, None
    if ctx.data_until is not None:
        until = min(until, ctx.data_until)
    began, t, acted_at = ctx.now, ctx.now, verdict.tier
    found: PlannerFindings | None = None
    while _undecided(verdict) and t + ctx.step_s <= until:
        t += ctx.step_s
        ctx.advance(t)
        latest = ctx.verdict(deploy)
        if latest is None:
            break
        cleared = latest.deploy_caused is False and verdict.deploy_caused is not False
        verdict = latest
        if (latest.tier >= 2 and latest.tier > acted_at) or cleared:
            ctx.audit.record(
                t,
                "note",
                "vigil",
                f"following {deploy.id}: {t - began:.0f} s after the first answer the judge "
                f"says tier {latest.tier} ({latest.tier_name})"
                + (", not caused by the deploy" if cleared else ""),
                tier=latest.tier,
                deploy_caused=latest.deploy_caused,
            )
            previous, ctx.actor = ctx.actor, "vigil"
            try:
                found = investigate(toolbox)
                act(toolbox, found)
            finally:
                ctx.actor = previous
            acted_at = latest.tier
    if found is None:
        ctx.audit.record(
            ctx.now,
            "note",
            "vigil",
            f"followed {deploy.id} for {t - began:.0f} s: the judge still says tier "
            f"{verdict.tier} ({verdict.tier_name}, {verdict.status})",
        )
    return verdict, found


def _model_run(loop: AgentLoop, result: LoopResult) -> ModelRun:
    u = result.usage
    return ModelRun(
        model=loop.settings.model,
        stopped=result.stopped,
        calls=u.model_calls,
        tool_calls=u.tool_calls,
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        cache_read_tokens=u.cache_read_tokens,
        cache_write_tokens=u.cache_write_tokens,
        retries=u.retries,
        cost_usd=round(u.cost_usd(loop.settings), 6),
    )


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def prompts_for(ctx: ToolContext, organisation: str = "this organisation") -> tuple[str, str]:
    inc = ctx.incident
    annotations = "\n".join(f"{k}: {v}" for k, v in sorted(inc.annotations.items()))
    system = render(
        "system.md.j2",
        organisation=organisation,
        service=inc.service,
        environment=inc.environment,
        pause_confidence=ctx.policy.pause_confidence,
        min_confidence=ctx.policy.min_confidence,
    )
    user = render(
        "triage.md.j2",
        incident=inc,
        started=_iso(inc.started_at),
        now=_iso(ctx.now),
        annotations=redact(annotations.replace("</untrusted>", "</untrusted_>")) or "(none)",
    )
    return system, user


def _evidence(verdict: Verdict | None) -> list[str]:
    if verdict is None:
        return []
    out = []
    for f in verdict.findings:
        if f.tier >= 1 or f.past_slo:
            out.append(f"{f.signal}: {f.reason}")
    return out


def triage(
    ctx: ToolContext,
    *,
    loop: AgentLoop | None = None,
    offline_reason: str = "no model configured",
    follow_s: float = 0.0,
) -> TriageResult:
    """Investigate `ctx.incident`; with `loop` through the model, else offline.

    With `follow_s`, a deploy the judge cannot decide yet is followed for that long, one
    step at a time with no look-ahead: when the judge reaches a tier that calls for an action
    (or clears the deploy), the planner investigates again at that moment and acts."""
    toolbox = toolbox_for(ctx)
    record_calls(toolbox, ctx)
    ctx.audit.record(
        ctx.now,
        "note",
        "vigil",
        f"triage of {ctx.incident.alertname or 'alert'} on {ctx.incident.service}",
        incident=ctx.incident.model_dump(mode="json"),
    )
    mode: Literal["llm", "offline"] = "offline"
    fallback: str | None = offline_reason if loop is None else None
    answer: dict[str, Any] | None = None
    model: ModelRun | None = None
    if loop is not None:
        system, user = prompts_for(ctx)
        try:
            run = loop.run(system, user, toolbox)
        except ModelUnavailable as exc:
            fallback = f"model unavailable, fell back to the offline planner: {exc}"
            ctx.audit.record(ctx.now, "model", "vigil", fallback)
        else:
            mode = "llm"
            model = _model_run(loop, run)
            answer = parse_json_answer(run.final_text)
            ctx.audit.record(
                ctx.now,
                "model",
                "agent",
                f"model answered ({run.stopped})",
                answer=answer,
                usage=model.model_dump(),
            )
    found = None
    if mode == "offline":
        ctx.actor = "planner"
        found = investigate(toolbox)
        act(toolbox, found)
    deploy, verdict = _verdict(ctx)
    _enforce(toolbox, ctx, verdict, deploy)
    first_answer_at = ctx.now
    update: PlannerFindings | None = None
    if follow_s > 0 and deploy is not None and verdict is not None:
        verdict, update = _follow(toolbox, ctx, deploy, verdict, ctx.now + follow_s)
        if update is not None and found is not None:
            found = update

    caused = None if verdict is None else verdict.deploy_caused
    if deploy is not None and ctx.incident.started_at < deploy.started_at.timestamp():
        caused = False
    if deploy is None and "deploys" not in ctx.missing:
        caused = False
    if found is not None:
        suspects = found.suspect_files
        text = summary(found)
        confidence = found.confidence()
        steps = _next_steps(found.tier, caused)
    else:
        a = answer or {}
        suspects = [str(s) for s in a.get("suspect_files", []) if isinstance(s, str)][:10]
        text = str(a.get("summary") or "The model gave no summary.")[:2000]
        confidence = _confidence(a.get("confidence"))
        if caused is None and isinstance(a.get("deploy_caused"), bool):
            caused = a["deploy_caused"]
        steps = [str(s) for s in a.get("next_steps", []) if isinstance(s, str)][:10]
        if answer is None:
            fallback = "the model's answer was not a JSON object; facts come from the tools only"
        if update is not None:
            text = f"{text} Update: {summary(update)}"
            steps = _next_steps(update.tier, caused)
            if update.deploy_caused:
                suspects = list(dict.fromkeys([*suspects, *update.suspect_files]))[:10]
    events = ctx.audit.events
    actions = _actions(events)
    escalated = any(a.name == "escalate" and a.status == "executed" for a in actions)
    return TriageResult(
        incident_id=ctx.incident.id,
        mode=mode,
        service=ctx.incident.service,
        environment=ctx.incident.environment,
        alertname=ctx.incident.alertname,
        severity=ctx.incident.severity,
        at=datetime.fromtimestamp(ctx.now, tz=UTC),
        first_answer_at=datetime.fromtimestamp(first_answer_at, tz=UTC),
        deploy_id=None if deploy is None else deploy.id,
        version=None if deploy is None else deploy.version,
        deploy_caused=caused,
        tier=None if verdict is None else verdict.tier,
        tier_name=None if verdict is None else TIER_NAMES[verdict.tier],
        suspect_files=suspects,
        summary=text,
        confidence=confidence,
        actions=actions,
        escalated=escalated,
        missing_sources=sorted(ctx.missing),
        next_steps=steps,
        evidence=_evidence(verdict),
        fallback_reason=fallback,
        model=model,
    )


def _confidence(value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return 0.0
    return min(max(x, 0.0), 1.0) if x == x else 0.0


def _next_steps(tier: int | None, caused: bool | None) -> list[str]:
    if tier is None:
        return ["Check the service's dashboards by hand: the judge had no data."]
    if caused is False:
        return [
            "Look for the cause outside this deploy: dependencies, infrastructure, traffic.",
            "Keep the deploy; rolling it back would not help.",
        ]
    return {
        3: ["Confirm the rollback finished and the signals recover.", "Fix the suspect change."],
        2: ["Decide: roll back or resume the paused rollout.", "Review the suspect change."],
        1: ["Watch the deploy: the judge sees a small regression."],
        0: ["No deploy regression: investigate the alert's own cause."],
    }[tier]


def to_json(result: TriageResult) -> str:
    return json.dumps(result.model_dump(mode="json"), indent=2, sort_keys=False)


def settings_and_loop(
    *, offline: bool, client_factory: Callable[[ModelSettings], Any] | None = None
) -> tuple[AgentLoop | None, str]:
    """The model loop when a key is set (and not --offline); else why there is none."""
    import os

    if offline:
        return None, "offline requested"
    if not os.environ.get("ANTHROPIC_API_KEY") and not os.environ.get("ANTHROPIC_AUTH_TOKEN"):
        return None, "no ANTHROPIC_API_KEY set"
    settings = ModelSettings()
    if client_factory is None:
        import anthropic

        client = anthropic.Anthropic(max_retries=0, timeout=settings.request_timeout_s)
    else:
        client = client_factory(settings)
    return AgentLoop(client, settings), ""
