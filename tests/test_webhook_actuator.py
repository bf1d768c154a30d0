"""The signed rollout webhook and escalation webhook, against a real local HTTP receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.backends.base import DeployInfo, SourceUnavailable
from agent.bundle.reader import read_bundle
from agent.errors import ConfigError
from tests.fakes.http_recorder import HttpRecorder, RecordedRequest, Reply
from tests.fakes.sleeps import Sleeps
from tools import all_tools
from tools.backends.pagerduty import PagerDutyEscalator
from tools.backends.webhook import (
    WebhookActuator,
    WebhookEscalator,
    idempotency_key,
    sign,
    verify_signature,
)
from tools.base import Toolbox
from tools.bundle import bundle_context

SUITE = Path(__file__).resolve().parent.parent / "evals" / "suites" / "small"
SECRET = "s3cret-webhook-key"
HOOK = "/hooks/vigil"
NOW = datetime(2026, 5, 13, 14, 50, 0, 250_000, tzinfo=UTC)
DEPLOY = DeployInfo(
    id="deploy-6704",
    service="reviews",
    environment="production",
    version="v5.6.0",
    previous_version="v5.5.6",
    started_at=datetime(2026, 5, 13, 14, 41, tzinfo=UTC),
)


def actuator(server: HttpRecorder, client: httpx.Client, **kw: Any) -> WebhookActuator:
    kw.setdefault("sleep", Sleeps())
    return WebhookActuator(server.url + HOOK, secret=SECRET, client=client, clock=lambda: NOW, **kw)


def signature(request: RecordedRequest) -> str:
    return request.headers["x-vigil-signature-256"]


# --------------------------------------------------------------------------- signing


def test_rollback_posts_the_exact_signed_body(server: HttpRecorder, client: httpx.Client) -> None:
    server.on("POST", HOOK, Reply(202, {"status": "accepted"}))
    out = actuator(server, client).rollback(DEPLOY, dry_run=False)

    [request] = server.requests
    assert (request.method, request.path) == ("POST", HOOK)
    key = idempotency_key("rollback", "deploy-6704")
    expected = {
        "action": "rollback",
        "service": "reviews",
        "environment": "production",
        "deploy_id": "deploy-6704",
        "version": "v5.6.0",
        "previous_version": "v5.5.6",
        "idempotency_key": key,
        "timestamp": "2026-05-13T14:50:00.250Z",
    }
    assert request.body == json.dumps(expected, separators=(",", ":")).encode()
    # GitHub's scheme, computed here independently of the code under test.
    mac = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert signature(request) == f"sha256={mac}"
    assert verify_signature(SECRET, request.body, signature(request))
    assert request.headers["x-vigil-timestamp"] == str(int(NOW.timestamp()))
    assert request.headers["idempotency-key"] == key
    assert request.headers["content-type"] == "application/json"
    assert SECRET not in json.dumps(request.headers) and SECRET.encode() not in request.body

    assert out.changed is True and (out.action, out.deploy_id) == ("rollback", "deploy-6704")
    assert "roll reviews back from v5.6.0 to v5.5.6" in out.detail
    assert "not verified: no status URL configured" in out.detail


def test_verification_fails_for_a_wrong_secret_or_a_changed_body() -> None:
    body = b'{"action":"rollback","deploy_id":"deploy-6704"}'
    header = sign(SECRET, body)
    assert verify_signature(SECRET, body, header)
    assert verify_signature(SECRET, body, f"  {header}\n")
    assert not verify_signature("another-secret", body, header)
    assert not verify_signature(SECRET, body.replace(b"6704", b"6705"), header)
    assert not verify_signature(SECRET, body, header.removeprefix("sha256="))
    assert not verify_signature(SECRET, body, None)
    assert not verify_signature(SECRET, body, "sha256=é")
    assert not verify_signature("", body, sign("", body))


def test_the_idempotency_key_depends_only_on_action_and_deploy() -> None:
    key = idempotency_key("rollback", "deploy-6704")
    assert key == idempotency_key("rollback", "deploy-6704")
    assert key != idempotency_key("pause", "deploy-6704")
    assert key != idempotency_key("rollback", "deploy-6705")


# --------------------------------------------------------------------------- no-ops


def test_dry_run_sends_nothing(server: HttpRecorder, client: httpx.Client) -> None:
    server.on("POST", HOOK, Reply(202))
    act = actuator(server, client)
    out = act.rollback(DEPLOY, dry_run=True)
    assert out.changed is False
    assert out.detail.startswith("dry run: would roll reviews back from v5.6.0 to v5.5.6")
    paused = act.pause(DEPLOY, dry_run=True)
    assert paused.detail.startswith("dry run: would pause the rollout of reviews v5.6.0")
    assert server.requests == []
    # A dry run does not count as done: the real action still goes out.
    assert act.rollback(DEPLOY, dry_run=False).changed is True
    assert len(server.requests) == 1


def test_a_second_rollback_of_the_same_deploy_is_a_no_op(
    server: HttpRecorder, client: httpx.Client
) -> None:
    server.on("POST", HOOK, Reply(200, {"status": "accepted"}))
    act = actuator(server, client)
    first = act.rollback(DEPLOY, dry_run=False)
    second = act.rollback(DEPLOY, dry_run=False)
    assert first.changed is True
    assert second.changed is False and second.detail == "already done: rollback of deploy-6704"
    assert len(server.requests) == 1
    # Another action, or another deploy, is not the same request.
    assert act.pause(DEPLOY, dry_run=False).changed is True
    other = DEPLOY.model_copy(update={"id": "deploy-6705"})
    assert act.rollback(other, dry_run=False).changed is True
    actions = [(r.json()["action"], r.json()["deploy_id"]) for r in server.requests]
    assert actions == [
        ("rollback", "deploy-6704"),
        ("pause", "deploy-6704"),
        ("rollback", "deploy-6705"),
    ]
    assert [o.changed for o in act.calls] == [True, False, True, True]


@pytest.mark.parametrize(
    "reply",
    [Reply(409, {"error": "duplicate idempotency key"}), Reply(200, {"status": "already_done"})],
    ids=["409", "already_done"],
)
def test_the_receiver_saying_already_done_is_a_no_op(
    server: HttpRecorder, client: httpx.Client, reply: Reply
) -> None:
    server.on("POST", HOOK, reply)
    server.on("GET", "/status", Reply(200, {"status": "progressing"}))
    act = actuator(server, client, status_url=server.url + "/status")
    out = act.rollback(DEPLOY, dry_run=False)
    assert out.changed is False
    assert out.detail.startswith("already done:") and "deploy-6704" in out.detail
    if reply.status == 409:
        assert out.detail.endswith("(it said: duplicate idempotency key)")
    again = act.rollback(DEPLOY, dry_run=False)
    assert again.changed is False
    assert [r.method for r in server.requests] == ["POST"]  # no status poll, no second post


# --------------------------------------------------------------------------- verification


def test_verification_polls_until_the_deploy_reports_rolled_back(
    server: HttpRecorder, client: httpx.Client
) -> None:
    server.on("POST", HOOK, Reply(202, {"status": "accepted"}))
    server.on(
        "GET",
        "/status",
        Reply(200, {"deploy_id": "deploy-6704", "status": "progressing"}),
        Reply(503, {"error": "warming up"}),
        Reply(200, {"deploy_id": "deploy-6704", "status": "Rolled-Back"}),
    )
    sleeps = Sleeps()
    act = actuator(
        server, client, status_url=server.url + "/status", sleep=sleeps, verify_interval_s=1.5
    )
    out = act.rollback(DEPLOY, dry_run=False)
    polls = server.received("GET", "/status")
    assert len(polls) == 3 and all(p.query == {"deploy_id": ["deploy-6704"]} for p in polls)
    assert sleeps == [1.5, 1.5]
    assert out.changed is True
    assert out.detail == (
        "rolled reviews back from v5.6.0 to v5.5.6 "
        "(verified: the deploy system reports rolled_back after 3 checks)"
    )
    assert act.last_check is not None and act.last_check.verified


def test_the_status_url_may_name_the_deploy_in_its_path(
    server: HttpRecorder, client: httpx.Client
) -> None:
    server.on("POST", HOOK, Reply(204))
    server.on("GET", "/deploys/deploy-6704", Reply(200, {"status": "paused"}))
    act = actuator(server, client, status_url=server.url + "/deploys/{deploy_id}")
    out = act.pause(DEPLOY, dry_run=False)
    assert out.detail.startswith("paused the rollout of reviews v5.6.0 (verified")
    assert server.received("GET")[0].query == {}


def test_an_action_never_reported_is_not_verified(
    server: HttpRecorder, client: httpx.Client
) -> None:
    server.on("POST", HOOK, Reply(202))
    server.on("GET", "/status", Reply(200, {"deploy_id": "deploy-6704", "status": "progressing"}))
    sleeps = Sleeps()
    act = actuator(
        server, client, status_url=server.url + "/status", sleep=sleeps, verify_attempts=3
    )
    out = act.rollback(DEPLOY, dry_run=False)
    assert len(server.received("GET", "/status")) == 3 and len(sleeps) == 2
    assert out.changed is True  # the request went out and was accepted ...
    assert out.detail.startswith("NOT VERIFIED:")  # ... but nobody may call it done
    assert "after 3 checks it still reports 'progressing', not 'rolled_back'" in out.detail
    assert "check the rollout by hand" in out.detail
    assert act.last_check is not None and not act.last_check.verified
    again = act.rollback(DEPLOY, dry_run=False)
    assert again.changed is False and "NOT VERIFIED" in again.detail
    assert len(server.received("POST", HOOK)) == 1


def test_a_failing_status_endpoint_leaves_the_action_unverified(
    server: HttpRecorder, client: httpx.Client
) -> None:
    server.on("POST", HOOK, Reply(202))
    server.on("GET", "/status", Reply(200, "<html>gateway</html>"))
    act = actuator(server, client, status_url=server.url + "/status", verify_attempts=2)
    out = act.rollback(DEPLOY, dry_run=False)
    assert out.detail.startswith("NOT VERIFIED:") and "no status was read" in out.detail
    assert "rollout webhook: status from" in out.detail and "gateway" in out.detail


def test_a_status_for_another_deploy_does_not_verify(
    server: HttpRecorder, client: httpx.Client
) -> None:
    server.on("POST", HOOK, Reply(202))
    server.on("GET", "/status", Reply(200, {"deploy_id": "deploy-1", "status": "rolled_back"}))
    out = actuator(server, client, status_url=server.url + "/status", verify_attempts=2).rollback(
        DEPLOY, dry_run=False
    )
    assert out.detail.startswith("NOT VERIFIED:") and "deploy-1" in out.detail


# --------------------------------------------------------------------------- failures


def test_5xx_is_retried_with_the_same_body_then_succeeds(
    server: HttpRecorder, client: httpx.Client
) -> None:
    server.on("POST", HOOK, Reply(503), Reply(502, "bad gateway"), Reply(200, {"status": "ok"}))
    sleeps = Sleeps()
    out = actuator(server, client, sleep=sleeps, backoff_s=0.5).rollback(DEPLOY, dry_run=False)
    assert out.changed is True
    assert len(server.requests) == 3 and sleeps == [0.5, 1.0]
    assert len({r.body for r in server.requests}) == 1
    assert len({r.headers["idempotency-key"] for r in server.requests}) == 1
    assert all(verify_signature(SECRET, r.body, signature(r)) for r in server.requests)


def test_5xx_exhausted_raises_and_nothing_counts_as_done(
    server: HttpRecorder, client: httpx.Client
) -> None:
    server.on("POST", HOOK, Reply(500, {"error": "deployer crashed"}))
    act = actuator(server, client, attempts=3)
    with pytest.raises(SourceUnavailable) as err:
        act.rollback(DEPLOY, dry_run=False)
    assert str(err.value) == (
        f"rollout webhook: HTTP 500 from {server.url}{HOOK} after 3 tries: deployer crashed"
    )
    assert len(server.requests) == 3
    server.on("POST", HOOK, Reply(200))
    assert act.rollback(DEPLOY, dry_run=False).changed is True  # a later try still acts


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_4xx_is_not_retried(server: HttpRecorder, client: httpx.Client, status: int) -> None:
    server.on("POST", HOOK, Reply(status, {"error": "signature mismatch"}))
    sleeps = Sleeps()
    with pytest.raises(SourceUnavailable) as err:
        actuator(server, client, sleep=sleeps).rollback(DEPLOY, dry_run=False)
    message = str(err.value)
    assert message.startswith(f"rollout webhook: HTTP {status} from http://127.0.0.1:")
    assert message.endswith(": signature mismatch") and SECRET not in message
    assert len(server.requests) == 1 and sleeps == []


def test_network_errors_are_retried_then_reported(
    server: HttpRecorder, client: httpx.Client
) -> None:
    server.on("POST", HOOK, Reply(drop=True))
    with pytest.raises(SourceUnavailable, match=r"^rollout webhook: cannot reach .* \(3 tries\)"):
        actuator(server, client).rollback(DEPLOY, dry_run=False)
    assert len(server.requests) == 3


def test_a_timeout_is_reported(server: HttpRecorder, client: httpx.Client) -> None:
    server.on("POST", HOOK, Reply(200, delay_s=0.5))
    act = actuator(server, client, timeout_s=0.05, attempts=1)
    with pytest.raises(SourceUnavailable, match=r"no answer from .* within 0\.05s \(1 try\)$"):
        act.rollback(DEPLOY, dry_run=False)


def test_an_unreachable_receiver_is_reported(client: httpx.Client) -> None:
    with HttpRecorder() as gone:
        url = gone.url
    act = WebhookActuator(url + HOOK, secret=SECRET, client=client, sleep=Sleeps(), attempts=2)
    with pytest.raises(SourceUnavailable, match=r"^rollout webhook: cannot reach .*\(2 tries\)"):
        act.pause(DEPLOY, dry_run=False)


def test_an_answer_that_is_not_json_is_reported(server: HttpRecorder, client: httpx.Client) -> None:
    server.on("POST", HOOK, Reply(200, "<html>login</html>"))
    with pytest.raises(SourceUnavailable, match=r"rollout webhook: answer from .* is not a JSON"):
        actuator(server, client).rollback(DEPLOY, dry_run=False)


def test_configuration_mistakes_are_config_errors(client: httpx.Client) -> None:
    with pytest.raises(ConfigError, match="secret is empty"):
        WebhookActuator("https://deployer.internal/hook", secret="", client=client)
    with pytest.raises(ConfigError, match="URL must be"):
        WebhookActuator("deployer.internal/hook", secret=SECRET, client=client)
    with pytest.raises(ConfigError, match="URL must be"):
        WebhookEscalator("ftp://oncall/hook", secret=SECRET, client=client)


# --------------------------------------------------------------------------- escalation


def test_escalator_signs_escalations_and_notifications(
    server: HttpRecorder, client: httpx.Client
) -> None:
    server.on("POST", "/oncall", Reply(202, {"status": "accepted"}))
    esc = WebhookEscalator(server.url + "/oncall", secret=SECRET, client=client, clock=lambda: NOW)
    out = esc.escalate("reviews", "errors past SLO since deploy-6704", "critical")
    note = esc.notify("reviews", "rolled back; watching")
    assert out.changed and out.detail == "escalated (critical): errors past SLO since deploy-6704"
    assert note.changed and note.detail == "rolled back; watching"
    first, second = server.requests
    for request in server.requests:
        assert verify_signature(SECRET, request.body, signature(request))
        assert not verify_signature("wrong", request.body, signature(request))
        assert request.headers["idempotency-key"] == request.json()["idempotency_key"]
    assert first.json() == {
        "action": "escalate",
        "service": "reviews",
        "severity": "critical",
        "message": "errors past SLO since deploy-6704",
        "idempotency_key": first.headers["idempotency-key"],
        "timestamp": "2026-05-13T14:50:00.250Z",
    }
    assert second.json()["action"] == "notify" and second.json()["severity"] == "info"


def test_escalator_retries_5xx_and_reports_4xx(server: HttpRecorder, client: httpx.Client) -> None:
    server.on("POST", "/oncall", Reply(500), Reply(409, {"error": "already paged"}))
    esc = WebhookEscalator(server.url + "/oncall", secret=SECRET, client=client, sleep=Sleeps())
    out = esc.escalate("reviews", "x", "warning")
    assert out.changed is False and out.detail.startswith("already done")
    server.on("POST", "/oncall", Reply(400, {"message": "unknown service"}))
    with pytest.raises(SourceUnavailable, match=r"^escalation webhook: HTTP 400 .*unknown service"):
        esc.notify("reviews", "y")


# --------------------------------------------------------------------------- through the tools


def _content(result: Any) -> dict[str, Any]:
    assert result.ok, result.content
    data: dict[str, Any] = json.loads(result.content)
    return data


def test_the_rollback_tool_drives_the_webhook_once(
    server: HttpRecorder, client: httpx.Client
) -> None:
    server.on("POST", HOOK, Reply(202, {"status": "accepted"}))
    server.on("GET", "/status", Reply(200, {"deploy_id": "deploy-6704", "status": "rolled_back"}))
    server.on(
        "POST", "/v2/enqueue", Reply(202, {"status": "success", "dedup_key": "vigil/reviews"})
    )
    bundle = read_bundle(SUITE / "error_step-0001")
    act = actuator(server, client, status_url=server.url + "/status")
    pager = PagerDutyEscalator(
        "R0UTINGKEY0000000000000000000000", client=client, url=server.url + "/v2/enqueue"
    )
    ctx = bundle_context(bundle)
    ctx.actuator, ctx.escalator = act, pager
    tools = Toolbox(all_tools(), ctx)

    first = _content(tools.call("rollback", {"confidence": 0.9, "reason": "errors past SLO"}))
    assert first["status"] == "executed" and "tier 3" in first["message"]
    assert "verified" in first["detail"] and "NOT VERIFIED" not in first["detail"]
    [hook] = server.received("POST", HOOK)
    assert verify_signature(SECRET, hook.body, signature(hook))
    sent = hook.json()
    assert (sent["action"], sent["service"], sent["deploy_id"]) == (
        "rollback",
        "reviews",
        "deploy-6704",
    )
    assert (sent["version"], sent["previous_version"]) == ("v5.6.0", "v5.5.6")

    # The same investigation asking again is stopped by the guard ...
    again = _content(tools.call("rollback", {"confidence": 0.9, "reason": "again"}))
    assert again["status"] == "blocked"
    # ... and another investigation reaching the actuator gets a no-op.
    other = bundle_context(bundle)
    other.actuator, other.escalator = act, pager
    repeat = _content(
        Toolbox(all_tools(), other).call("rollback", {"confidence": 0.9, "reason": "x"})
    )
    assert repeat["status"] == "no_op" and repeat["detail"].startswith("already done")
    assert len(server.received("POST", HOOK)) == 1

    page = _content(
        tools.call("escalate", {"summary": "rolled back reviews", "severity": "critical"})
    )
    assert page["status"] == "sent" and "vigil/reviews" in page["message"]
    [event] = server.received("POST", "/v2/enqueue")
    assert event.json()["event_action"] == "trigger"
    assert event.json()["payload"]["severity"] == "critical"
    assert event.json()["payload"]["component"] == "reviews"
