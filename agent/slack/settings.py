"""Slack settings, read from the environment in one place and passed down.

SLACK_BOT_TOKEN        the bot token (xoxb-...): every Web API call
SLACK_SIGNING_SECRET   verifies HTTP requests from Slack (POST /slack/events)
SLACK_APP_TOKEN        the app-level token (xapp-...): Socket Mode only
VIGIL_SLACK_API_URL    base URL of the Web API (default Slack's own; ends with `/`)
VIGIL_SLACK_CHANNEL    the default channel for incident threads
VIGIL_SLACK_CHANNELS   JSON {"service" or "service:severity": "C123"}; the most specific wins
VIGIL_SLACK_APPROVERS  comma-separated user ids (U.../W...) or user group ids (S...)
VIGIL_SLACK_UPDATE_MINUTES  minutes between updates of an active incident (default 15)
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from agent.errors import ConfigError

SLACK_API_URL = "https://slack.com/api/"
_ID = re.compile(r"^[A-Z0-9]{2,}$")


class SlackSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    bot_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    app_token: SecretStr | None = None
    api_url: str = SLACK_API_URL
    channel: str | None = None
    channels: dict[str, str] = Field(default_factory=dict)
    approvers: tuple[str, ...] = ()
    update_minutes: float = Field(15.0, gt=0)
    # In-line retries of one Web API call; what still fails waits in the outbox.
    retries: int = Field(2, ge=0, le=10)
    retry_wait_s: float = Field(0.5, ge=0)
    # A Retry-After longer than this is not slept through: the outbox waits instead.
    max_inline_wait_s: float = Field(3.0, ge=0)
    timeout_s: float = Field(10.0, gt=0)

    @field_validator("api_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL: {value!r}")
        return value if value.endswith("/") else value + "/"

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: dict[str, str]) -> dict[str, str]:
        out = {}
        for key, channel in value.items():
            service, sep, severity = key.partition(":")
            out[f"{service}:{severity.lower()}" if sep else service] = channel
        return out

    @field_validator("approvers")
    @classmethod
    def _approvers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [v for v in value if not _ID.match(v)]
        if bad:
            raise ValueError(f"not Slack user or group ids: {', '.join(bad)}")
        return value

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SlackSettings:
        """The settings from `env` (default the process environment); `ConfigError` names
        the variable that is wrong."""
        e = os.environ if env is None else env
        raw_channels = e.get("VIGIL_SLACK_CHANNELS", "").strip()
        try:
            channels = json.loads(raw_channels) if raw_channels else {}
        except ValueError as exc:
            raise ConfigError(f"VIGIL_SLACK_CHANNELS: not JSON: {exc}") from None
        if not isinstance(channels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in channels.items()
        ):
            raise ConfigError(
                'VIGIL_SLACK_CHANNELS: expected a JSON object {"service[:severity]": "C123"}'
            )
        values: dict[str, object] = {
            "bot_token": e.get("SLACK_BOT_TOKEN") or None,
            "signing_secret": e.get("SLACK_SIGNING_SECRET") or None,
            "app_token": e.get("SLACK_APP_TOKEN") or None,
            "api_url": e.get("VIGIL_SLACK_API_URL") or SLACK_API_URL,
            "channel": e.get("VIGIL_SLACK_CHANNEL") or None,
            "channels": channels,
            "approvers": tuple(
                a.strip() for a in e.get("VIGIL_SLACK_APPROVERS", "").split(",") if a.strip()
            ),
        }
        if e.get("VIGIL_SLACK_UPDATE_MINUTES"):
            values["update_minutes"] = e["VIGIL_SLACK_UPDATE_MINUTES"]
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            name = _ENV_NAMES.get(str(first["loc"][0]) if first["loc"] else "", "Slack settings")
            raise ConfigError(f"{name}: {first['msg']}") from None

    @property
    def http_ready(self) -> bool:
        """Enough to serve POST /slack/events: a bot token and a signing secret."""
        return self.bot_token is not None and self.signing_secret is not None

    @property
    def socket_ready(self) -> bool:
        """Enough for Socket Mode: a bot token and an app-level token."""
        return self.bot_token is not None and self.app_token is not None

    def channel_for(self, service: str, severity: str | None = None) -> str | None:
        """`service:severity`, then `service`, then the default channel."""
        if severity:
            found = self.channels.get(f"{service}:{severity.lower()}")
            if found:
                return found
        return self.channels.get(service) or self.channel

    @property
    def approver_users(self) -> frozenset[str]:
        return frozenset(a for a in self.approvers if not a.startswith("S"))

    @property
    def approver_groups(self) -> tuple[str, ...]:
        return tuple(a for a in self.approvers if a.startswith("S"))


_ENV_NAMES = {
    "api_url": "VIGIL_SLACK_API_URL",
    "approvers": "VIGIL_SLACK_APPROVERS",
    "update_minutes": "VIGIL_SLACK_UPDATE_MINUTES",
    "channel": "VIGIL_SLACK_CHANNEL",
}
