"""PagerDuty as the escalator, over the Events API v2 (`POST /v2/enqueue`).

`escalate` sends a `trigger` event: the integration's `routing_key`, a `dedup_key` (by default
one per service, `vigil/<service>`, so repeated escalations of one incident update one alert
instead of paging again; pass the incident's own key as `dedup_key=`), and a payload with the
summary (cut to PagerDuty's 1,024 characters; the full text goes to `custom_details`), the
`source`, the severity mapped to PagerDuty's critical / error / warning / info, the service as
`component`, and the time. `acknowledge` and `resolve` send the follow-up events for a key.

`notify` is a no-op on purpose and says so (changed=False): every PagerDuty alert event can
page someone (an `info` alert still opens an incident on a service with the default high
urgency), while a notification promises not to page. Send updates to a chat channel instead.

PagerDuty answers 202 `{"status": "success", "message": ..., "dedup_key": ...}` (the key it
used is reported back); 400 `{"status": "invalid event", "message": ..., "errors": [...]}` is
reported with PagerDuty's errors and not retried; 429 is retried honouring `Retry-After`, 5xx
and network errors with a capped exponential backoff. Any failure, and running out of tries,
raises `SourceUnavailable("pagerduty: ...")`; the routing key never appears in a message.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.backends.base import ActionOutcome, SourceUnavailable
from agent.errors import ConfigError
from tools.backends.http import (
    Backoff,
    GaveUp,
    Retry,
    network_failure,
    retried,
    tries_text,
    unless_busy,
)

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
SUMMARY_CHARS = 1024  # PagerDuty's limit on payload.summary
DEDUP_KEY_CHARS = 255  # ... and on dedup_key
_ERROR_CHARS = 300

Severity = Literal["critical", "error", "warning", "info"]
EventAction = Literal["trigger", "acknowledge", "resolve"]

# Severities as alerting rules and people write them, in PagerDuty's four words.
_SEVERITIES: dict[str, Severity] = {
    **dict.fromkeys(("critical", "crit", "fatal", "emergency", "emerg", "page"), "critical"),
    **dict.fromkeys(("p1", "sev1", "s1"), "critical"),
    **dict.fromkeys(("error", "err", "high", "major", "p2", "sev2", "s2"), "error"),
    **dict.fromkeys(("warning", "warn", "medium", "minor", "p3", "sev3", "s3"), "warning"),
    **dict.fromkeys(("info", "information", "informational", "notice", "low"), "info"),
    **dict.fromkeys(("p4", "p5", "sev4", "sev5", "s4", "s5", "none", "ok"), "info"),
}


def pagerduty_severity(severity: str) -> Severity:
    """PagerDuty's severity for one of ours. An unknown word maps to `error`: an escalation
    still pages rather than being quietly downgraded to `info`."""
    word = severity.strip().lower().replace("-", "").replace(" ", "")
    return _SEVERITIES.get(word, "error")


def default_dedup_key(service: str) -> str:
    """One alert per service: later escalations of the same service update it."""
    return f"vigil/{service}"


def _fit_dedup_key(key: str) -> str:
    """A key PagerDuty accepts (at most 255 characters); a longer one is hashed, the same way
    every time, so acknowledge and resolve still find the alert."""
    if len(key) <= DEDUP_KEY_CHARS:
        return key
    return "vigil/sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True)

    summary: str = Field(max_length=SUMMARY_CHARS)
    source: str
    severity: Severity
    component: str
    timestamp: str
    custom_details: dict[str, Any]


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True)

    routing_key: str
    event_action: EventAction
    dedup_key: str = Field(max_length=DEDUP_KEY_CHARS)
    payload: _Payload | None = None


class _Answer(BaseModel):
    status: str | None = None
    message: str | None = None
    dedup_key: str | None = None
    errors: list[Any] = Field(default_factory=list)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class PagerDutyEscalator:
    """`Escalator` over PagerDuty's Events API v2. `calls` lists every outcome."""

    def __init__(
        self,
        routing_key: str,
        *,
        client: httpx.Client,
        url: str = EVENTS_URL,
        source: str = "vigil",
        dedup_key_for: Callable[[str], str] = default_dedup_key,
        attempts: int = 4,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        timeout_s: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if not routing_key.strip():
            raise ConfigError("pagerduty: the routing key is empty")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"pagerduty: URL must be http(s)://host[:port]/path, not {url!r}")
        if attempts < 1:
            raise ConfigError("pagerduty: attempts must be at least 1")
        self._routing_key = routing_key
        self._client = client
        self.url = url
        port = f":{parts.port}" if parts.port else ""
        self.where = f"{parts.hostname}{port}{parts.path}"
        self.source = source
        self.dedup_key_for = dedup_key_for
        self._backoff = Backoff(attempts, backoff_s, max_backoff_s, sleep)
        self.timeout_s = timeout_s
        self._clock = clock
        self._services: dict[str, str] = {}  # dedup key -> service, for ack/resolve outcomes
        self.calls: list[ActionOutcome] = []

    # Escalator

    def escalate(
        self,
        service: str,
        summary: str,
        severity: str,
        *,
        dedup_key: str | None = None,
        custom_details: dict[str, Any] | None = None,
    ) -> ActionOutcome:
        """Trigger (or update) the alert for `dedup_key`, by default the service's."""
        key = _fit_dedup_key(dedup_key or self.dedup_key_for(service))
        level = pagerduty_severity(severity)
        details: dict[str, Any] = {"service": service, "severity": severity}
        if len(summary) > SUMMARY_CHARS:
            details["summary"] = summary
        details.update(custom_details or {})
        moment = self._clock()
        at = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
        payload = _Payload(
            summary=_cut(summary, SUMMARY_CHARS),
            source=self.source,
            severity=level,
            component=service,
            timestamp=at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            custom_details=details,
        )
        used = self._send(_Event(**self._base("trigger", key), payload=payload))
        self._services[used] = service
        detail = f"paged PagerDuty ({level}, dedup key {used}): {payload.summary}"
        return self._outcome("escalate", service, detail)

    def notify(self, service: str, message: str) -> ActionOutcome:
        """Not sent: see the module docstring (PagerDuty events page; notifications must not)."""
        detail = (
            "not sent: PagerDuty alerts page people and a notification must not; "
            "send updates to a chat channel"
        )
        return self._outcome("notify", service, detail, changed=False)

    # Follow-up events

    def acknowledge(self, dedup_key: str, *, service: str | None = None) -> ActionOutcome:
        """Someone is on it: the alert for `dedup_key` stops notifying."""
        return self._follow_up("acknowledge", dedup_key, service, "acknowledged")

    def resolve(self, dedup_key: str, *, service: str | None = None) -> ActionOutcome:
        """The problem is fixed: the alert for `dedup_key` is resolved."""
        return self._follow_up("resolve", dedup_key, service, "resolved")

    def _follow_up(
        self, action: EventAction, dedup_key: str, service: str | None, done: str
    ) -> ActionOutcome:
        key = _fit_dedup_key(dedup_key)
        used = self._send(_Event(**self._base(action, key)))
        name = service or self._services.get(used) or self._services.get(key) or "unknown"
        return self._outcome(action, name, f"{done} the PagerDuty alert {used}")

    def _base(self, action: EventAction, key: str) -> dict[str, Any]:
        return {"routing_key": self._routing_key, "event_action": action, "dedup_key": key}

    def _outcome(
        self, action: str, service: str, detail: str, *, changed: bool = True
    ) -> ActionOutcome:
        out = ActionOutcome(
            action=action, service=service, deploy_id=None, changed=changed, detail=detail
        )
        self.calls.append(out)
        return out

    # HTTP

    def _send(self, event: _Event) -> str:
        """Enqueue one event; the dedup key PagerDuty used."""
        body = event.model_dump(mode="json", exclude_none=True)

        def send() -> httpx.Response:
            return unless_busy(
                self._client.post(
                    self.url,
                    json=body,
                    headers={"Accept": "application/json", "User-Agent": "vigil"},
                    timeout=self.timeout_s,
                )
            )

        try:
            response, tries = retried(send, self._backoff)
        except GaveUp as failed:
            error, tries = failed.error, failed.tries
            if isinstance(error, Retry):
                raise self._error(error.answer, tries) from None
            failure = network_failure(error, self.where, self.timeout_s, tries)
            raise self._unavailable(failure) from None
        if response.status_code >= 300:
            raise self._error(response, tries)
        answer = self._answer(response)
        if answer is None or (answer.status or "success").lower() != "success":
            raise self._unavailable(
                f"unexpected answer to {event.event_action} (HTTP {response.status_code}): "
                f"{_cut(' '.join(response.text.split()), 120)!r}"
            )
        return answer.dedup_key or event.dedup_key

    @staticmethod
    def _answer(response: httpx.Response) -> _Answer | None:
        try:
            return _Answer.model_validate(response.json())
        except (ValueError, ValidationError):
            return None

    def _error(self, response: httpx.Response, tries: int) -> SourceUnavailable:
        code = response.status_code
        after = f" after {tries_text(tries)}" if tries > 1 else ""
        answer = self._answer(response)
        said = ""
        if answer is not None:
            words = [answer.message or answer.status or ""] + [str(e) for e in answer.errors]
            said = ": ".join(w for w in (words[0], "; ".join(words[1:])) if w)
        said = said or " ".join(response.text.split()) or response.reason_phrase
        if code == 400:
            return self._unavailable(f"invalid event (HTTP 400): {said}")
        if code == 429:
            return self._unavailable(f"rate limited (HTTP 429){after}: {said}")
        return self._unavailable(f"HTTP {code} from {self.where}{after}: {said}")

    def _unavailable(self, message: str) -> SourceUnavailable:
        text = _cut(message.replace(self._routing_key, "[routing key]"), _ERROR_CHARS + 120)
        return SourceUnavailable(f"pagerduty: {text}")
