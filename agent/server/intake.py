"""Durable intake: a webhook is acknowledged only once it is committed to sqlite.

Every accepted webhook becomes rows in one transaction: the alerts (keyed by fingerprint and
startsAt, so Alertmanager's re-sends change nothing) or the deploy event (keyed by its dedup
key), and a job for the workers. WAL with synchronous=NORMAL: a committed row survives the
process being killed (`kill -9`); workers claim jobs with one atomic UPDATE, and a restart
puts jobs that were running back to pending.
"""

from __future__ import annotations

import gc
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from agent.alerts import SERVICE_LABELS, AlertmanagerPayload
from agent.store import Store

T = TypeVar("T")


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    received_at: float


@dataclass(frozen=True)
class AlertAck:
    job_id: int | None
    new: int  # alerts seen for the first time (firing or resolved)
    updated: int  # known alerts whose status changed (e.g. resolved)
    duplicates: int  # re-sends that changed nothing


@dataclass(frozen=True)
class DeployAck:
    job_id: int | None
    duplicate: bool


def _service_of(payload: AlertmanagerPayload) -> str:
    labels = {**payload.alerts[0].labels, **payload.commonLabels}
    return next((labels[k] for k in SERVICE_LABELS if labels.get(k)), "unknown")


def fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's fingerprint when the payload lacks one: a hash of the label set."""
    canonical = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


_WRITE_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


class _GcPause:
    """No garbage collection while sqlite's write lock is held. A full collection in a big
    process takes 20-150 ms; inside a transaction it would hold every acknowledgement, of
    both processes, for that long. Counted, so overlapping holders in one process are safe,
    and collection is re-enabled only if it was enabled before."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._holds = 0
        self._was_enabled = True

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._guard:
            if self._holds == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._holds += 1
        try:
            yield
        finally:
            with self._guard:
                self._holds -= 1
                if self._holds == 0 and self._was_enabled:
                    gc.enable()


gc_paused = _GcPause()


def write_lock(path: str) -> threading.Lock:
    """One lock per database file in this process. Writers take it before sqlite's own lock,
    so a writer waits on a condition variable (microseconds) instead of sqlite's busy handler,
    which sleeps in steps of up to 100 ms and shows up as ack latency spikes."""
    with _LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(str(Path(path).resolve()), threading.Lock())


class Intake:
    """The jobs, alerts and deploy tables of one sqlite file; safe to use from many threads
    (each thread gets its own connection; writers are serialised by `write_lock`)."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        Store(path)  # creates the file and applies migrations
        self._local = threading.local()
        self.lock = write_lock(self.path)

    def locked(self, fn: Callable[[], T]) -> T:
        """Run a write under this process' lock; if another process holds sqlite's write lock,
        poll for it every 0.2 ms (sqlite's own busy handler sleeps up to 100 ms at a time,
        which an acknowledgement cannot afford). `fn` must be one transaction or statement."""
        deadline = time.monotonic() + 30.0
        with self.lock, gc_paused():
            while True:
                try:
                    return fn()
                except sqlite3.OperationalError as exc:
                    text = str(exc)
                    if ("locked" not in text and "busy" not in text) or (
                        time.monotonic() > deadline
                    ):
                        raise
                time.sleep(0.0002)

    def write(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        """One write statement (its own transaction); returns the rows changed."""
        return self.locked(lambda: int(self._conn().execute(sql, args).rowcount))

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=0, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # durable against a process crash
            # No connection checkpoints on commit (an acknowledgement would pay for copying
            # the WAL into the database); the workers checkpoint in the background instead.
            conn.execute("PRAGMA wal_autocheckpoint=0")
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    # ------------------------------------------------------------------ writes (acknowledged)

    def accept_alerts(self, payload: AlertmanagerPayload, now: float) -> AlertAck:
        conn = self._conn()
        return self.locked(lambda: self._accept_alerts(conn, payload, now, []))

    def _accept_alerts(
        self, conn: sqlite3.Connection, payload: AlertmanagerPayload, now: float, fresh: list[str]
    ) -> AlertAck:
        new = updated = duplicates = 0
        conn.execute("BEGIN IMMEDIATE")
        try:
            for alert in payload.alerts:
                fp = alert.fingerprint or fingerprint(alert.labels)
                starts = alert.startsAt.isoformat()
                labels = {**payload.commonLabels, **alert.labels}
                service = next((labels[k] for k in SERVICE_LABELS if labels.get(k)), None)
                row = conn.execute(
                    "SELECT status FROM alerts WHERE fingerprint = ? AND starts_at = ?",
                    (fp, starts),
                ).fetchone()
                ends = alert.endsAt.isoformat() if alert.endsAt else None
                if row is None:
                    conn.execute(
                        "INSERT INTO alerts (fingerprint, starts_at, status, alertname, service,"
                        " severity, labels, annotations, ends_at, received_at, updated_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            fp,
                            starts,
                            alert.status,
                            labels.get("alertname"),
                            service,
                            labels.get("severity"),
                            json.dumps(alert.labels, sort_keys=True),
                            json.dumps(alert.annotations, sort_keys=True),
                            ends,
                            now,
                            now,
                        ),
                    )
                    new += 1
                    if alert.status == "firing":
                        fresh.append(f"{fp}@{starts}")
                elif row["status"] != alert.status:
                    conn.execute(
                        "UPDATE alerts SET status = ?, ends_at = ?, updated_at = ?"
                        " WHERE fingerprint = ? AND starts_at = ?",
                        (alert.status, ends, now, fp, starts),
                    )
                    updated += 1
                else:
                    duplicates += 1
            job_id = None
            if fresh:
                # A storm of alerts for one service is one investigation: while a triage of
                # that service is still queued, new alerts join it instead of queueing more.
                group = _service_of(payload)
                pending = conn.execute(
                    "SELECT id FROM jobs WHERE kind = 'alert' AND status = 'pending'"
                    " AND service = ? ORDER BY id LIMIT 1",
                    (group,),
                ).fetchone()
                if pending is not None:
                    job_id = int(pending["id"])
                else:
                    digest = hashlib.sha256("|".join(sorted(fresh)).encode()).hexdigest()
                    body = {"payload": payload.model_dump(mode="json"), "alerts": sorted(fresh)}
                    job_id = self._enqueue(conn, "alert", "alert:" + digest, body, now, group)
                conn.executemany(
                    "UPDATE alerts SET job_id = ? WHERE fingerprint = ? AND starts_at = ?",
                    [(job_id, *key.split("@", 1)) for key in fresh],
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return AlertAck(job_id, new, updated, duplicates)

    def accept_deploy(self, event: dict[str, Any], dedup: str, now: float) -> DeployAck:
        """Record a deploy event (a DeployEvent's JSON) and queue it, unless already seen."""
        conn = self._conn()
        return self.locked(lambda: self._accept_deploy(conn, event, dedup, now))

    def _accept_deploy(
        self, conn: sqlite3.Connection, event: dict[str, Any], dedup: str, now: float
    ) -> DeployAck:
        conn.execute("BEGIN IMMEDIATE")
        try:
            seen = conn.execute(
                "INSERT OR IGNORE INTO deploy_events (dedup, deploy_id, kind, source, at,"
                " received_at) VALUES (?, ?, ?, ?, ?, ?)",
                (dedup, event["deploy_id"], event["kind"], event["source"], event["at"], now),
            ).rowcount
            if not seen:
                conn.execute("COMMIT")
                return DeployAck(None, True)
            finished = event["at"] if event["kind"] in ("succeeded", "rolled_back") else None
            conn.execute(
                "INSERT INTO deploys (id, service, environment, version, previous_version,"
                " strategy, commit_sha, source, status, started_at, finished_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
                " finished_at = COALESCE(excluded.finished_at, deploys.finished_at),"
                " previous_version = COALESCE(deploys.previous_version, excluded.previous_version),"
                " updated_at = excluded.updated_at",
                (
                    event["deploy_id"],
                    event["service"],
                    event.get("environment"),
                    event["version"],
                    event.get("previous_version"),
                    event.get("strategy"),
                    event.get("commit"),
                    event["source"],
                    event["kind"],
                    event["started_at"],
                    finished,
                    now,
                ),
            )
            job_id = self._enqueue(conn, "deploy", "deploy:" + dedup, event, now)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return DeployAck(job_id, False)

    def _enqueue(
        self,
        conn: sqlite3.Connection,
        kind: str,
        dedup: str,
        body: dict[str, Any],
        now: float,
        service: str | None = None,
    ) -> int:
        cur = conn.execute(
            "INSERT INTO jobs (kind, dedup, received_at, payload, service) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (dedup) DO NOTHING",
            (kind, dedup, now, json.dumps(body, separators=(",", ":")), service),
        )
        if cur.rowcount:
            return int(cur.lastrowid or 0)
        row = conn.execute("SELECT id FROM jobs WHERE dedup = ?", (dedup,)).fetchone()
        return int(row["id"])

    # ------------------------------------------------------------------ workers

    def claim_many(self, now: float, limit: int) -> list[Job]:
        """Take up to `limit` of the oldest pending jobs in one transaction."""
        rows = self.locked(
            lambda: (
                self._conn()
                .execute(
                    "UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = ?"
                    " WHERE id IN (SELECT id FROM jobs WHERE status = 'pending' ORDER BY id"
                    " LIMIT ?) RETURNING id, kind, payload, attempts, received_at",
                    (now, limit),
                )
                .fetchall()
            )
        )
        jobs = [
            Job(
                int(r["id"]),
                str(r["kind"]),
                json.loads(r["payload"]),
                int(r["attempts"]),
                float(r["received_at"]),
            )
            for r in rows
        ]
        return sorted(jobs, key=lambda j: j.id)

    def finish_many(self, done: list[tuple[int, Any, str | None]], now: float) -> None:
        """Finish jobs (id, result, error) and link their alerts to the result's incident, in
        one transaction: a worker writes once per batch, not three times per job."""
        if not done:
            return
        self.locked(lambda: self._finish_many(done, now))

    def _finish_many(self, done: list[tuple[int, Any, str | None]], now: float) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "UPDATE jobs SET status = ?, finished_at = ?, result = ?, error = ? WHERE id = ?",
                [
                    (
                        "failed" if error else "done",
                        now,
                        None if result is None else json.dumps(result),
                        error,
                        job_id,
                    )
                    for job_id, result, error in done
                ],
            )
            conn.executemany(
                "UPDATE alerts SET incident_id = ? WHERE job_id = ?",
                [
                    (result["incident_id"], job_id)
                    for job_id, result, _ in done
                    if isinstance(result, dict) and result.get("incident_id")
                ],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def claim(self, now: float) -> Job | None:
        """Take the oldest pending job (atomically: two workers never get the same one)."""
        row = self.locked(lambda: self._claim(now))
        if row is None:
            return None
        return Job(
            int(row["id"]),
            str(row["kind"]),
            json.loads(row["payload"]),
            int(row["attempts"]),
            float(row["received_at"]),
        )

    def _claim(self, now: float) -> sqlite3.Row | None:
        row: sqlite3.Row | None = (
            self._conn()
            .execute(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = ?"
                " WHERE id = (SELECT id FROM jobs WHERE status = 'pending' ORDER BY id LIMIT 1)"
                " RETURNING id, kind, payload, attempts, received_at",
                (now,),
            )
            .fetchone()
        )
        return row

    def retry_later(self, job_id: int, error: str) -> None:
        self.write("UPDATE jobs SET status = 'pending', error = ? WHERE id = ?", (error, job_id))

    def recover(self) -> int:
        """After a crash: jobs that were running go back to pending."""
        cur = self._conn().execute("UPDATE jobs SET status = 'pending' WHERE status = 'running'")
        return int(cur.rowcount)

    def checkpoint(self) -> None:
        """Copy the WAL into the database without blocking anyone (PASSIVE)."""
        self._conn().execute("PRAGMA wal_checkpoint(PASSIVE)")

    # ------------------------------------------------------------------ reads

    def depth(self) -> int:
        row = (
            self._conn()
            .execute("SELECT count(*) FROM jobs WHERE status IN ('pending', 'running')")
            .fetchone()
        )
        return int(row[0])

    def alerts(self, limit: int = 1000, service: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM alerts"
        args: list[Any] = []
        if service:
            sql += " WHERE service = ?"
            args.append(service)
        sql += " ORDER BY received_at, fingerprint LIMIT ?"
        args.append(limit)
        out = []
        for row in self._conn().execute(sql, args):
            item = dict(row)
            item["labels"] = json.loads(item["labels"])
            item["annotations"] = json.loads(item["annotations"])
            out.append(item)
        return out

    def jobs(self, status: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        sql = "SELECT id, kind, dedup, received_at, status, attempts, error FROM jobs"
        args: list[Any] = []
        if status:
            sql += " WHERE status = ?"
            args.append(status)
        sql += " ORDER BY id LIMIT ?"
        args.append(limit)
        return [dict(r) for r in self._conn().execute(sql, args)]

    def deploys(
        self, service: str | None = None, since: float = 0.0, until: float = float("inf")
    ) -> list[dict[str, Any]]:
        sql = "SELECT * FROM deploys WHERE started_at BETWEEN ? AND ?"
        args: list[Any] = [since, until if until != float("inf") else 1e18]
        if service:
            sql += " AND service = ?"
            args.append(service)
        sql += " ORDER BY started_at DESC"
        return [dict(r) for r in self._conn().execute(sql, args)]

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
