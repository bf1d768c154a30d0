"""The durable outbox: every Slack message is a row first, then a Web API call.

Whoever has something to say (a triage, a deploy watch action, a button press) queues it and
moves on; `flush` posts what is due. A call that fails after the client's own retries stays
queued with its error and is tried again later (after Retry-After, or with a growing delay),
so Slack being slow or down never holds up triage or an action.

Order is kept per thread: a message waits until every earlier message of its incident's
thread has been posted (or given up), and the first one that lands is the thread's parent;
the others are posted as replies to it (`thread_ts`). Rows are claimed one by one with an
atomic update, so two processes flushing the same file never post a message twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.slack.records import SlackStore

log = logging.getLogger("vigil.slack")

Clock = Callable[[], float]

MAX_ATTEMPTS = 50  # transient failures (5xx, 429, network): about four hours at the cap
MAX_PERMANENT_ATTEMPTS = 3  # Slack said no (channel_not_found, invalid_blocks, ...)
BACKOFF_CAP_S = 300.0
STALE_CLAIM_S = 120.0  # a flusher that died while posting: its row is tried again


@dataclass(frozen=True)
class Delivery:
    """Where a message landed."""

    channel: str
    ts: str


class PostFailed(Exception):
    """A Web API call failed for good (after the client's in-line retries)."""

    def __init__(self, message: str, *, transient: bool, retry_after: float | None = None):
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after


Poster = Callable[[str, dict[str, Any]], Delivery]


@dataclass(frozen=True)
class FlushReport:
    sent: int = 0
    failed: int = 0  # attempts that failed this time (the row stays queued or is given up)
    waiting: int = 0  # rows not due yet, or held behind an earlier message of their thread


class Outbox:
    def __init__(self, store: SlackStore, poster: Poster, clock: Clock) -> None:
        self.store = store
        self.poster = poster
        self.clock = clock

    def enqueue(
        self,
        method: str,
        payload: dict[str, Any],
        *,
        thread: str | None = None,
        key: str | None = None,
        ref: str | None = None,
    ) -> int | None:
        """Queue one call; with `key`, at most once (None when that key was queued before).
        A `thread` message goes to the incident's thread (see `SlackStore.open_thread`)."""
        if thread is not None and self.store.thread(thread) is None:
            raise ValueError(f"no Slack thread opened for {thread!r}")
        with self.store.transaction() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO slack_outbox (key, thread, ref, method, payload,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (key, thread, ref, method, json.dumps(payload), self.clock()),
            )
            return int(cur.lastrowid or 0) if cur.rowcount else None

    def queued(self, key: str) -> bool:
        """Was a message with this key queued (whatever became of it)?"""
        row = self.store.conn().execute("SELECT 1 FROM slack_outbox WHERE key = ?", (key,))
        return row.fetchone() is not None

    def posted(self, ref: str) -> Delivery | None:
        """Where the message queued under `ref` landed (None while it has not)."""
        row = (
            self.store.conn()
            .execute(
                "SELECT channel, ts FROM slack_outbox WHERE ref = ? AND status = 'sent'"
                " ORDER BY id LIMIT 1",
                (ref,),
            )
            .fetchone()
        )
        return None if row is None else Delivery(row["channel"], row["ts"])

    def pending(self) -> list[dict[str, Any]]:
        return self.store.rows(
            "SELECT id, key, thread, method, status, attempts, next_at, error FROM slack_outbox"
            " WHERE status IN ('pending', 'posting') ORDER BY id"
        )

    # ------------------------------------------------------------------ flushing

    def flush(self, *, limit: int = 200) -> FlushReport:
        """Post what is due, oldest first, keeping each thread's order."""
        now = self.clock()
        self.store.write(
            "UPDATE slack_outbox SET status = 'pending' WHERE status = 'posting'"
            " AND claimed_at < ?",
            (now - STALE_CLAIM_S,),
        )
        rows = self.store.rows(
            "SELECT * FROM slack_outbox WHERE status = 'pending' ORDER BY id LIMIT ?", (limit,)
        )
        held: set[str] = set()
        sent = failed = waiting = 0
        for row in rows:
            thread = row["thread"]
            if thread is not None and (thread in held or self._behind(row)):
                held.add(thread)
                waiting += 1
                continue
            if row["next_at"] > now or not self._claim(row["id"], now):
                if thread is not None:
                    held.add(thread)
                waiting += 1
                continue
            if self._post(row, now):
                sent += 1
            else:
                failed += 1
                if thread is not None:
                    held.add(thread)
        return FlushReport(sent, failed, waiting)

    def _behind(self, row: dict[str, Any]) -> bool:
        """Is an earlier message of the same thread still unposted?"""
        found = (
            self.store.conn()
            .execute(
                "SELECT 1 FROM slack_outbox WHERE thread = ? AND id < ?"
                " AND status IN ('pending', 'posting') LIMIT 1",
                (row["thread"], row["id"]),
            )
            .fetchone()
        )
        return found is not None

    def _claim(self, row_id: int, now: float) -> bool:
        return bool(
            self.store.write(
                "UPDATE slack_outbox SET status = 'posting', claimed_at = ?"
                " WHERE id = ? AND status = 'pending'",
                (now, row_id),
            )
        )

    def _resolve(self, row: dict[str, Any]) -> tuple[dict[str, Any], bool] | None:
        """The call's arguments with the thread (and the message to update) filled in; the
        flag says this message becomes its thread's parent. None: not postable yet."""
        payload: dict[str, Any] = json.loads(row["payload"])
        target = payload.pop("_update_ref", None)
        if target is not None:
            where = self.posted(str(target))
            if where is None:
                return None
            payload["channel"], payload["ts"] = where.channel, where.ts
        parent = False
        if row["thread"] is not None:
            thread = self.store.thread(row["thread"])
            if thread is None:
                return None
            payload.setdefault("channel", thread.channel)
            if row["method"] == "chat.postMessage":
                if thread.ts is None:
                    parent = True
                else:
                    payload["thread_ts"] = thread.ts
        return payload, parent

    def _post(self, row: dict[str, Any], now: float) -> bool:
        resolved = self._resolve(row)
        if resolved is None:
            self._retry(row, now, "the message it refers to is not posted yet", True, None)
            return False
        payload, parent = resolved
        try:
            where = self.poster(row["method"], payload)
        except PostFailed as exc:
            self._retry(row, now, str(exc), exc.transient, exc.retry_after)
            return False
        except Exception as exc:  # a bug or an unexpected client error: keep the message
            log.exception("posting outbox row %s", row["id"])
            self._retry(row, now, f"{type(exc).__name__}: {exc}", True, None)
            return False
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE slack_outbox SET status = 'sent', sent_at = ?, channel = ?, ts = ?,"
                " attempts = attempts + 1, error = NULL WHERE id = ?",
                (self.clock(), where.channel, where.ts, row["id"]),
            )
            if parent:
                conn.execute(
                    "UPDATE slack_threads SET ts = ?, channel = ? WHERE incident_id = ?"
                    " AND ts IS NULL",
                    (where.ts, where.channel, row["thread"]),
                )
        return True

    def _retry(
        self,
        row: dict[str, Any],
        now: float,
        error: str,
        transient: bool,
        retry_after: float | None,
    ) -> None:
        attempts = int(row["attempts"]) + 1
        limit = MAX_ATTEMPTS if transient else MAX_PERMANENT_ATTEMPTS
        delay = min(5.0 * 2 ** (attempts - 1), BACKOFF_CAP_S)
        if retry_after is not None:
            delay = max(delay, retry_after)
        status = "failed" if attempts >= limit else "pending"
        log.warning("slack %s (outbox row %s): %s", row["method"], row["id"], error)
        self.store.write(
            "UPDATE slack_outbox SET status = ?, attempts = ?, error = ?, next_at = ? WHERE id = ?",
            (status, attempts, error[:500], now + delay, row["id"]),
        )
