"""The incident under investigation."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Incident(BaseModel):
    """The incident under investigation, from the alert (data, not instructions)."""

    model_config = ConfigDict(frozen=True)

    id: str
    service: str
    environment: str | None = None
    severity: str | None = None
    alertname: str | None = None
    summary: str = ""
    started_at: float
    services_affected: tuple[str, ...] = ()
    annotations: dict[str, str] = Field(default_factory=dict)  # untrusted text
