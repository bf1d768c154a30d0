"""A runbook rendered by code from a service's facts: diagnostic steps for its signals,
remediation within the guard's policy, escalation triggers.
"""

from __future__ import annotations

import re
from typing import Any

from agent.guard import GuardPolicy
from agent.runbook_facts import ServiceFacts, SignalFact
from agent.runbooks import Runbook


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
