"""Small pieces the backends share: HTTP retries with backoff, header values, and the text of
error messages."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

T = TypeVar("T")


def header_seconds(value: str | None) -> float | None:
    """A header holding seconds (`Retry-After`, GitHub's `X-RateLimit-Reset`), never negative;
    None when absent or not a number (a `Retry-After` HTTP date: the usual backoff applies)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class Retry(Exception):
    """An answer worth another try (429, 5xx): raised inside `retried` so it waits and tries
    again; carries the answer for the final message and its Retry-After for the wait."""

    def __init__(self, answer: Any, status: int, retry_after: float | None = None) -> None:
        super().__init__(status)
        self.answer = answer
        self.status = status
        self.retry_after = retry_after


def unless_busy(response: httpx.Response) -> httpx.Response:
    """The response, unless it says "busy" (429 or 5xx): then `Retry`, with its Retry-After."""
    if response.status_code == 429 or response.status_code >= 500:
        after = header_seconds(response.headers.get("retry-after"))
        raise Retry(response, response.status_code, after)
    return response


class GaveUp(Exception):
    """`retried` stopped: `error` is the last failure (a `Retry`, or a network error from
    httpx), `tries` how many requests were made."""

    def __init__(self, error: Retry | httpx.TransportError, tries: int) -> None:
        super().__init__(str(error))
        self.error = error
        self.tries = tries


@dataclass(frozen=True)
class Backoff:
    """How a backend retries: `attempts` requests at most, waiting `backoff_s` doubling each
    time, at least what a Retry-After asks, never more than `max_backoff_s`."""

    attempts: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    sleep: Callable[[float], None] = time.sleep

    def wait(self, tries: int, retry_after: float | None) -> float:
        delay = self.backoff_s * 2.0 ** (tries - 1)
        return float(min(self.max_backoff_s, max(delay, retry_after or 0.0)))


def retried(
    send: Callable[[], T],
    backoff: Backoff,
    retry_on: tuple[type[httpx.TransportError], ...] = (httpx.TransportError,),
) -> tuple[T, int]:
    """Call `send` until it returns: again after a `Retry` or a network error of a `retry_on`
    kind, with `backoff`'s waits. Returns the result and how many tries it took; raises
    `GaveUp` with the last failure when the tries run out or a failure is not to be retried."""
    retrying = Retrying(
        retry=retry_if_exception(lambda e: isinstance(e, (Retry, *retry_on))),
        wait=lambda state: backoff.wait(state.attempt_number, _retry_after(state)),
        stop=stop_after_attempt(backoff.attempts),
        sleep=backoff.sleep,
        reraise=True,
    )
    tries = 0
    try:
        for attempt in retrying:
            with attempt:
                tries += 1
                result = send()
    except (Retry, httpx.TransportError) as exc:
        raise GaveUp(exc, tries) from exc
    return result, tries


def _retry_after(state: RetryCallState) -> float | None:
    exc = state.outcome.exception() if state.outcome is not None else None
    return exc.retry_after if isinstance(exc, Retry) else None


def network_failure(
    error: httpx.TransportError, where: str, timeout_s: float, tries: int, what: str = ""
) -> str:
    """What went wrong on the way to `where`, for a SourceUnavailable (no secrets: `where` is
    the caller's credential-free address, and httpx's messages carry none)."""
    if isinstance(error, httpx.TimeoutException):
        return f"no answer from {where} within {timeout_s:g}s ({what or tries_text(tries)})"
    reason = short(str(error)) or type(error).__name__
    return f"cannot reach {where} ({tries_text(tries)}): {reason}"


def tries_text(n: int) -> str:
    return f"{n} tr{'y' if n == 1 else 'ies'}"


def short(text: str, limit: int = 300) -> str:
    """One line of at most `limit` characters (for an error message)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
