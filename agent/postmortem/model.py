"""The postmortem's sections, its facts (each citing the record it comes from) and the result."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from agent.timeline import Timeline, iso, phase_duration

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
ADVICE = {
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
