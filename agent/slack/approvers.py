"""Who may decide a paused rollout (and ask for a pause or rollback): the configured user ids,
and the members of the configured user groups (`usergroups.users.list`, cached a few minutes)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

from agent.slack.settings import SlackSettings

log = logging.getLogger("vigil.slack")

CACHE_S = 300.0


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str


class Approvers:
    def __init__(
        self, settings: SlackSettings, client: WebClient, clock: Callable[[], float]
    ) -> None:
        self.settings = settings
        self.client = client
        self.clock = clock
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def _members(self, group: str) -> frozenset[str] | None:
        now = self.clock()
        with self._lock:
            cached = self._groups.get(group)
        if cached is not None and now - cached[0] < CACHE_S:
            return cached[1]
        try:
            resp = self.client.usergroups_users_list(usergroup=group)
        except (SlackClientError, OSError) as exc:
            log.warning("Slack usergroups.users.list %s failed: %s", group, exc)
            return cached[1] if cached is not None else None
        users = frozenset(str(u) for u in resp.get("users") or [])
        with self._lock:
            self._groups[group] = (now, users)
        return users

    def check(self, user: str) -> Verdict:
        if not self.settings.approvers:
            return Verdict(False, "no approvers are configured (VIGIL_SLACK_APPROVERS)")
        if user in self.settings.approver_users:
            return Verdict(True, "a named approver")
        unknown = []
        for group in self.settings.approver_groups:
            members = self._members(group)
            if members is None:
                unknown.append(group)
            elif user in members:
                return Verdict(True, f"a member of <!subteam^{group}>")
        if unknown:
            return Verdict(False, "the approver group could not be read from Slack; try again")
        return Verdict(False, "only approvers may decide this")
