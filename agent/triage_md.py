"""A triage result as Markdown for the on-call human."""

from __future__ import annotations

from agent.triage import TriageResult


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else "yes" if value else "no"


def to_markdown(r: TriageResult) -> str:
    lines = [
        f"# {r.alertname or 'Alert'} on {r.service}"
        + (f" ({r.environment})" if r.environment else ""),
        "",
        f"- Incident: `{r.incident_id}` · severity {r.severity or 'unknown'} · "
        f"first answer {r.first_answer_at:%Y-%m-%d %H:%M:%S} UTC"
        + (
            f" · followed the deploy until {r.at:%H:%M:%S} UTC" if r.at != r.first_answer_at else ""
        ),
        f"- Deploy: `{r.deploy_id}` {r.version or ''}".rstrip()
        if r.deploy_id
        else "- Deploy: none found",
        f"- Judge: tier {r.tier} ({r.tier_name})" if r.tier is not None else "- Judge: no verdict",
        f"- Caused by the deploy: {_yes_no(r.deploy_caused)} · confidence {r.confidence:.2f}",
        f"- Investigated by: {'the model' if r.mode == 'llm' else 'the offline planner'}"
        + (f" ({r.fallback_reason})" if r.fallback_reason else ""),
        "",
        "## Summary",
        "",
        r.summary,
    ]
    if r.evidence:
        lines += ["", "## Evidence", ""] + [f"- {e}" for e in r.evidence]
    if r.suspect_files:
        lines += ["", "## Suspect changes (most likely first)", ""]
        lines += [f"{i}. `{p}`" for i, p in enumerate(r.suspect_files[:5], 1)]
    lines += ["", "## Actions", ""]
    if r.actions:
        lines += [f"- **{a.name}** {a.status} ({a.actor}): {a.reason}" for a in r.actions]
    else:
        lines.append("- none")
    if r.escalated:
        lines.append("- a human was paged")
    if r.next_steps:
        lines += ["", "## Next steps", ""] + [f"- {s}" for s in r.next_steps]
    if r.missing_sources:
        lines += [
            "",
            "## Not seen",
            "",
            "These sources could not be read, so the conclusion does not account for them: "
            + ", ".join(r.missing_sources)
            + ".",
        ]
    if r.model is not None:
        m = r.model
        lines += [
            "",
            f"_Model {m.model}: {m.calls} calls, {m.tool_calls} tool calls, "
            f"{m.input_tokens + m.output_tokens} tokens, ${m.cost_usd:.4f}, {m.stopped}._",
        ]
    return "\n".join(lines) + "\n"
