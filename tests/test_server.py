"""The server in process (httpx over ASGI): webhooks, durable intake, workers, watch, reads."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.bundle.reader import read_bundle
from agent.judge.core import judge
from agent.server.app import WebhookAuth, create_app
from agent.server.intake import Intake
from agent.server.metrics import ServerMetrics
from agent.server.replay import BundleBackends, deploy_started
from agent.server.runtime import Runtime

SUITE = Path(__file__).resolve().parent.parent / "evals" / "suites" / "small"


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Server:
    def __init__(self, tmp: Path, bundles: list[str], *, auth: WebhookAuth | None = None) -> None:
        self.bundles = [read_bundle(SUITE / n) for n in bundles]
        self.clock = Clock(self.bundles[0].manifest.deploy.started_at.timestamp())
        self.intake = Intake(tmp / "vigil.db")
        self.metrics = ServerMetrics(queue_depth=self.intake.depth, intake=self.intake)
        self.backends = BundleBackends(self.bundles)
        self.runtime = Runtime(self.intake, self.backends, clock=self.clock)
        self.app = create_app(self.intake, self.metrics, auth=auth, clock=self.clock)

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://vigil") as client:
                return await client.request(method, path, **kw)

        return asyncio.run(go())

    def drain(self) -> int:
        n = 0
        while handled := self.runtime.work_once():
            n += handled
        return n


def _alert(name: str) -> dict[str, Any]:
    return json.loads((SUITE / name / "alert.json").read_text())


def _deploy_record(name: str, kind: str = "started") -> tuple[dict[str, Any], str]:
    return deploy_started(read_bundle(SUITE / name), kind)


def test_an_alert_is_committed_before_it_is_acknowledged_and_resends_change_nothing(
    tmp_path: Path,
) -> None:
    s = Server(tmp_path, ["error_step-0001"])
    body = _alert("error_step-0001")
    first = s.request("POST", "/webhooks/alertmanager", json=body)
    assert first.status_code == 200, first.text
    ack = first.json()
    assert ack["status"] == "accepted" and ack["new"] == len(body["alerts"])
    # Committed: a fresh connection (another process, as after a crash) sees it.
    again = Intake(tmp_path / "vigil.db")
    assert [j["id"] for j in again.jobs()] == [ack["job_id"]]
    assert len(again.alerts()) == len(body["alerts"])
    resend = s.request("POST", "/webhooks/alertmanager", json=body).json()
    assert resend["job_id"] is None and resend["duplicates"] == len(body["alerts"])
    assert len(again.jobs()) == 1
    resolved = json.loads(json.dumps(body))
    for a in resolved["alerts"]:
        a["status"] = "resolved"
    r = s.request("POST", "/webhooks/alertmanager", json=resolved).json()
    assert r["updated"] == len(body["alerts"]) and r["job_id"] is None
    assert {a["status"] for a in again.alerts()} == {"resolved"}


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"{not json", 400, "not JSON"),
        (b"[]", 422, "body"),
        (b'{"version": "4"}', 422, "groupKey"),
        (
            b'{"version": "3", "groupKey": "g", "status": "firing", "receiver": "r", "alerts": []}',
            422,
            "version",
        ),
    ],
)
def test_malformed_alerts_get_a_4xx_with_a_reason(
    tmp_path: Path, body: bytes, status: int, reason: str
) -> None:
    s = Server(tmp_path, ["error_step-0001"])
    r = s.request(
        "POST", "/webhooks/alertmanager", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == status
    assert reason in r.json()["reason"]
    assert s.intake.jobs() == []


def test_webhook_auth(tmp_path: Path) -> None:
    s = Server(tmp_path, ["error_step-0001"], auth=WebhookAuth(bearer_token="t0k"))
    body = _alert("error_step-0001")
    assert s.request("POST", "/webhooks/alertmanager", json=body).status_code == 401
    bad = {"authorization": "Bearer nope"}
    assert s.request("POST", "/webhooks/alertmanager", json=body, headers=bad).status_code == 401
    good = {"authorization": "Bearer t0k"}
    assert s.request("POST", "/webhooks/alertmanager", json=body, headers=good).status_code == 200
    basic = Server(tmp_path / "b", ["error_step-0001"], auth=WebhookAuth(basic=("am", "pw")))
    creds = base64.b64encode(b"am:pw").decode()
    ok = basic.request(
        "POST", "/webhooks/alertmanager", json=body, headers={"authorization": f"Basic {creds}"}
    )
    assert ok.status_code == 200
    metrics = s.request("GET", "/metrics").text
    assert 'vigil_webhooks_rejected_total{kind="alertmanager",status="401"} 2.0' in metrics


def test_workers_triage_the_incident_and_group_alerts_of_one_deploy(tmp_path: Path) -> None:
    s = Server(tmp_path, ["error_step-0001"])
    record, dedup = _deploy_record("error_step-0001")
    s.intake.accept_deploy(record, dedup, s.clock())
    body = _alert("error_step-0001")
    s.clock.t = json_time(body["alerts"][0]["startsAt"]) + 30
    s.request("POST", "/webhooks/alertmanager", json=body)
    second = json.loads(json.dumps(body))
    for a in second["alerts"]:
        a["fingerprint"] = (a.get("fingerprint") or "x") + "-2"
        a["labels"]["alertname"] = "ErrorRateSpikeAfterDeploy"
    s.request("POST", "/webhooks/alertmanager", json=second)
    # The deploy job, then one alert job: the second alert joined the triage still queued.
    assert s.drain() == 2
    incidents = s.request("GET", "/api/incidents").json()
    assert len(incidents) == 1
    (inc,) = incidents
    assert (inc["tier"], inc["deploy_id"], inc["deploy_caused"]) == (3, "deploy-6704", 1)
    detail = s.request("GET", f"/api/incidents/{inc['id']}").json()
    assert detail["result"]["suspect_files"][0] == "src/reviews/serializers.py"
    assert [e["kind"] for e in detail["audit"]].count("tool_call") >= 5
    assert {a["incident_id"] for a in s.intake.alerts()} == {inc["id"]}
    assert [c.action for c in s.backends.actuator.calls] == ["rollback"]  # type: ignore[attr-defined]
    assert s.request("GET", "/api/incidents/nope").status_code == 404


def json_time(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_a_watched_deploy_is_rolled_back_at_the_step_the_judge_reaches_tier_3(
    tmp_path: Path,
) -> None:
    s = Server(tmp_path, ["error_step-0001", "healthy_steady-0000"])
    for name in ("error_step-0001", "healthy_steady-0000"):
        record, dedup = _deploy_record(name)
        s.intake.accept_deploy(record, dedup, s.clock())
    s.drain()
    bad, good = s.bundles
    step = bad.manifest.step_seconds
    t = min(b.manifest.deploy.started_at.timestamp() for b in s.bundles)
    end = max(b.manifest.watch_until.timestamp() for b in s.bundles)
    while t <= end + step:
        s.clock.t = t
        s.runtime.watch_once()
        t += step
    session = s.request("GET", "/api/watch/deploy-6704").json()
    assert session["state"] == "rolled_back"
    first3 = float(session["first_tier_at"]["3"])
    rollback = next(a for a in session["actions"] if a["action"] == "rollback")
    assert rollback["status"] == "executed" and rollback["at"] == first3
    # No look-ahead and no delay: the first step the judge says 3 is the step we acted.
    assert judge(bad, first3).tier == 3 and judge(bad, first3 - step).tier < 3
    healthy = s.request("GET", f"/api/watch/{good.manifest.deploy.id}").json()
    assert healthy["state"] == "completed" and healthy["max_tier"] <= 1
    assert len(healthy["health_checks"]) >= 60
    stability = {r["service"]: r for r in s.request("GET", "/api/stability").json()}
    assert stability["reviews"]["rollback_rate"] == 1.0
    assert stability[good.manifest.service]["rollback_rate"] == 0.0
    metrics = s.request("GET", "/metrics").text
    assert 'deployment_rollback_total{service="reviews"} 1.0' in metrics
    assert 'vigil_watch_sessions{state="rolled_back"} 1.0' in metrics
    watch = s.request("GET", "/api/incidents/watch-deploy-6704").json()
    assert any(e["kind"] == "action" for e in watch["audit"])


def test_health_and_readiness(tmp_path: Path) -> None:
    s = Server(tmp_path, ["error_step-0001"])
    assert s.request("GET", "/healthz").json() == {"status": "ok"}
    ready = s.request("GET", "/readyz").json()
    assert ready["status"] == "ready" and ready["queue_depth"] == 0
    schema = s.request("GET", "/openapi.json").json()
    assert "/webhooks/alertmanager" in schema["paths"] and "/webhooks/deploy" in schema["paths"]


def test_a_crashed_worker_job_is_resumed(tmp_path: Path) -> None:
    s = Server(tmp_path, ["error_step-0001"])
    s.request("POST", "/webhooks/alertmanager", json=_alert("error_step-0001"))
    job = s.intake.claim(s.clock())
    assert job is not None and s.intake.claim(s.clock()) is None
    # The process dies here; on restart the running job goes back to pending.
    restarted = Intake(tmp_path / "vigil.db")
    assert restarted.recover() == 1
    again = restarted.claim(s.clock())
    assert again is not None and again.id == job.id and again.attempts == 2


FIXTURES = Path(__file__).resolve().parent / "fixtures" / "deploy_events"


def test_deploy_webhooks_are_committed_once_and_bad_ones_refused(tmp_path: Path) -> None:
    import hashlib
    import hmac

    s = Server(tmp_path, ["error_step-0001"])
    started = (FIXTURES / "generic_started.json").read_bytes()
    headers = {"content-type": "application/json"}
    first = s.request("POST", "/webhooks/deploy", content=started, headers=headers)
    assert first.status_code == 200 and first.json()["status"] == "accepted", first.text
    again = s.request("POST", "/webhooks/deploy", content=started, headers=headers).json()
    assert again == {"status": "duplicate", "job_id": None}
    (deploy,) = s.request("GET", "/api/deploys").json()
    assert (deploy["id"], deploy["service"], deploy["version"]) == (
        "deploy-8841",
        "checkout",
        "v2.14.0",
    )
    assert len(s.intake.jobs()) == 1
    done = (FIXTURES / "generic_succeeded.json").read_bytes()
    s.request("POST", "/webhooks/deploy", content=done, headers=headers)
    assert s.request("GET", "/api/deploys").json()[0]["status"] == "succeeded"

    secret = "gh-secret"
    signed = Server(tmp_path / "gh", ["error_step-0001"])
    signed.app = create_app(signed.intake, signed.metrics, github_secret=secret)
    body = (FIXTURES / "github_deployment_status_in_progress.json").read_bytes()
    sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    gh = {"content-type": "application/json", "x-github-event": "deployment_status"}
    ok = signed.request(
        "POST", "/webhooks/deploy", content=body, headers={**gh, "x-hub-signature-256": sig}
    )
    assert ok.status_code == 200 and ok.json()["status"] == "accepted", ok.text
    forged = signed.request(
        "POST", "/webhooks/deploy", content=body, headers={**gh, "x-hub-signature-256": "sha256=00"}
    )
    assert forged.status_code == 401 and forged.json()["reason"]
    ping = (FIXTURES / "github_ping.json").read_bytes()
    psig = "sha256=" + hmac.new(secret.encode(), ping, hashlib.sha256).hexdigest()
    pong = signed.request(
        "POST",
        "/webhooks/deploy",
        content=ping,
        headers={**gh, "x-github-event": "ping", "x-hub-signature-256": psig},
    )
    assert pong.json() == {"status": "pong"}
    bad = s.request("POST", "/webhooks/deploy", content=b'{"service": 3}', headers=headers)
    assert bad.status_code in (400, 422) and bad.json()["reason"]


def test_writes_under_the_lock_never_scan_the_alerts_table(tmp_path: Path) -> None:
    """Linking a finished job's alerts to its incident runs inside the write lock every
    acknowledgement waits for: it must use an index, not a scan that grows with the table."""
    intake = Intake(tmp_path / "vigil.db")
    conn = intake._conn()
    for sql in (
        "UPDATE alerts SET incident_id = 'x' WHERE job_id = 1",
        "SELECT status FROM alerts WHERE incident_id = 'x'",
        "SELECT id FROM jobs WHERE kind = 'alert' AND status = 'pending' AND service = 's'",
    ):
        plan = " ".join(str(row[-1]) for row in conn.execute("EXPLAIN QUERY PLAN " + sql))
        assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, (sql, plan)
        assert "SCAN" not in plan, (sql, plan)


def test_no_garbage_collection_while_the_write_lock_is_held(tmp_path: Path) -> None:
    import gc
    import threading

    from agent.server.intake import gc_paused

    intake = Intake(tmp_path / "vigil.db")
    seen: list[bool] = []
    assert gc.isenabled()
    intake.locked(lambda: seen.append(gc.isenabled()))
    assert seen == [False] and gc.isenabled()
    # Overlapping holders (two threads, two databases): enabled again only after the last.
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with gc_paused():
            inside.set()
            release.wait(5)

    other = threading.Thread(target=hold)
    other.start()
    inside.wait(5)
    with gc_paused():
        pass
    assert not gc.isenabled()
    release.set()
    other.join()
    assert gc.isenabled()
    # Collection that was off stays off.
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
