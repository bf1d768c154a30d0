"""Vigil in Slack: incident threads, on-call chat, `/vigil`, approvals of paused rollouts.

`mount_slack` serves the app at `POST /slack/events` in `vigil serve`; `vigil slack --socket`
serves it over Socket Mode. Everything posted goes through a durable outbox in the store.
"""

from agent.slack.app import SlackBridge, mount_slack, socket_handler
from agent.slack.settings import SlackSettings

__all__ = ["SlackBridge", "SlackSettings", "mount_slack", "socket_handler"]
