"""Writing the postmortem: the model's draft when it passes the checks, else the rendered one
saying why.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from agent.postmortem.check import check_draft
from agent.postmortem.draft import render_draft
from agent.postmortem.facts import gather_facts
from agent.postmortem.model import MIN_OUTPUT_TOKENS, SECTIONS, Postmortem, PostmortemFacts
from agent.prompts import render
from agent.redact import redact
from agent.store import Store
from agent.timeline import load_timeline

if TYPE_CHECKING:
    from agent.llm import ModelSettings


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
