"""The feed from the workers to Slack: what they recorded since the last look.

The workers run in their own process and write incidents and deploy-watch actions to sqlite;
the feed reads them from there (cursors on rowid in `slack_meta`), so the workers need no
Slack code and a restart of either side loses nothing. The first look starts at the end:
incidents from before Slack was configured are not posted.
"""

from __future__ import annotations

import json
from typing import Any

from agent.slack.incidents import view_of
from agent.slack.notifier import SlackNotifier
from agent.slack.records import SlackStore

# Incidents Slack does not open a thread for: a deploy watch speaks through its actions, and
# an incident opened by a Slack command is answered where it was asked.
_QUIET_MODES = frozenset({"watch", "slack"})
WAIT_FOR_INCIDENT_S = 60.0


class SlackFeed:
    def __init__(self, store: SlackStore, notifier: SlackNotifier) -> None:
        self.store = store
        self.notifier = notifier

    def _max_rowid(self, table: str) -> int:
        (found,) = (
            self.store.conn().execute(f"SELECT coalesce(max(rowid), 0) FROM {table}").fetchone()
        )
        return int(found)

    def mark(self) -> None:
        """Start at the end, the first time only: what came before is not posted."""
        for key, table in (
            ("feed.incidents", "incidents"),
            ("feed.watch_actions", "watch_actions"),
        ):
            if self.store.meta(key) is None:
                self.store.set_meta(key, str(self._max_rowid(table)))

    def scan(self) -> int:
        """Queue messages for what is new; returns how many records were new."""
        self.mark()
        inc_cursor = self.store.meta("feed.incidents") or "0"
        act_cursor = self.store.meta("feed.watch_actions") or "0"
        seen = 0
        rows = self.store.rows(
            "SELECT rowid AS r, id, result, created_at FROM incidents WHERE rowid > ?"
            " ORDER BY rowid",
            (int(inc_cursor),),
        )
        for row in rows:
            result = json.loads(row["result"])
            v = view_of(result, created_at=row["created_at"])
            if v is not None and v.mode not in _QUIET_MODES:
                seen += int(self.notifier.incident(v))
            self.store.set_meta("feed.incidents", str(row["r"]))
        actions = self.store.rows(
            "SELECT rowid AS r, deploy_id, seq, at, action, status, detail FROM watch_actions"
            " WHERE rowid > ? AND actor = 'vigil' ORDER BY rowid",
            (int(act_cursor),),
        )
        for row in actions:
            if not self._recorded(row):
                break  # the worker is still writing this step: next time
            if row["action"] != "notify" or not self._acted_with(row):
                self.notifier.watch_action(
                    row["deploy_id"],
                    row["action"],
                    row["status"],
                    row["detail"],
                    key=f"watch:{row['deploy_id']}:{row['seq']}",
                )
                seen += 1
            self.store.set_meta("feed.watch_actions", str(row["r"]))
        return seen

    def _recorded(self, row: dict[str, Any]) -> bool:
        """The workers store the watch's incident right after its actions; wait for it (a
        worker that died in between is not waited for long)."""
        if row["at"] < self.notifier.clock() - WAIT_FOR_INCIDENT_S:
            return True
        found = self.store.conn().execute(
            "SELECT 1 FROM incidents WHERE id = ?", (f"watch-{row['deploy_id']}",)
        )
        return found.fetchone() is not None

    def _acted_with(self, row: dict[str, Any]) -> bool:
        """A notification sent with a pause or rollback says what that message says."""
        found = (
            self.store.conn()
            .execute(
                "SELECT 1 FROM watch_actions WHERE deploy_id = ? AND at = ? AND action IN"
                " ('pause_rollout', 'rollback') LIMIT 1",
                (row["deploy_id"], row["at"]),
            )
            .fetchone()
        )
        return found is not None
