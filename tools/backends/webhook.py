"""Rollouts and escalations over a signed HTTP webhook: a small protocol any deploy system or
paging bridge can implement.

Every request is a POST of a JSON body with these headers:

    X-Vigil-Signature-256: sha256=<hex HMAC-SHA256 of the exact body bytes, keyed with the secret>
    X-Vigil-Timestamp:     Unix seconds when the request was made (the body carries it too)
    Idempotency-Key:       the same for every retry of one action

The signature follows GitHub's webhook scheme; receivers check it with `verify_signature`
(or any HMAC library) and should refuse stale timestamps (a replay) and repeated keys.

Rollout body: `action` ("pause" | "rollback"), `service`, `environment`, `deploy_id`,
`version`, `previous_version`, `idempotency_key` (derived from action and deploy id only, so
Vigil asks for one deploy's rollback once, whoever asks and however often) and `timestamp`.
Escalation body: `action` ("escalate" | "notify"), `service`, `severity`, `message`,
`idempotency_key`, `timestamp`.

The answer is any 2xx with no body or a JSON object; HTTP 409 or `{"status": "already_done"}`
means the action had already been taken (a no-op). With a `status_url`, the rollout is then
checked: `GET status_url` (`{deploy_id}` in it is replaced, else `?deploy_id=` is added)
answers `{"deploy_id": ..., "status": "progressing" | "paused" | "rolled_back" | ...}` and is
polled until the deploy reports the state asked for. An action the receiver accepted but never
reported is returned as NOT VERIFIED, never as done.

Connection errors, timeouts, 429 and 5xx are retried a few times with a short capped backoff
(the same body and key each time, so a receiver can drop a duplicate); other 4xx are not.
Every failure raises `SourceUnavailable("rollout webhook: ...")` (or "escalation webhook: ...")
naming the endpoint and what went wrong; the secret is never part of a message.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from agent.backends.base import ActionOutcome, DeployInfo, SourceUnavailable
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

SIGNATURE_HEADER = "X-Vigil-Signature-256"
TIMESTAMP_HEADER = "X-Vigil-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"

RolloutAction = Literal["pause", "rollback"]
# The state a deploy reports once the action took effect.
_REACHED: dict[str, str] = {"pause": "paused", "rollback": "rolled_back"}
_ERROR_CHARS = 200  # of a receiver's error text shown in a message

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


# Signing


def sign(secret: str, body: bytes) -> str:
    """The signature header value for `body`: `sha256=<hex HMAC-SHA256>`."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Does `header` (X-Vigil-Signature-256) sign exactly `body` with `secret`? Constant time."""
    if not secret or not header:
        return False
    expected = sign(secret, body).encode("ascii")
    return hmac.compare_digest(expected, header.strip().encode("utf-8", "replace"))


def idempotency_key(action: str, deploy_id: str) -> str:
    """The key of one action on one deploy: the same on every retry and in every process."""
    digest = hashlib.sha256(f"vigil\n{action}\n{deploy_id}".encode()).hexdigest()
    return f"vigil-{action}-{digest[:32]}"


# Bodies


class RolloutRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: RolloutAction
    service: str
    environment: str | None
    deploy_id: str
    version: str
    previous_version: str | None
    idempotency_key: str
    timestamp: str  # RFC 3339, UTC


class EscalationRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: Literal["escalate", "notify"]
    service: str
    severity: str
    message: str
    idempotency_key: str
    timestamp: str  # RFC 3339, UTC


class _Ack(BaseModel):
    """A receiver's answer to an action; every field is optional."""

    status: str | None = None
    message: str | None = None


class _RolloutStatus(BaseModel):
    status: str
    deploy_id: str | None = None


# HTTP


@dataclass(frozen=True)
class _Delivery:
    already_done: bool
    note: str  # the receiver's own words, if any


def _where(url: str, system: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{system}: URL must be http(s)://host[:port]/path, not {url!r}")
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"  # no query: it may hold a token


def _short(text: str, limit: int = _ERROR_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _reason(response: httpx.Response) -> str:
    """The receiver's own error text (JSON `error`/`message`/`detail`), else the raw body."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for name in ("error", "message", "detail"):
            if isinstance(body.get(name), str) and body[name].strip():
                return _short(body[name])
    return _short(response.text) or response.reason_phrase


def _timestamp(moment: datetime) -> tuple[str, str]:
    """(RFC 3339 for the body, Unix seconds for the header) of one clock reading."""
    at = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z"), str(int(at.timestamp()))


class _SignedPoster:
    """POSTs signed bodies to one endpoint with retries; maps every failure to one message."""

    def __init__(
        self,
        system: str,
        url: str,
        secret: str,
        client: httpx.Client,
        *,
        attempts: int,
        backoff_s: float,
        max_backoff_s: float,
        timeout_s: float,
        sleep: Callable[[float], None],
    ) -> None:
        if not secret:
            raise ConfigError(f"{system}: the signing secret is empty")
        if attempts < 1:
            raise ConfigError(f"{system}: attempts must be at least 1")
        self.system = system
        self.url = url
        self.where = _where(url, system)
        self._secret = secret
        self._client = client
        self._backoff = Backoff(attempts, backoff_s, max_backoff_s, sleep)
        self.timeout_s = timeout_s

    def post(self, body: bytes, *, unix_ts: str, key: str) -> _Delivery:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            SIGNATURE_HEADER: sign(self._secret, body),
            TIMESTAMP_HEADER: unix_ts,
            IDEMPOTENCY_HEADER: key,
            "User-Agent": "vigil",
        }

        def send() -> httpx.Response:
            return unless_busy(
                self._client.post(self.url, content=body, headers=headers, timeout=self.timeout_s)
            )

        try:
            response, tries = retried(send, self._backoff)
        except GaveUp as failed:
            error, tries = failed.error, failed.tries
            if isinstance(error, Retry):
                raise self._http_error(error.answer, tries) from None
            failure = network_failure(error, self.where, self.timeout_s, tries)
            raise SourceUnavailable(f"{self.system}: {failure}") from None
        if response.status_code == 409:
            return _Delivery(already_done=True, note=_reason(response))
        if response.status_code >= 300:
            raise self._http_error(response, tries)
        ack = self._ack(response)
        done = (ack.status or "").strip().lower().replace("-", "_") == "already_done"
        return _Delivery(already_done=done, note=_short(ack.message or ""))

    def _ack(self, response: httpx.Response) -> _Ack:
        if not response.content.strip():
            return _Ack()
        try:
            return _Ack.model_validate(response.json())
        except (ValueError, ValidationError):
            kind = response.headers.get("content-type", "no content type")
            raise SourceUnavailable(
                f"{self.system}: answer from {self.where} is not a JSON object ({kind}): "
                f"{_short(response.text, 80)!r}"
            ) from None

    def _http_error(self, response: httpx.Response, tries: int) -> SourceUnavailable:
        after = f" after {tries_text(tries)}" if tries > 1 else ""
        return SourceUnavailable(
            f"{self.system}: HTTP {response.status_code} from {self.where}{after}: "
            f"{_reason(response)}"
        )


# Rollouts


@dataclass(frozen=True)
class StatusCheck:
    """How the check after an action went."""

    verified: bool
    checks: int
    last_status: str | None = None
    error: str | None = None  # the last failure of the status endpoint, if any


class WebhookActuator:
    """`Actuator` that asks a deploy system to pause or roll back through a signed webhook.

    A second request for the same action on the same deploy is a no-op, both in this process
    and when the receiver says it already did it. `calls` lists every outcome, as
    `RecordingActuator` does; `last_check` is the last status check (None: none was made).
    """

    def __init__(
        self,
        url: str,
        *,
        secret: str,
        client: httpx.Client,
        status_url: str | None = None,
        attempts: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 4.0,
        timeout_s: float = 10.0,
        verify_attempts: int = 5,
        verify_interval_s: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Clock = _utcnow,
    ) -> None:
        system = "rollout webhook"
        self._poster = _SignedPoster(
            system,
            url,
            secret,
            client,
            attempts=attempts,
            backoff_s=backoff_s,
            max_backoff_s=max_backoff_s,
            timeout_s=timeout_s,
            sleep=sleep,
        )
        if status_url is not None:
            _where(status_url, system)
        if verify_attempts < 1:
            raise ConfigError(f"{system}: verify_attempts must be at least 1")
        self.status_url = status_url
        self.verify_attempts = verify_attempts
        self.verify_interval_s = verify_interval_s
        self._client = client
        self._sleep = sleep
        self._clock = clock
        self._done: set[tuple[str, str]] = set()
        self._unverified: set[tuple[str, str]] = set()  # accepted, never reported done
        self.calls: list[ActionOutcome] = []
        self.last_check: StatusCheck | None = None

    def pause(self, deploy: DeployInfo, *, dry_run: bool) -> ActionOutcome:
        return self._act("pause", deploy, dry_run)

    def rollback(self, deploy: DeployInfo, *, dry_run: bool) -> ActionOutcome:
        return self._act("rollback", deploy, dry_run)

    def request_body(self, action: RolloutAction, deploy: DeployInfo) -> tuple[bytes, str]:
        """The exact body bytes of an action now, and the Unix-seconds timestamp header."""
        stamp, unix_ts = _timestamp(self._clock())
        body = RolloutRequest(
            action=action,
            service=deploy.service,
            environment=deploy.environment,
            deploy_id=deploy.id,
            version=deploy.version,
            previous_version=deploy.previous_version,
            idempotency_key=idempotency_key(action, deploy.id),
            timestamp=stamp,
        )
        return body.model_dump_json().encode("utf-8"), unix_ts

    def _act(self, action: RolloutAction, deploy: DeployInfo, dry_run: bool) -> ActionOutcome:
        key = (action, deploy.id)
        if dry_run:
            detail = f"dry run: would {_verb(action, deploy)} via {self._poster.where}"
            return self._outcome(action, deploy, False, detail)
        if key in self._done:
            detail = f"already done: {action} of {deploy.id}"
            if key in self._unverified:
                detail += " (requested earlier but NOT VERIFIED; check the rollout by hand)"
            return self._outcome(action, deploy, False, detail)
        body, unix_ts = self.request_body(action, deploy)
        delivery = self._poster.post(body, unix_ts=unix_ts, key=idempotency_key(*key))
        self._done.add(key)
        if delivery.already_done:
            detail = f"already done: the deploy system had already done the {action} of {deploy.id}"
            return self._outcome(action, deploy, False, detail + _said(delivery.note))
        if self.status_url is None:
            detail = (
                f"asked the deploy system to {_verb(action, deploy)}; it accepted the request"
                f"{_said(delivery.note)} (not verified: no status URL configured)"
            )
            return self._outcome(action, deploy, True, detail)
        check = self.check_status(deploy, _REACHED[action])
        if not check.verified:
            self._unverified.add(key)
        return self._outcome(action, deploy, True, _checked(action, deploy, check))

    def check_status(self, deploy: DeployInfo, wanted: str) -> StatusCheck:
        """Poll the status endpoint until `deploy` reports `wanted` or the checks run out.
        Failures of the endpoint are kept in the result, not raised: the action was taken."""
        if self.status_url is None:
            raise ConfigError(f"{self._poster.system}: no status URL configured")
        last: str | None = None
        error: str | None = None
        for n in range(1, self.verify_attempts + 1):
            if n > 1:
                self._sleep(self.verify_interval_s)
            try:
                found = self._status(self.status_url, deploy)
            except SourceUnavailable as exc:
                error = str(exc)
                continue
            if found.deploy_id not in (None, deploy.id):
                last = f"a status for deploy {found.deploy_id}"
                continue
            last = found.status.strip().lower().replace("-", "_").replace(" ", "_")
            if last == wanted:
                self.last_check = StatusCheck(True, n, last)
                return self.last_check
        self.last_check = StatusCheck(False, self.verify_attempts, last, error)
        return self.last_check

    def _status(self, status_url: str, deploy: DeployInfo) -> _RolloutStatus:
        system = self._poster.system
        where = _where(status_url, system)
        params: dict[str, str] = {}
        if "{deploy_id}" in status_url:
            url = status_url.replace("{deploy_id}", quote(deploy.id, safe=""))
        else:
            url, params = status_url, {"deploy_id": deploy.id}
        try:
            response = self._client.get(
                url,
                params=params,
                headers={"Accept": "application/json", "User-Agent": "vigil"},
                timeout=self._poster.timeout_s,
            )
        except httpx.TimeoutException:
            raise SourceUnavailable(
                f"{system}: no status from {where} within {self._poster.timeout_s:g}s"
            ) from None
        except httpx.TransportError as exc:
            raise SourceUnavailable(
                f"{system}: cannot reach {where}: {_short(str(exc)) or type(exc).__name__}"
            ) from None
        if response.status_code >= 300:
            raise SourceUnavailable(
                f"{system}: HTTP {response.status_code} from {where}: {_reason(response)}"
            )
        try:
            return _RolloutStatus.model_validate(response.json())
        except (ValueError, ValidationError):
            raise SourceUnavailable(
                f"{system}: status from {where} is not a JSON object with a 'status': "
                f"{_short(response.text, 80)!r}"
            ) from None

    def _outcome(
        self, action: str, deploy: DeployInfo, changed: bool, detail: str
    ) -> ActionOutcome:
        outcome = ActionOutcome(
            action=action,
            service=deploy.service,
            deploy_id=deploy.id,
            changed=changed,
            detail=detail,
        )
        self.calls.append(outcome)
        return outcome


def _said(note: str) -> str:
    return f" (it said: {note})" if note else ""


def _verb(action: str, deploy: DeployInfo) -> str:
    if action == "rollback":
        target = deploy.previous_version or "the previous revision"
        return f"roll {deploy.service} back from {deploy.version} to {target}"
    return f"pause the rollout of {deploy.service} {deploy.version}"


def _checked(action: str, deploy: DeployInfo, check: StatusCheck) -> str:
    wanted = _REACHED[action]
    tries = f"{check.checks} check{'s' if check.checks != 1 else ''}"
    if check.verified:
        done = (
            f"rolled {deploy.service} back from {deploy.version} to "
            f"{deploy.previous_version or 'the previous revision'}"
            if action == "rollback"
            else f"paused the rollout of {deploy.service} {deploy.version}"
        )
        return f"{done} (verified: the deploy system reports {wanted} after {tries})"
    seen = f"it still reports {check.last_status!r}" if check.last_status else "no status was read"
    why = f"; last status error: {check.error}" if check.error else ""
    return (
        f"NOT VERIFIED: the deploy system accepted the request to {_verb(action, deploy)}, "
        f"but after {tries} {seen}, not {wanted!r}{why}; check the rollout by hand"
    )


# Escalation


class WebhookEscalator:
    """`Escalator` that hands incidents and updates to a signed webhook (a paging bridge,
    a chat relay). A receiver answering 409 or "already_done" makes the call a no-op."""

    def __init__(
        self,
        url: str,
        *,
        secret: str,
        client: httpx.Client,
        attempts: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 4.0,
        timeout_s: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Clock = _utcnow,
    ) -> None:
        self._poster = _SignedPoster(
            "escalation webhook",
            url,
            secret,
            client,
            attempts=attempts,
            backoff_s=backoff_s,
            max_backoff_s=max_backoff_s,
            timeout_s=timeout_s,
            sleep=sleep,
        )
        self._clock = clock
        self.calls: list[ActionOutcome] = []

    def escalate(self, service: str, summary: str, severity: str) -> ActionOutcome:
        return self._send("escalate", service, summary, severity)

    def notify(self, service: str, message: str) -> ActionOutcome:
        return self._send("notify", service, message, "info")

    def _send(
        self, action: Literal["escalate", "notify"], service: str, text: str, severity: str
    ) -> ActionOutcome:
        stamp, unix_ts = _timestamp(self._clock())
        # One key per message and moment: a retry repeats it, a later escalation does not.
        seed = json.dumps([action, service, severity, text, stamp])
        key = f"vigil-{action}-{hashlib.sha256(seed.encode()).hexdigest()[:32]}"
        body = EscalationRequest(
            action=action,
            service=service,
            severity=severity,
            message=text,
            idempotency_key=key,
            timestamp=stamp,
        )
        delivery = self._poster.post(
            body.model_dump_json().encode("utf-8"), unix_ts=unix_ts, key=key
        )
        if delivery.already_done:
            detail = f"already done: the receiver had already taken this {action}"
            out = ActionOutcome(
                action=action, service=service, deploy_id=None, changed=False, detail=detail
            )
        else:
            detail = f"escalated ({severity}): {text}" if action == "escalate" else text
            out = ActionOutcome(
                action=action, service=service, deploy_id=None, changed=True, detail=detail
            )
        self.calls.append(out)
        return out
