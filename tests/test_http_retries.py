"""The retry loop the HTTP backends share: waits, what is retried, and how it gives up."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tools.backends.http import Backoff, GaveUp, Retry, header_seconds, retried, unless_busy


def _response(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers, request=httpx.Request("GET", "http://x/"))


@given(
    tries=st.integers(1, 12),
    after=st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False)),
    base=st.floats(0.01, 5),
    cap=st.floats(0.1, 60),
)
def test_a_wait_doubles_honours_retry_after_and_never_passes_the_cap(
    tries: int, after: float | None, base: float, cap: float
) -> None:
    wait = Backoff(3, base, cap).wait(tries, after)
    assert 0 <= wait <= cap
    assert wait == min(cap, max(base * 2 ** (tries - 1), after or 0.0))


def test_busy_answers_are_retried_and_the_last_one_is_reported() -> None:
    sleeps: list[float] = []
    answers = iter([_response(503, **{"Retry-After": "2"}), _response(429), _response(502)])

    with pytest.raises(GaveUp) as gave_up:
        retried(lambda: unless_busy(next(answers)), Backoff(3, 0.5, 10, sleeps.append))
    assert gave_up.value.tries == 3
    assert isinstance(gave_up.value.error, Retry) and gave_up.value.error.status == 502
    assert sleeps == [2.0, 1.0]  # Retry-After (more than the backoff), then the backoff


def test_the_first_good_answer_ends_the_loop() -> None:
    sleeps: list[float] = []
    answers = iter([_response(500), _response(404), _response(200)])
    response, tries = retried(lambda: unless_busy(next(answers)), Backoff(5, 1, 4, sleeps.append))
    assert (response.status_code, tries, sleeps) == (404, 2, [1.0])  # a 4xx is an answer


def test_only_the_chosen_network_errors_are_retried() -> None:
    sleeps: list[float] = []
    calls = 0

    def timing_out() -> None:
        nonlocal calls
        calls += 1
        raise httpx.ReadTimeout("slow")

    with pytest.raises(GaveUp) as gave_up:
        retried(timing_out, Backoff(3, 1, 4, sleeps.append), (httpx.ConnectError,))
    assert (calls, gave_up.value.tries, sleeps) == (1, 1, [])
    assert isinstance(gave_up.value.error, httpx.ReadTimeout)

    with pytest.raises(GaveUp) as again:
        retried(timing_out, Backoff(3, 1, 4, sleeps.append))  # any transport error
    assert (again.value.tries, sleeps) == (3, [1.0, 2.0])


def test_other_errors_are_not_swallowed() -> None:
    def broken() -> None:
        raise KeyError("a bug, not the network")

    with pytest.raises(KeyError):
        retried(broken, Backoff(3, 1, 4, lambda _s: None))


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("3", 3.0), ("0.5", 0.5), ("-4", 0.0), (None, None), ("Wed, 21 Oct 2015 07:28:00 GMT", None)],
)
def test_header_seconds(value: str | None, seconds: float | None) -> None:
    assert header_seconds(value) == seconds
