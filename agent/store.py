"""Vigil's sqlite store: incidents, their investigations and the audit trail.

Schema changes are named migration functions applied in order and recorded in `migrations`,
so an old database upgrades itself on open. WAL mode, so readers never block the writer.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlite_utils

from agent.audit import AuditEvent


def _m001_incidents(db: sqlite_utils.Database) -> None:
    db.table("incidents").create(
        {
            "id": str,
            "created_at": float,
            "service": str,
            "environment": str,
            "alertname": str,
            "severity": str,
            "deploy_id": str,
            "mode": str,
            "tier": int,
            "deploy_caused": int,
            "confidence": float,
            "escalated": int,
            "summary": str,
            "result": str,  # the investigation's JSON, as `vigil triage --json` prints it
        },
        pk="id",
    )
    db.table("incidents").create_index(["service", "created_at"])


def _m002_audit(db: sqlite_utils.Database) -> None:
    db.table("audit").create(
        {
            "incident_id": str,
            "seq": int,
            "at": float,
            "kind": str,
            "actor": str,
            "summary": str,
            "data": str,
        },
        pk=("incident_id", "seq"),
        foreign_keys=[("incident_id", "incidents", "id")],
    )
    db.table("audit").create_index(["kind", "at"])


def _m003_jobs(db: sqlite_utils.Database) -> None:
    """Durable intake: every acknowledged webhook is a row here before the 2xx goes out."""
    db.execute(
        """CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,            -- alert | deploy
            dedup TEXT NOT NULL UNIQUE,    -- a re-sent webhook maps to the same key
            received_at REAL NOT NULL,
            payload TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',  -- pending | running | done | failed
            attempts INTEGER NOT NULL DEFAULT 0,
            started_at REAL,
            finished_at REAL,
            error TEXT,
            result TEXT
        )"""
    )
    db.execute("CREATE INDEX jobs_status ON jobs (status, id)")


def _m004_alerts(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE alerts (
            fingerprint TEXT NOT NULL,
            starts_at TEXT NOT NULL,
            status TEXT NOT NULL,
            alertname TEXT,
            service TEXT,
            severity TEXT,
            labels TEXT NOT NULL,
            annotations TEXT NOT NULL,
            ends_at TEXT,
            received_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            job_id INTEGER,
            incident_id TEXT,
            PRIMARY KEY (fingerprint, starts_at)
        )"""
    )
    db.execute("CREATE INDEX alerts_service ON alerts (service, received_at)")


def _m005_deploys(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE deploys (
            id TEXT PRIMARY KEY,
            service TEXT NOT NULL,
            environment TEXT,
            version TEXT NOT NULL,
            previous_version TEXT,
            strategy TEXT,
            commit_sha TEXT,
            source TEXT NOT NULL,
            status TEXT NOT NULL,          -- the last event's kind
            started_at REAL NOT NULL,
            finished_at REAL,
            updated_at REAL NOT NULL
        )"""
    )
    db.execute("CREATE INDEX deploys_service ON deploys (service, started_at)")
    db.execute(
        """CREATE TABLE deploy_events (
            dedup TEXT PRIMARY KEY,
            deploy_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            source TEXT NOT NULL,
            at REAL NOT NULL,
            received_at REAL NOT NULL
        )"""
    )


def _m006_watch(db: sqlite_utils.Database) -> None:
    """Deploy watch sessions, the health check of every step, and what was done."""
    db.execute(
        """CREATE TABLE watch_sessions (
            deploy_id TEXT PRIMARY KEY,
            service TEXT NOT NULL,
            opened_at REAL NOT NULL,
            baseline_from REAL NOT NULL,
            watch_until REAL NOT NULL,
            state TEXT NOT NULL,           -- watching | completed | paused | rolled_back | failed
            tier INTEGER NOT NULL DEFAULT 0,
            max_tier INTEGER NOT NULL DEFAULT 0,
            first_tier_at TEXT NOT NULL DEFAULT '{}',  -- {"1": t, "2": t, "3": t}
            last_checked_at REAL,
            closed_at REAL,
            reason TEXT
        )"""
    )
    db.execute("CREATE INDEX watch_state ON watch_sessions (state, service)")
    db.execute(
        """CREATE TABLE health_checks (
            deploy_id TEXT NOT NULL,
            at REAL NOT NULL,
            tier INTEGER NOT NULL,
            status TEXT NOT NULL,
            deploy_caused INTEGER,
            reasons TEXT NOT NULL,
            error_ratio REAL,              -- the errors signal now (post_deployment_error_rate)
            judge_ms REAL,                 -- capture + judge
            PRIMARY KEY (deploy_id, at)
        )"""
    )
    db.execute(
        """CREATE TABLE watch_actions (
            deploy_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            at REAL NOT NULL,
            action TEXT NOT NULL,
            status TEXT NOT NULL,          -- executed | blocked | proposed | failed
            actor TEXT NOT NULL,
            detail TEXT NOT NULL,
            PRIMARY KEY (deploy_id, seq)
        )"""
    )


def _m007_job_service(db: sqlite_utils.Database) -> None:
    """Alert jobs carry their service, so a storm joins the triage already queued."""
    db.execute("ALTER TABLE jobs ADD COLUMN service TEXT")
    db.execute("CREATE INDEX jobs_pending_service ON jobs (kind, status, service)")


def _m008_alert_links(db: sqlite_utils.Database) -> None:
    """Alerts are looked up by their job (linking a finished triage to its incident, inside
    the write lock every acknowledgement waits for) and by incident (timelines, Slack): without
    these indexes both are scans that grow with every alert ever received."""
    db.execute("CREATE INDEX alerts_job ON alerts (job_id)")
    db.execute("CREATE INDEX alerts_incident ON alerts (incident_id)")


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _m001_incidents,
    _m002_audit,
    _m003_jobs,
    _m004_alerts,
    _m005_deploys,
    _m006_watch,
    _m007_job_service,
    _m008_alert_links,
]


def default_path() -> Path:
    """$VIGIL_DB, else vigil.db in the XDG state folder (~/.local/state/vigil/)."""
    env = os.environ.get("VIGIL_DB")
    if env:
        return Path(env)
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "vigil" / "vigil.db"


def _insert(table: str, columns: list[str]) -> str:
    names = ", ".join(f"[{c}]" for c in columns)
    return f"INSERT INTO [{table}] ({names}) VALUES ({', '.join('?' for _ in columns)})"


def _upsert(table: str, columns: list[str]) -> str:
    return _insert(table, columns).replace("INSERT INTO", "INSERT OR REPLACE INTO", 1)


class Store:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite_utils.Database(str(path))
        if str(path) != ":memory:":
            self.db.enable_wal()
        self.migrate()

    def migrate(self) -> list[str]:
        """Apply every migration not yet applied; returns their names."""
        if "migrations" not in self.db.table_names():
            self.db.table("migrations").create({"name": str, "applied_at": float}, pk="name")
        done = {row["name"] for row in self.db.table("migrations").rows}
        applied = []
        for migration in MIGRATIONS:
            name = migration.__name__.lstrip("_")
            if name in done:
                continue
            with self.db.conn:
                migration(self.db)
                self.db.table("migrations").insert({"name": name, "applied_at": time.time()})
            applied.append(name)
        return applied

    def save_incident(
        self, result: dict[str, Any], events: list[AuditEvent], *, created_at: float | None = None
    ) -> None:
        """The investigation and its audit trail, in one transaction (all or nothing)."""
        incident_id = str(result["incident_id"])
        row = {
            "id": incident_id,
            "created_at": time.time() if created_at is None else created_at,
            "service": result.get("service"),
            "environment": result.get("environment"),
            "alertname": result.get("alertname"),
            "severity": result.get("severity"),
            "deploy_id": result.get("deploy_id"),
            "mode": result.get("mode"),
            "tier": result.get("tier"),
            "deploy_caused": None
            if result.get("deploy_caused") is None
            else int(bool(result["deploy_caused"])),
            "confidence": result.get("confidence"),
            "escalated": int(bool(result.get("escalated"))),
            "summary": result.get("summary"),
            "result": json.dumps(result, sort_keys=True),
        }
        audit_rows = [
            {
                "incident_id": incident_id,
                "seq": e.seq,
                "at": e.at,
                "kind": e.kind,
                "actor": e.actor,
                "summary": e.summary,
                "data": json.dumps(e.data, sort_keys=True, default=str),
            }
            for e in events
        ]
        # One transaction by hand: sqlite-utils' table methods commit on their own.
        conn = self.db.conn
        with conn:
            conn.execute("DELETE FROM audit WHERE incident_id = ?", [incident_id])
            conn.execute(_upsert("incidents", list(row)), list(row.values()))
            if audit_rows:
                conn.executemany(
                    _insert("audit", list(audit_rows[0])), [list(r.values()) for r in audit_rows]
                )

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        rows = list(self.db.table("incidents").rows_where("id = ?", [incident_id]))
        if not rows:
            return None
        result: dict[str, Any] = json.loads(rows[0]["result"])
        return result

    def audit(self, incident_id: str) -> list[AuditEvent]:
        rows = self.db.table("audit").rows_where("incident_id = ?", [incident_id], order_by="seq")
        return [
            AuditEvent(
                seq=r["seq"],
                at=r["at"],
                kind=r["kind"],
                actor=r["actor"],
                summary=r["summary"],
                data=json.loads(r["data"]),
            )
            for r in rows
        ]

    def incidents(self, service: str | None = None) -> list[dict[str, Any]]:
        where, args = ("service = ?", [service]) if service else (None, [])
        return list(
            self.db.table("incidents").rows_where(
                where, args, order_by="created_at desc", select="id, service, tier, summary"
            )
        )
