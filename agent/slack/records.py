"""What the Slack app keeps in Vigil's sqlite file, beside the server's own tables.

    slack_threads    one thread per incident: its channel, the parent's ts, whether Vigil
                     still posts updates (active), a human took over (human) or it is over
    slack_outbox     every message to post, in order (see `outbox`)
    slack_approvals  the approval asked for each paused deploy, and its decision
    slack_meta       cursors of the feed that reads what the workers recorded

The tables are created here (`CREATE TABLE IF NOT EXISTS`), so the core schema in
`agent.store` does not depend on Slack. Audit events go to the incident's own audit trail.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.audit import AuditEvent
from agent.server.intake import write_lock
from agent.store import Store

SCHEMA = """
CREATE TABLE IF NOT EXISTS slack_threads (
    incident_id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    ts TEXT,                                 -- the parent message, once posted
    state TEXT NOT NULL DEFAULT 'active',    -- active | human | resolved
    opened_at REAL NOT NULL,
    last_update_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS slack_threads_ts ON slack_threads (channel, ts);
CREATE TABLE IF NOT EXISTS slack_outbox (
    id INTEGER PRIMARY KEY,
    key TEXT UNIQUE,                         -- the same message is queued once
    thread TEXT,                             -- incident whose thread it goes to (or NULL)
    ref TEXT,                                -- a name to find where it landed
    method TEXT NOT NULL,                    -- chat.postMessage | chat.update
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',  -- pending | posting | sent | failed
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL DEFAULT 0,
    claimed_at REAL,
    error TEXT,
    sent_at REAL,
    channel TEXT,
    ts TEXT
);
CREATE INDEX IF NOT EXISTS slack_outbox_status ON slack_outbox (status, id);
CREATE INDEX IF NOT EXISTS slack_outbox_ref ON slack_outbox (ref);
CREATE TABLE IF NOT EXISTS slack_approvals (
    deploy_id TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL,
    service TEXT NOT NULL,
    version TEXT,
    previous_version TEXT,
    reason TEXT NOT NULL,
    created_at REAL NOT NULL,
    decision TEXT,                           -- rollback | resume: final; NULL while open
    decided_by TEXT,
    decided_at REAL,
    notes TEXT NOT NULL DEFAULT '[]'         -- what happened while it was open
);
CREATE TABLE IF NOT EXISTS slack_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Thread:
    incident_id: str
    channel: str
    ts: str | None
    state: str
    opened_at: float
    last_update_at: float


@dataclass(frozen=True)
class Approval:
    deploy_id: str
    incident_id: str
    service: str
    version: str | None
    previous_version: str | None
    reason: str
    decision: str | None
    decided_by: str | None
    decided_at: float | None
    notes: tuple[str, ...]


def _thread(row: sqlite3.Row) -> Thread:
    return Thread(
        row["incident_id"],
        row["channel"],
        row["ts"],
        row["state"],
        row["opened_at"],
        row["last_update_at"],
    )


class SlackStore:
    """The Slack tables of one sqlite file; safe from many threads (one connection each,
    writes serialised with the server's own writers by `write_lock`)."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._local = threading.local()
        self.lock = write_lock(self.path)
        with self.lock:
            Store(self.path)  # the core schema first: incidents and audit live there
            self.conn().executescript(SCHEMA)

    def conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=10, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    def core(self) -> Store:
        """The core store (incidents, audit) on this thread's own connection."""
        store: Store | None = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = Store(self.path)
        return store

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken after the process' write lock."""
        conn = self.conn()
        with self.lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def write(self, sql: str, args: Sequence[Any] = ()) -> int:
        with self.transaction() as conn:
            return int(conn.execute(sql, args).rowcount)

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn().execute(sql, args)]

    # ------------------------------------------------------------------ threads

    def open_thread(self, incident_id: str, channel: str, now: float) -> bool:
        """The incident's thread (once): False when it already had one."""
        return bool(
            self.write(
                "INSERT OR IGNORE INTO slack_threads (incident_id, channel, opened_at,"
                " last_update_at) VALUES (?, ?, ?, ?)",
                (incident_id, channel, now, now),
            )
        )

    def thread(self, incident_id: str) -> Thread | None:
        row = (
            self.conn()
            .execute("SELECT * FROM slack_threads WHERE incident_id = ?", (incident_id,))
            .fetchone()
        )
        return None if row is None else _thread(row)

    def thread_at(self, channel: str, ts: str) -> Thread | None:
        """The incident whose thread starts at this message."""
        row = (
            self.conn()
            .execute("SELECT * FROM slack_threads WHERE channel = ? AND ts = ?", (channel, ts))
            .fetchone()
        )
        return None if row is None else _thread(row)

    def threads(self, state: str) -> list[Thread]:
        rows = self.conn().execute(
            "SELECT * FROM slack_threads WHERE state = ? ORDER BY opened_at", (state,)
        )
        return [_thread(r) for r in rows]

    def set_thread_state(self, incident_id: str, state: str) -> None:
        self.write("UPDATE slack_threads SET state = ? WHERE incident_id = ?", (state, incident_id))

    def touch_thread(self, incident_id: str, now: float) -> None:
        self.write(
            "UPDATE slack_threads SET last_update_at = ? WHERE incident_id = ?", (now, incident_id)
        )

    # ------------------------------------------------------------------ approvals

    def ask_approval(
        self,
        *,
        deploy_id: str,
        incident_id: str,
        service: str,
        version: str | None,
        previous_version: str | None,
        reason: str,
        now: float,
    ) -> bool:
        """Record that a decision is asked for this deploy (once): False if already asked."""
        return bool(
            self.write(
                "INSERT OR IGNORE INTO slack_approvals (deploy_id, incident_id, service, version,"
                " previous_version, reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (deploy_id, incident_id, service, version, previous_version, reason, now),
            )
        )

    def approval(self, deploy_id: str) -> Approval | None:
        row = (
            self.conn()
            .execute("SELECT * FROM slack_approvals WHERE deploy_id = ?", (deploy_id,))
            .fetchone()
        )
        if row is None:
            return None
        return Approval(
            deploy_id=row["deploy_id"],
            incident_id=row["incident_id"],
            service=row["service"],
            version=row["version"],
            previous_version=row["previous_version"],
            reason=row["reason"],
            decision=row["decision"],
            decided_by=row["decided_by"],
            decided_at=row["decided_at"],
            notes=tuple(json.loads(row["notes"])),
        )

    def claim_decision(self, deploy_id: str, decision: str, actor: str, now: float) -> bool:
        """Take the (single, final) decision of an open approval: False if already taken."""
        return bool(
            self.write(
                "UPDATE slack_approvals SET decision = ?, decided_by = ?, decided_at = ?"
                " WHERE deploy_id = ? AND decision IS NULL",
                (decision, actor, now, deploy_id),
            )
        )

    def release_decision(self, deploy_id: str) -> None:
        """The decision could not be carried out (e.g. the guard refused): open it again."""
        self.write(
            "UPDATE slack_approvals SET decision = NULL, decided_by = NULL, decided_at = NULL"
            " WHERE deploy_id = ?",
            (deploy_id,),
        )

    def add_note(self, deploy_id: str, note: str) -> None:
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT notes FROM slack_approvals WHERE deploy_id = ?", (deploy_id,)
            ).fetchone()
            if row is None:
                return
            notes = [*json.loads(row["notes"]), note][-10:]
            conn.execute(
                "UPDATE slack_approvals SET notes = ? WHERE deploy_id = ?",
                (json.dumps(notes), deploy_id),
            )

    # ------------------------------------------------------------------ audit

    def append_audit(self, incident_id: str, events: Sequence[AuditEvent]) -> list[AuditEvent]:
        """Add events at the end of an incident's audit trail, in one transaction (numbered
        after what is there, whoever wrote it)."""
        if not events:
            return []
        with self.transaction() as conn:
            (last,) = conn.execute(
                "SELECT coalesce(max(seq), 0) FROM audit WHERE incident_id = ?", (incident_id,)
            ).fetchone()
            out = [e.model_copy(update={"seq": last + i}) for i, e in enumerate(events, 1)]
            conn.executemany(
                "INSERT INTO audit (incident_id, seq, at, kind, actor, summary, data)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        incident_id,
                        e.seq,
                        e.at,
                        e.kind,
                        e.actor,
                        e.summary,
                        json.dumps(e.data, sort_keys=True, default=str),
                    )
                    for e in out
                ],
            )
        return out

    # ------------------------------------------------------------------ meta

    def meta(self, key: str) -> str | None:
        row = self.conn().execute("SELECT value FROM slack_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        self.write("INSERT OR REPLACE INTO slack_meta (key, value) VALUES (?, ?)", (key, value))
