"""The audit trail: every tool call, guard decision and action, in order, with its time."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agent.guard import Action, PastAction


class AuditEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    seq: int
    at: float
    kind: str  # tool_call | guard | action | model | note
    actor: str  # agent | planner | human:<id> | vigil
    summary: str
    data: dict[str, Any] = Field(default_factory=dict)


class AuditLog:
    """Append-only, in memory; the store persists it with the incident."""

    def __init__(self, history: tuple[PastAction, ...] = ()) -> None:
        self.events: list[AuditEvent] = []
        self._prior = history

    def record(self, at: float, kind: str, actor: str, summary: str, **data: Any) -> AuditEvent:
        event = AuditEvent(
            seq=len(self.events) + 1, at=at, kind=kind, actor=actor, summary=summary, data=data
        )
        self.events.append(event)
        return event

    def actions(self) -> tuple[PastAction, ...]:
        """Past actions (earlier incidents' and this one's) for the guard's rate limits."""
        mine = tuple(
            PastAction(
                action=Action(e.data["action"]),
                service=str(e.data["service"]),
                at=e.at,
                executed=bool(e.data.get("executed")),
            )
            for e in self.events
            if e.kind == "action"
        )
        return self._prior + mine
