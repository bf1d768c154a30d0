"""The offline planner: the agent's investigation, run deterministically without a model.

It calls the same tools through the same toolbox (so the same guard and the same audit trail)
in a fixed order: deploys, the judge, the logs, the change, the runbook; then it asks for the
action the judge's tier calls for, and escalates where the guard says a human must decide.
Its conclusions are only what the tools returned: no tool output can change which tools it
calls or with what authority.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from tools.base import Toolbox, ToolResult

# Confidence that the deploy causes the incident, by the judge's tier (deploy-caused verdicts).
TIER_CONFIDENCE = {3: 0.97, 2: 0.85, 1: 0.6, 0: 0.3}
# A deploy younger than this that the judge finds healthy is not cleared yet: notify, follow.
FRESH_DEPLOY_MIN = 15.0


@dataclass
class Reading:
    """What one tool call returned, parsed."""

    tool: str
    ok: bool
    data: dict[str, Any] | None
    error: str | None


@dataclass
class PlannerFindings:
    deploys: list[dict[str, Any]] = field(default_factory=list)
    verdict: dict[str, Any] | None = None
    logs: dict[str, Any] | None = None
    change: dict[str, Any] | None = None
    runbook: dict[str, Any] | None = None
    runbook_steps: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    deploys_missing: bool = False

    @property
    def deploy(self) -> dict[str, Any] | None:
        return self.deploys[0] if self.deploys else None

    @property
    def alert_before_deploy(self) -> bool:
        d = self.deploy
        return d is not None and float(d["minutes_before_incident"]) < 0

    @property
    def deploy_caused(self) -> bool | None:
        if self.deploy is None:
            return None if self.deploys_missing else False
        if self.alert_before_deploy:
            return False
        if self.verdict is None:
            return None
        caused = self.verdict.get("deploy_caused")
        return None if caused is None else bool(caused)

    @property
    def minutes_since_deploy(self) -> float:
        """Minutes from the deploy's start to now (the investigation's moment)."""
        d = self.deploy
        return math.inf if d is None else float(d["minutes_before_now"])

    @property
    def tier(self) -> int | None:
        return None if self.verdict is None else int(self.verdict["tier"])

    @property
    def suspect_files(self) -> list[str]:
        if self.change is None:
            return []
        return [s["path"] for s in self.change["suspects"] if s["score"] > 0]

    def confidence(self) -> float:
        """Confidence in the conclusion about the deploy (caused or not)."""
        caused = self.deploy_caused
        tier = self.tier
        if caused is None or tier is None:
            return 0.3
        if caused:
            return TIER_CONFIDENCE[tier]
        return 0.9 if tier >= 1 or self.alert_before_deploy else 0.6


def _call(toolbox: Toolbox, name: str, args: dict[str, Any]) -> Reading:
    result: ToolResult = toolbox.call(name, args)
    if not result.ok:
        return Reading(name, False, None, result.content)
    try:
        data = json.loads(result.content)
    except json.JSONDecodeError:  # truncated past its budget: keep going without it
        return Reading(name, False, None, f"{name}: output was truncated")
    return Reading(name, True, data, None)


def investigate(toolbox: Toolbox) -> PlannerFindings:
    """The read-only part: every source that can be read, in a fixed order."""
    found = PlannerFindings()
    done: set[_DONE_KEY] = {_key("list_deploys", {})}
    r = _call(toolbox, "list_deploys", {})
    if r.ok and r.data is not None:
        found.deploys = list(r.data["deploys"])
    else:
        found.deploys_missing = True
        found.errors.append(r.error or "list_deploys failed")
    deploy_id = found.deploy["id"] if found.deploy else None
    if deploy_id is not None:
        for name, slot in (("judge_deploy", "verdict"), ("read_logs", "logs")):
            done.add(_key(name, {"deploy_id": deploy_id}))
            r = _call(toolbox, name, {"deploy_id": deploy_id})
            if r.ok:
                setattr(found, slot, r.data)
            else:
                found.errors.append(r.error or f"{name} failed")
        done.add(_key("fetch_diff", {"deploy_id": deploy_id}))
        r = _call(toolbox, "fetch_diff", {"deploy_id": deploy_id, "max_chars": 500})
        if r.ok:
            found.change = r.data
        else:
            found.errors.append(r.error or "fetch_diff failed")
    r = _call(toolbox, "get_runbook", {})
    if r.ok:
        found.runbook = r.data
        found.runbook_steps = follow_runbook(toolbox, r.data or {}, done)
    return found


_DONE_KEY = tuple[str, str]


def _key(tool: str, arguments: dict[str, Any]) -> _DONE_KEY:
    return tool, json.dumps(arguments, sort_keys=True)


def follow_runbook(
    toolbox: Toolbox, runbook: dict[str, Any], done: set[_DONE_KEY]
) -> list[dict[str, Any]]:
    """Run the runbook's diagnostic steps in order (read-only tools only; a call already made
    with the same arguments is not repeated) and note what each result means."""
    from agent.runbooks import PlannedStep, read_outcome

    followed: list[dict[str, Any]] = []
    for step in runbook.get("steps", []):
        tool, arguments = str(step.get("tool")), dict(step.get("arguments") or {})
        if tool not in _READ_ONLY:
            continue
        entry: dict[str, Any] = {"id": step.get("id"), "tool": tool}
        if _key(tool, arguments) in done:
            entry["result"] = "already checked"
        else:
            done.add(_key(tool, arguments))
            result = toolbox.call(tool, arguments)
            entry["ok"] = result.ok
            if result.ok:
                try:
                    planned = PlannedStep.model_validate(step)
                    outcome = read_outcome(planned, json.loads(result.content))
                except ValueError:  # a truncated result or an unexpected step: just the call
                    outcome = None
                entry["means"] = None if outcome is None else outcome.means
        followed.append(entry)
    return followed


_READ_ONLY = frozenset({"judge_deploy", "read_logs", "fetch_diff", "query_metrics", "list_deploys"})


def act(toolbox: Toolbox, found: PlannerFindings) -> list[Reading]:
    """Ask for what the judge's tier calls for; escalate when the guard or the facts say so."""
    readings: list[Reading] = []
    deploy = found.deploy
    tier = found.tier
    caused = found.deploy_caused
    escalate_why: str | None = None
    if deploy is not None and tier is not None and caused:
        reason = _reason(found)
        name = "rollback" if tier == 3 else "pause_rollout" if tier == 2 else None
        if name is not None:
            r = _call(
                toolbox,
                name,
                {"deploy_id": deploy["id"], "confidence": found.confidence(), "reason": reason},
            )
            readings.append(r)
            if r.data is not None and r.data.get("escalate"):
                escalate_why = f"{name} needs a human: {r.data['message']}"
            elif r.data is not None and r.data.get("status") == "blocked":
                escalate_why = f"{name} was blocked: {r.data['message']}"
        elif tier == 1:
            readings.append(_call(toolbox, "notify", {"message": f"warning: {reason}"}))
    elif caused is False:
        escalate_why = "the service is degraded but the deploy is not the cause"
    elif found.verdict is None:
        escalate_why = "the deploy could not be judged: " + "; ".join(found.errors)[:300]
    elif found.verdict.get("status") == "insufficient_evidence":
        readings.append(
            _call(
                toolbox,
                "notify",
                {"message": f"too early to judge the deploy: {summary(found)}"},
            )
        )
    elif tier == 0 and deploy is not None and found.minutes_since_deploy < FRESH_DEPLOY_MIN:
        message = (
            f"the judge sees no regression yet {found.minutes_since_deploy:.1f} min after "
            f"deploy {deploy['id']}; too early to clear it: {summary(found)}"
        )
        readings.append(_call(toolbox, "notify", {"message": message}))
    elif tier == 0:
        escalate_why = "the alert is not explained by the deploy, which the judge finds healthy"
    if escalate_why is not None:
        readings.append(
            _call(
                toolbox,
                "escalate",
                {"summary": f"{summary(found)} Escalating: {escalate_why}", "severity": "critical"},
            )
        )
    return readings


def _reason(found: PlannerFindings) -> str:
    v = found.verdict or {}
    bad = [f for f in v.get("findings", []) if f["tier"] >= 1]
    parts = [f"judge tier {v.get('tier')} ({v.get('tier_name')})"]
    parts += [f"{f['signal']}: {f['reason']}" for f in bad[:3]]
    return "; ".join(parts)[:1900]


def _short(finding: dict[str, Any]) -> str:
    """A finding's reason, without what the summary says anyway."""
    reason = str(finding["reason"])
    if finding["status"] == "not_deploy_caused" and "not deploy-caused: " in reason:
        return reason.split("not deploy-caused: ", 1)[1]
    return reason


def summary(found: PlannerFindings) -> str:
    """Three sentences at most, each stating a fact a tool returned."""
    d = found.deploy
    if d is None:
        if found.deploys_missing:
            return "Deploys could not be listed, so the deploy's part is unknown."
        return "No deploy of this service in the last 6 hours: not a deploy regression."
    v = found.verdict
    head = f"Deploy {d['id']} ({d['version']}) started {abs(d['minutes_before_incident'])} min "
    head += "before the alert." if not found.alert_before_deploy else "after the alert began."
    if v is None:
        return head + " The deploy could not be judged (no metrics)."
    bad = [f for f in v["findings"] if f["tier"] >= 1 or f["status"] == "not_deploy_caused"]
    if v.get("status") == "insufficient_evidence":
        judged = " The judge has too few samples since the deploy to judge it"
    else:
        judged = f" The judge says tier {v['tier']} ({v['tier_name']})"
    if bad:
        judged += ": " + "; ".join(_short(f) for f in bad[:2])
    judged += "."
    if found.deploy_caused is False:
        tail = " The regression is not caused by the deploy."
    elif found.suspect_files:
        tail = f" Most likely change: {found.suspect_files[0]}."
        logs = found.logs
        if logs and logs["patterns"] and logs["patterns"][0]["status"] in ("new", "grew"):
            tail = tail[:-1] + f", with {logs['patterns'][0]['status']} error "
            tail += f"'{logs['patterns'][0]['template'][:120]}'."
    else:
        tail = ""
    return head + judged + tail
