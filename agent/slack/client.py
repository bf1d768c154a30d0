"""The Slack Web API client: slack_sdk's WebClient pointed at `VIGIL_SLACK_API_URL`, with its
retry handlers for rate limits (Retry-After), server errors and network errors, and the one
function the outbox posts through."""

from __future__ import annotations

import http.client
import random
import time
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from agent.slack.outbox import Delivery, PostFailed
from agent.slack.settings import SlackSettings
from tools.backends.http import header_seconds

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


def _retry_after(headers: dict[str, Any]) -> float | None:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            return header_seconds(None if raw is None else str(raw))
    return None


class _RateLimitRetry(RateLimitErrorRetryHandler):
    """Honours Retry-After in line only when it is short; a longer wait is the outbox's."""

    def __init__(self, max_retry_count: int, max_wait_s: float) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait_s = max_wait_s

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = _retry_after(dict(response.headers))
        return wait is None or wait <= self.max_wait_s

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        wait = _retry_after(dict(response.headers)) if response is not None else None
        state.next_attempt_requested = True
        # A little jitter, so that many clients told "1 s" do not all come back at once.
        time.sleep(min(self.max_wait_s, (1.0 if wait is None else wait) + random.random() / 10))
        state.increment_current_attempt()


class _ServerErrorRetry(ServerErrorRetryHandler):
    """slack_sdk's handler retries 500 and 503; a gateway's 502 and 504 are as transient."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and response.status_code in (500, 502, 503, 504)


def retry_handlers(settings: SlackSettings) -> list[RetryHandler]:
    interval = FixedValueRetryIntervalCalculator(settings.retry_wait_s)
    return [
        ConnectionErrorRetryHandler(
            max_retry_count=settings.retries,
            interval_calculator=interval,
            error_types=[URLError, ConnectionError, TimeoutError, http.client.RemoteDisconnected],
        ),
        _ServerErrorRetry(max_retry_count=settings.retries, interval_calculator=interval),
        _RateLimitRetry(settings.retries, settings.max_inline_wait_s),
    ]


def web_client(settings: SlackSettings) -> WebClient:
    """The bot's WebClient (no call is made until one is needed)."""
    token = settings.bot_token.get_secret_value() if settings.bot_token else None
    return WebClient(
        token=token,
        base_url=settings.api_url,
        timeout=max(1, round(settings.timeout_s)),
        retry_handlers=retry_handlers(settings),
    )


class WebPoster:
    """Posts one outbox row through the WebClient; every failure becomes `PostFailed` with a
    one-line message naming the method (never the token)."""

    def __init__(self, client: WebClient) -> None:
        self.client = client

    def __call__(self, method: str, payload: dict[str, Any]) -> Delivery:
        try:
            resp = self.client.api_call(method, json=payload)
        except SlackApiError as exc:
            r = exc.response
            data = r.data if isinstance(r.data, dict) else {}
            error = str(data.get("error") or "no error given")
            status = int(r.status_code)
            transient = status in TRANSIENT_STATUS or error in TRANSIENT_ERRORS
            raise PostFailed(
                f"Slack {method}: HTTP {status}, {error}",
                transient=transient,
                retry_after=_retry_after(dict(r.headers)),
            ) from None
        except (SlackClientError, OSError, http.client.HTTPException) as exc:
            raise PostFailed(
                f"Slack {method}: {type(exc).__name__}: {exc}"[:300], transient=True
            ) from None
        channel = str(resp.get("channel") or payload.get("channel") or "")
        ts = str(resp.get("ts") or resp.get("message_ts") or payload.get("ts") or "")
        return Delivery(channel, ts)
