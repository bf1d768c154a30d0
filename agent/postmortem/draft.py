"""The facts rendered as the Markdown draft (what is used without a model, or when the
model's draft is refused).
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.postmortem.model import Fact, PostmortemFacts


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
