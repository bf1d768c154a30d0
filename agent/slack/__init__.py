"""Vigil in Slack: incident threads, on-call chat, `/vigil`, approvals of paused rollouts.

`mount_slack` serves the app at `POST /slack/events` in `vigil serve`; `vigil slack --socket`
serves it over Socket Mode. Everything posted goes through a durable outbox in the store.

The names below load on first use: importing `agent.slack.cli` (as the `vigil` command does)
must not load slack-bolt into a server that has no Slack configured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.slack.app import SlackBridge, mount_slack, socket_handler
    from agent.slack.settings import SlackSettings

__all__ = ["SlackBridge", "SlackSettings", "mount_slack", "socket_handler"]


def __getattr__(name: str) -> Any:
    if name == "SlackSettings":
        from agent.slack.settings import SlackSettings

        return SlackSettings
    if name in ("SlackBridge", "mount_slack", "socket_handler"):
        from agent.slack import app

        return getattr(app, name)
    raise AttributeError(f"module 'agent.slack' has no attribute {name!r}")
