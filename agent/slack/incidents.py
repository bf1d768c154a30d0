"""What the Slack app reads about incidents and deploys from the store.

An incident's result JSON is read into `IncidentView`, a lenient typed view: a triage result
has every field, a deploy watch's record only some, and the app must render both.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.backends.base import DeployInfo
from agent.incident import Incident
from agent.links import ChangeLinks
from agent.server.runtime import Backends, deploy_info
from agent.slack.records import SlackStore

log = logging.getLogger("vigil.slack")

RECENT_S = 6 * 3600  # the deploys an incident can be about (as the workers look)


class ActionView(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    status: str
    reason: str = ""
    actor: str = ""


class IncidentView(BaseModel):
    """An incident as stored (the triage result, or a deploy watch's record)."""

    model_config = ConfigDict(extra="ignore")

    incident_id: str
    service: str
    environment: str | None = None
    alertname: str | None = None
    severity: str | None = None
    mode: str | None = None
    deploy_id: str | None = None
    version: str | None = None
    deploy_caused: bool | None = None
    tier: int | None = None
    tier_name: str | None = None
    suspect_files: list[str] = Field(default_factory=list)
    summary: str = ""
    confidence: float | None = None
    actions: list[ActionView] = Field(default_factory=list)
    escalated: bool = False
    missing_sources: list[str] = Field(default_factory=list)
    next_steps: list[str] = Field(default_factory=list)
    evidence: list[str] = Field(default_factory=list)
    fallback_reason: str | None = None
    created_at: float | None = None

    @property
    def is_watch(self) -> bool:
        return self.mode == "watch"


def view(store: SlackStore, incident_id: str) -> IncidentView | None:
    row = (
        store.conn()
        .execute("SELECT result, created_at FROM incidents WHERE id = ?", (incident_id,))
        .fetchone()
    )
    if row is None:
        return None
    return view_of(json.loads(row["result"]), created_at=row["created_at"])


def view_of(result: dict[str, Any], *, created_at: float | None = None) -> IncidentView | None:
    try:
        return IncidentView.model_validate({**result, "created_at": created_at})
    except ValidationError:
        return None


def latest(store: SlackStore, service: str) -> IncidentView | None:
    row = (
        store.conn()
        .execute(
            "SELECT id FROM incidents WHERE service = ? ORDER BY created_at DESC LIMIT 1",
            (service,),
        )
        .fetchone()
    )
    return None if row is None else view(store, row["id"])


def recent(store: SlackStore, since: float, limit: int = 10) -> list[IncidentView]:
    rows = store.rows(
        "SELECT id FROM incidents WHERE created_at >= ? ORDER BY created_at DESC LIMIT ?",
        (since, limit),
    )
    return [v for r in rows if (v := view(store, r["id"])) is not None]


def incident_of(store: SlackStore, item: IncidentView, now: float) -> Incident:
    """The `Incident` a tool context needs: from the triage's first audit note (which holds
    the alert's incident), else from the stored result."""
    row = (
        store.conn()
        .execute(
            "SELECT data FROM audit WHERE incident_id = ? AND kind = 'note' ORDER BY seq LIMIT 1",
            (item.incident_id,),
        )
        .fetchone()
    )
    if row is not None:
        data = json.loads(row["data"]).get("incident")
        if isinstance(data, dict):
            try:
                return Incident.model_validate(data)
            except ValidationError:
                pass
    started = item.created_at if item.created_at is not None else now
    if item.deploy_id is not None and (found := deploy(store, item.deploy_id)) is not None:
        started = max(started, found.started_at.timestamp())
    return Incident(
        id=item.incident_id,
        service=item.service,
        environment=item.environment,
        severity=item.severity,
        alertname=item.alertname,
        summary=item.summary[:500],
        started_at=started,
    )


def deploys(store: SlackStore, service: str, now: float) -> list[DeployInfo]:
    """The service's deploys that started in the last hours before `now`, newest first."""
    rows = store.rows(
        "SELECT * FROM deploys WHERE service = ? AND started_at BETWEEN ? AND ?"
        " ORDER BY started_at DESC",
        (service, now - RECENT_S, now),
    )
    return [deploy_info(r) for r in rows]


def deploy(store: SlackStore, deploy_id: str) -> DeployInfo | None:
    rows = store.rows("SELECT * FROM deploys WHERE id = ?", (deploy_id,))
    return deploy_info(rows[0]) if rows else None


def watch_session(store: SlackStore, deploy_id: str) -> dict[str, Any] | None:
    rows = store.rows("SELECT * FROM watch_sessions WHERE deploy_id = ?", (deploy_id,))
    return rows[0] if rows else None


def latest_check(store: SlackStore, deploy_id: str) -> dict[str, Any] | None:
    rows = store.rows(
        "SELECT at, tier, status, deploy_caused, reasons FROM health_checks"
        " WHERE deploy_id = ? ORDER BY at DESC LIMIT 1",
        (deploy_id,),
    )
    if not rows:
        return None
    row = rows[0]
    row["reasons"] = json.loads(row["reasons"])
    return row


def alerts_resolved(store: SlackStore, incident_id: str) -> bool | None:
    """True when every alert of the incident is resolved; None when it has no alerts."""
    rows = store.rows("SELECT status FROM alerts WHERE incident_id = ?", (incident_id,))
    if not rows:
        return None
    return all(r["status"] == "resolved" for r in rows)


def change_links(store: SlackStore, backends: Backends, item: IncidentView) -> ChangeLinks:
    """Links to the incident's deploy change and its suspect files, where the repository's web
    address is known; a message is never held back for want of them."""
    if item.deploy_id is None or (found := deploy(store, item.deploy_id)) is None:
        return ChangeLinks()
    try:
        return backends.change_links(found, item.suspect_files[:5])
    except Exception:  # a link is a nicety: never lose the message over it
        log.exception("change links for %s", item.deploy_id)
        return ChangeLinks()
