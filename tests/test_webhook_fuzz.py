"""Fuzzing the server in process: whatever arrives, the answer is a 2xx, or a 4xx whose JSON
body says why, and a rejected webhook records nothing. Never a 5xx.

Two layers: schemathesis generates requests from the app's own OpenAPI schema for every
operation (valid and invalid ones); hand-written Hypothesis strategies post arbitrary bytes,
arbitrary JSON and near-valid payloads, with and without a content type and with the headers
the deploy webhook reads (`X-GitHub-Event`, `X-Hub-Signature-256`, `Authorization`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from agent.bundle.reader import read_bundle
from agent.server.app import WebhookAuth, create_app
from agent.server.intake import Intake
from agent.server.metrics import ServerMetrics
from agent.server.replay import BundleBackends
from agent.server.runtime import Runtime

SUITE = Path(__file__).resolve().parent.parent / "evals" / "suites" / "small"
BUNDLE = "error_step-0001"
TOKEN = "fuzz-token"
GITHUB_SECRET = "fuzz-github-secret"
WEBHOOKS = ("/webhooks/alertmanager", "/webhooks/deploy")
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "deploy_events"


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@cache
def _alert_payload() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SUITE / BUNDLE / "alert.json").read_text())
    return data


@cache
def _deploy_event() -> dict[str, Any]:
    m = read_bundle(SUITE / BUNDLE).manifest
    return {
        "service": m.service,
        "deploy_id": m.deploy.id,
        "version": m.deploy.version,
        "previous_version": m.deploy.previous_version,
        "kind": "started",
        "started_at": m.deploy.started_at.isoformat(),
        "environment": m.environment,
        "strategy": m.deploy.strategy.value,
    }


def _app(db: Path, *, secured: bool) -> tuple[FastAPI, Intake]:
    """The app over a store that already holds a triaged incident and a watched deploy, so
    the read API has rows to return (built as tests/test_server.py builds it)."""
    bundle = read_bundle(SUITE / BUNDLE)
    clock = Clock(bundle.manifest.deploy.started_at.timestamp())
    intake = Intake(db)
    metrics = ServerMetrics(queue_depth=intake.depth, intake=intake)
    app = create_app(
        intake,
        metrics,
        auth=WebhookAuth(bearer_token=TOKEN) if secured else None,
        github_secret=GITHUB_SECRET if secured else None,
        clock=clock,
    )
    runtime = Runtime(intake, BundleBackends([bundle]), clock=clock)
    headers = {"authorization": f"Bearer {TOKEN}"}
    with TestClient(app) as client:
        assert client.post("/webhooks/deploy", json=_deploy_event()).status_code == 200
        clock.t += 240
        alert = client.post("/webhooks/alertmanager", json=_alert_payload(), headers=headers)
        assert alert.status_code == 200, alert.text
    while runtime.work_once():
        pass
    runtime.watch_once()
    with TestClient(app) as client:
        modes = sorted(i["mode"] for i in client.get("/api/incidents").json())
        assert modes == ["offline", "watch"]
        assert client.get(f"/api/watch/{_deploy_event()['deploy_id']}").status_code == 200
    return app, intake


# --- schemathesis: every operation of the OpenAPI schema --------------------------------------


def dangling_refs(doc: dict[str, Any]) -> list[str]:
    """The `$ref`s of an OpenAPI document that point at nothing in it."""
    refs: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.add(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    dangling = []
    for ref in sorted(refs):
        node: object = doc
        for part in ref.removeprefix("#/").split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            node = node.get(part) if isinstance(node, dict) else None
        if not ref.startswith("#/") or node is None:
            dangling.append(ref)
    return dangling


def test_the_openapi_document_has_no_dangling_refs(tmp_path: Path) -> None:
    intake = Intake(tmp_path / "vigil.db")
    app = create_app(intake, ServerMetrics(queue_depth=intake.depth, intake=intake))
    assert dangling_refs(app.openapi()) == []


@pytest.fixture(scope="module")
def app_schema(tmp_path_factory: pytest.TempPathFactory) -> Any:
    app, _ = _app(tmp_path_factory.mktemp("schema") / "vigil.db", secured=False)
    assert dangling_refs(app.openapi()) == []
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("app_schema")


@schema.include(path_regex="^/webhooks/").parametrize()
@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_webhook_answers_a_server_error(case: Any) -> None:
    case.call_and_validate(checks=[not_a_server_error])


@schema.exclude(path_regex="^/webhooks/").parametrize()
@settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_read_operation_answers_a_server_error(case: Any) -> None:
    case.call_and_validate(checks=[not_a_server_error])


# --- Hypothesis: bytes, JSON and near-valid payloads, with arbitrary headers -------------------

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(["", " ", "<no value>", "2026-05-13T14:41:00Z", "started", "4"])
)
json_values = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
_header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40).map(
    str.strip
)


@cache
def _fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


# The deploy webhook's formats: a valid payload of each, and the GitHub event it comes with.
DEPLOY_BASES: dict[str, tuple[Callable[[], dict[str, Any]], str | None]] = {
    "generic": (_deploy_event, None),
    "github_status": (
        lambda: _fixture("github_deployment_status_in_progress"),
        "deployment_status",
    ),
    "github_created": (lambda: _fixture("github_deployment_created"), "deployment"),
    "argo_rollouts": (lambda: _fixture("argo_rollouts_step_completed"), None),
    "argocd": (lambda: _fixture("argocd_sync_running"), None),
}


@st.composite
def near_valid(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    """A valid payload with up to three fields (at the top, or in a nested object or the
    first item of a list) replaced by arbitrary JSON or removed."""
    doc: dict[str, Any] = json.loads(json.dumps(base))
    targets: list[dict[str, Any]] = [doc]
    for value in doc.values():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            targets.append(value[0])
        elif isinstance(value, dict) and value:
            targets.append(value)
    for _ in range(draw(st.integers(0, 3))):
        target = draw(st.sampled_from(targets))
        key = draw(st.sampled_from(sorted(target)) if target else st.text(max_size=10))
        if draw(st.integers(0, 3)) == 0:
            target.pop(key, None)
        else:
            target[key] = draw(json_values)
    return doc


@st.composite
def webhook_requests(draw: st.DrawFn, path: str) -> tuple[bytes, dict[str, str]]:
    """A body for `path` (bytes, any JSON, or a near-valid payload of a format it reads) and
    headers: a content type (mostly JSON, sometimes not, sometimes none), maybe a GitHub event
    (usually the body's own), a signature (right, wrong or garbage) and an Authorization."""
    kind = draw(st.sampled_from(["bytes", "json", "payload", "payload", "payload"]))
    event: str | None = None
    if kind == "bytes":
        body = draw(st.binary(max_size=200))
    elif kind == "json":
        body = json.dumps(draw(json_values)).encode()
    elif path == "/webhooks/alertmanager":
        body = json.dumps(draw(near_valid(_alert_payload()))).encode()
    else:
        make, event = DEPLOY_BASES[draw(st.sampled_from(sorted(DEPLOY_BASES)))]
        body = json.dumps(draw(near_valid(make()))).encode()
    headers: dict[str, str] = {}
    json_type = st.sampled_from(
        [None, "application/json", "application/json; charset=utf-8", "application/x+json"]
    )
    other_type = st.sampled_from(["text/plain", "application/x-www-form-urlencoded"])
    content_type = draw(json_type | json_type | json_type | other_type | _header_text)
    if content_type is not None:
        headers["content-type"] = content_type
    event = draw(
        st.just(event)
        | st.just(event)
        | st.none()
        | st.sampled_from(["deployment_status", "deployment", "ping", "push", "DEPLOYMENT"])
        | _header_text
    )
    if event is not None:
        headers["x-github-event"] = event
    signed = "sha256=" + hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
    signature = draw(st.just(signed) | st.none() | st.just("sha256=00") | _header_text)
    if signature is not None:
        headers["x-hub-signature-256"] = signature
    auth = draw(st.just(f"Bearer {TOKEN}") | st.none() | st.just("Basic !!!") | _header_text)
    if auth is not None:
        headers["authorization"] = auth
    return body, headers


@pytest.fixture(scope="module", params=["open", "secured"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, Intake]]:
    secured = request.param == "secured"
    app, intake = _app(tmp_path_factory.mktemp(request.param) / "vigil.db", secured=secured)
    with TestClient(app) as client:
        yield client, intake


@pytest.mark.parametrize("path", WEBHOOKS)
@settings(
    max_examples=250,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_any_webhook_gets_a_2xx_or_a_4xx_with_a_reason(
    served: tuple[TestClient, Intake], path: str, data: st.DataObject
) -> None:
    client, intake = served
    body, headers = data.draw(webhook_requests(path), label="request")
    jobs_before = len(intake.jobs())
    r = client.post(path, content=body, headers=headers)
    assert 200 <= r.status_code < 300 or 400 <= r.status_code < 500, (r.status_code, r.text)
    answer = r.json()
    queued = len(intake.jobs()) - jobs_before
    if r.status_code >= 400:
        assert answer["status"] == "rejected", answer
        assert isinstance(answer["reason"], str) and answer["reason"].strip(), answer
        assert queued == 0, "a rejected webhook queued a job"
    elif path == "/webhooks/alertmanager":
        alerts = json.loads(body)["alerts"]
        assert answer["status"] == "accepted", answer
        assert answer["new"] + answer["updated"] + answer["duplicates"] == len(alerts)
        assert queued == (answer["job_id"] is not None and answer["job_id"] > jobs_before)
    else:
        assert answer["status"] in {"accepted", "duplicate", "ignored", "pong"}, answer
        assert queued == (answer["status"] == "accepted"), answer


NESTED = [b"[" * 100_000, b'{"a":' * 5000, b"[" * 2000 + b"]" * 2000]


@pytest.mark.parametrize(
    "path",
    [
        "/webhooks/alertmanager",
        "/webhooks/deploy",
    ],
)
def test_deeply_nested_json_is_a_400_not_a_server_error(tmp_path: Path, path: str) -> None:
    intake = Intake(tmp_path / "vigil.db")
    app = create_app(intake, ServerMetrics(queue_depth=intake.depth, intake=intake))
    with TestClient(app, raise_server_exceptions=False) as client:
        answers = [
            client.post(path, content=body, headers={"content-type": "application/json"})
            for body in NESTED
        ]
    assert [r.status_code for r in answers] == [400] * 3, [r.text[:80] for r in answers]
    assert all(r.json()["reason"] for r in answers)
    assert intake.jobs() == []
