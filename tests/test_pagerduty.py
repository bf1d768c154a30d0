"""PagerDuty escalation over the Events API v2, against a local stand-in for the endpoint."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from agent.backends.base import SourceUnavailable
from agent.errors import ConfigError
from tests.fakes.http_recorder import HttpRecorder, Reply
from tests.fakes.sleeps import Sleeps
from tools.backends.pagerduty import PagerDutyEscalator, pagerduty_severity

KEY = "R0123456789abcdef0123456789abcd"  # a routing key (fake)
PATH = "/v2/enqueue"
NOW = datetime(2026, 5, 13, 14, 50, tzinfo=UTC)


def accepted(dedup_key: str = "vigil/reviews") -> Reply:
    return Reply(202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key})


def pager(server: HttpRecorder, client: httpx.Client, **kw: Any) -> PagerDutyEscalator:
    kw.setdefault("sleep", Sleeps())
    return PagerDutyEscalator(KEY, client=client, url=server.url + PATH, clock=lambda: NOW, **kw)


def test_escalate_sends_a_trigger_event(server: HttpRecorder, client: httpx.Client) -> None:
    server.on("POST", PATH, accepted())
    out = pager(server, client).escalate("reviews", "error ratio 12% after deploy", "critical")
    [request] = server.requests
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "routing_key": KEY,
        "event_action": "trigger",
        "dedup_key": "vigil/reviews",
        "payload": {
            "summary": "error ratio 12% after deploy",
            "source": "vigil",
            "severity": "critical",
            "component": "reviews",
            "timestamp": "2026-05-13T14:50:00.000Z",
            "custom_details": {"service": "reviews", "severity": "critical"},
        },
    }
    assert (out.action, out.service, out.changed) == ("escalate", "reviews", True)
    assert out.detail == (
        "paged PagerDuty (critical, dedup key vigil/reviews): error ratio 12% after deploy"
    )


def test_the_dedup_key_can_be_chosen_and_is_read_back(
    server: HttpRecorder, client: httpx.Client
) -> None:
    server.on("POST", PATH, accepted("pd-assigned-42"))
    pd = pager(server, client, source="vigil-prod", dedup_key_for=lambda s: f"svc:{s}")
    first = pd.escalate("reviews", "a", "warning")
    pd.escalate("reviews", "b", "warning", dedup_key="inc-7", custom_details={"runbook": "x"})
    one, two = (r.json() for r in server.requests)
    assert one["dedup_key"] == "svc:reviews" and one["payload"]["source"] == "vigil-prod"
    assert two["dedup_key"] == "inc-7" and two["payload"]["custom_details"]["runbook"] == "x"
    assert "dedup key pd-assigned-42" in first.detail  # the key PagerDuty used


def test_acknowledge_and_resolve_send_follow_up_events(
    server: HttpRecorder, client: httpx.Client
) -> None:
    server.on("POST", PATH, accepted())
    pd = pager(server, client)
    pd.escalate("reviews", "errors", "error")
    ack = pd.acknowledge("vigil/reviews")
    done = pd.resolve("vigil/reviews")
    bodies = [r.json() for r in server.requests[1:]]
    assert bodies == [
        {"routing_key": KEY, "event_action": "acknowledge", "dedup_key": "vigil/reviews"},
        {"routing_key": KEY, "event_action": "resolve", "dedup_key": "vigil/reviews"},
    ]
    assert (ack.action, ack.service, ack.changed) == ("acknowledge", "reviews", True)
    assert done.detail == "resolved the PagerDuty alert vigil/reviews"
    assert [c.action for c in pd.calls] == ["escalate", "acknowledge", "resolve"]


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ("critical", "critical"),
        ("P1", "critical"),
        ("page", "critical"),
        ("error", "error"),
        ("high", "error"),
        ("sev-2", "error"),
        ("warning", "warning"),
        ("warn", "warning"),
        ("P3", "warning"),
        ("info", "info"),
        ("low", "info"),
        ("something-new", "error"),  # unknown still pages, never downgraded to info
    ],
)
def test_severity_mapping(ours: str, theirs: str) -> None:
    assert pagerduty_severity(ours) == theirs


def test_the_mapped_severity_is_sent(server: HttpRecorder, client: httpx.Client) -> None:
    server.on("POST", PATH, accepted())
    pager(server, client).escalate("reviews", "latency", "warn")
    payload = server.requests[0].json()["payload"]
    assert payload["severity"] == "warning" and payload["custom_details"]["severity"] == "warn"


def test_a_long_summary_is_cut_to_1024_characters(
    server: HttpRecorder, client: httpx.Client
) -> None:
    server.on("POST", PATH, accepted())
    summary = "".join(f"line {i}: errors past SLO. " for i in range(200))
    assert len(summary) > 3000
    pager(server, client).escalate("reviews", summary, "critical")
    payload = server.requests[0].json()["payload"]
    assert len(payload["summary"]) == 1024
    assert payload["summary"] == summary[:1023] + "…"
    assert payload["custom_details"]["summary"] == summary  # nothing lost


def test_a_long_dedup_key_is_hashed_the_same_way_every_time(
    server: HttpRecorder, client: httpx.Client
) -> None:
    server.on("POST", PATH, accepted())
    pd = pager(server, client)
    long_key = "incident/" + "x" * 300
    pd.escalate("reviews", "a", "info", dedup_key=long_key)
    pd.resolve(long_key)
    keys = [r.json()["dedup_key"] for r in server.requests]
    assert len(keys[0]) <= 255 and keys[0] == keys[1]


def test_invalid_event_reports_pagerduty_errors_without_retrying(
    server: HttpRecorder, client: httpx.Client
) -> None:
    server.on(
        "POST",
        PATH,
        Reply(
            400,
            {
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": [f"'routing_key' {KEY} is not a known integration", "summary missing"],
            },
        ),
    )
    sleeps = Sleeps()
    with pytest.raises(SourceUnavailable) as err:
        pager(server, client, sleep=sleeps).escalate("reviews", "x", "critical")
    assert str(err.value) == (
        "pagerduty: invalid event (HTTP 400): Event object is invalid: "
        "'routing_key' [routing key] is not a known integration; summary missing"
    )
    assert KEY not in str(err.value)
    assert len(server.requests) == 1 and sleeps == []


def test_429_waits_for_retry_after_then_succeeds(
    server: HttpRecorder, client: httpx.Client
) -> None:
    limited = Reply(429, {"status": "throttle event"}, headers={"Retry-After": "7"})
    server.on("POST", PATH, limited, accepted())
    sleeps = Sleeps()
    out = pager(server, client, sleep=sleeps).escalate("reviews", "x", "critical")
    assert out.changed is True
    assert len(server.requests) == 2 and sleeps == [7.0]
    assert server.requests[0].body == server.requests[1].body


def test_retry_after_is_capped_and_429_can_run_out(
    server: HttpRecorder, client: httpx.Client
) -> None:
    server.on("POST", PATH, Reply(429, "Request Limit Exceeded", headers={"Retry-After": "600"}))
    sleeps = Sleeps()
    pd = pager(server, client, sleep=sleeps, attempts=3, max_backoff_s=20.0)
    with pytest.raises(SourceUnavailable) as err:
        pd.escalate("reviews", "x", "critical")
    assert sleeps == [20.0, 20.0]
    assert str(err.value) == (
        "pagerduty: rate limited (HTTP 429) after 3 tries: Request Limit Exceeded"
    )


def test_5xx_is_retried_then_succeeds(server: HttpRecorder, client: httpx.Client) -> None:
    server.on("POST", PATH, Reply(500), Reply(503), accepted())
    sleeps = Sleeps()
    assert pager(server, client, sleep=sleeps).resolve("vigil/reviews").changed is True
    assert len(server.requests) == 3 and sleeps == [1.0, 2.0]


def test_5xx_exhausted_raises_source_unavailable(
    server: HttpRecorder, client: httpx.Client
) -> None:
    server.on("POST", PATH, Reply(502, "upstream connect error"))
    sleeps = Sleeps()
    with pytest.raises(SourceUnavailable) as err:
        pager(server, client, sleep=sleeps).escalate("reviews", "x", "critical")
    where = server.url.removeprefix("http://") + PATH
    assert str(err.value) == (
        f"pagerduty: HTTP 502 from {where} after 4 tries: upstream connect error"
    )
    assert len(server.requests) == 4 and sleeps == [1.0, 2.0, 4.0]


def test_network_errors_raise_source_unavailable(
    server: HttpRecorder, client: httpx.Client
) -> None:
    server.on("POST", PATH, Reply(drop=True))
    with pytest.raises(SourceUnavailable, match=r"^pagerduty: cannot reach .* \(2 tries\)"):
        pager(server, client, attempts=2).escalate("reviews", "x", "critical")
    assert len(server.requests) == 2


def test_an_answer_that_is_not_pagerdutys_is_reported(
    server: HttpRecorder, client: httpx.Client
) -> None:
    server.on("POST", PATH, Reply(202, "<html>captive portal</html>"))
    with pytest.raises(SourceUnavailable, match="pagerduty: unexpected answer to trigger"):
        pager(server, client).escalate("reviews", "x", "critical")


def test_notify_is_a_documented_no_op(server: HttpRecorder, client: httpx.Client) -> None:
    out = pager(server, client).notify("reviews", "rolled back; watching")
    assert out.changed is False and out.detail.startswith("not sent: PagerDuty alerts page")
    assert server.requests == []


def test_an_empty_routing_key_is_a_config_error(client: httpx.Client) -> None:
    with pytest.raises(ConfigError, match="routing key is empty"):
        PagerDutyEscalator("  ", client=client)
