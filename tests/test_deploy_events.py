"""Deploy webhooks → DeployEvent: every format, signatures, dedup keys, every rejection."""

from __future__ import annotations

import hashlib
import hmac
import json
import pickle
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.errors import VigilError
from agent.server.deploy_events import (
    TEMPLATES,
    DeployEvent,
    Ignored,
    ParsedWebhook,
    Ping,
    WebhookRejected,
    parse_deploy_event,
    parse_webhook,
)

FIXTURES = Path(__file__).parent / "fixtures" / "deploy_events"
NOW = datetime(2024, 6, 11, 14, 10, tzinfo=UTC)
SECRET = "whsec-8f2b1c"
JSON = {"Content-Type": "application/json"}


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def data(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(raw(name))
    return loaded


def dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github(
    event: str, body: bytes, *, delivery: str = "7c1e5a40-27f3-11ef-9b2e-6f3d0c1a2b3c"
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/5b1a6c3",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-GitHub-Hook-ID": "481226017",
        "X-Hub-Signature-256": sign(body),
    }


def parse(headers: dict[str, str], body: bytes, **kw: Any) -> ParsedWebhook:
    result = parse_webhook(headers, body, now=NOW, **kw)
    # parse_deploy_event is the same parse, with None for anything that is not a deploy
    short = parse_deploy_event(headers, body, now=NOW, **kw)
    assert short == (result if isinstance(result, DeployEvent) else None)
    return result


def event(headers: dict[str, str], body: bytes, **kw: Any) -> DeployEvent:
    result = parse(headers, body, **kw)
    assert isinstance(result, DeployEvent), result
    return result


def rejected(headers: dict[str, str], body: bytes, **kw: Any) -> WebhookRejected:
    with pytest.raises(WebhookRejected) as info:
        parse(headers, body, **kw)
    return info.value


def t(text: str) -> datetime:
    return datetime.fromisoformat(text)


# ---------------------------------------------------------------------------- generic


def test_a_generic_event_maps_every_field() -> None:
    assert event(JSON, raw("generic_started.json")) == DeployEvent(
        source="generic",
        kind="started",
        service="checkout",
        environment="production",
        deploy_id="deploy-8841",
        version="v2.14.0",
        previous_version="v2.13.2",
        started_at=t("2024-06-11T14:02:10+00:00"),
        at=t("2024-06-11T14:02:10+00:00"),
        strategy="canary",
        commit="9f1c2e7b4a6d8e0f3b5c7a9d1e2f4a6b8c0d2e4f",
        url="https://ci.acme-shop.example/pipelines/checkout/8841",
        dedup_key="generic:id:evt-20240611-140210-checkout",
    )


def test_generic_status_is_an_alias_of_kind_and_the_same_deploy_keeps_its_id() -> None:
    done = event({}, raw("generic_succeeded.json"))
    assert (done.kind, done.deploy_id, done.at) == (
        "succeeded",
        "deploy-8841",
        t("2024-06-11T14:07:52+00:00"),
    )
    assert done.dedup_key.startswith("generic:body:")


def test_generic_defaults_numbers_unix_times_and_strategy_spellings() -> None:
    back = event(JSON, raw("generic_rolled_back.json"))
    assert back.kind == "rolled_back"
    assert (back.version, back.previous_version) == ("412", "411")
    assert back.started_at == datetime.fromtimestamp(1718114530, tz=UTC)
    assert back.at == NOW  # no `at`: the time it was received
    assert back.strategy == "rolling"  # Kubernetes' "RollingUpdate"
    assert back.deploy_id == "generic:reviews:412"  # no deploy_id: service and version
    assert back.environment is None and back.commit is None and back.url is None


@pytest.mark.parametrize(
    "kind", ["started", "progressing", "succeeded", "failed", "paused", "aborted", "rolled_back"]
)
def test_every_generic_kind_is_accepted_in_any_case(kind: str) -> None:
    body = dumps({"service": "reviews", "version": "1.2", "kind": kind.upper()})
    assert event(JSON, body).kind == kind


def test_a_minimal_generic_event_starts_now() -> None:
    e = event(JSON, dumps({"service": "reviews", "version": "1.2", "kind": "started"}))
    assert (e.started_at, e.at, e.environment) == (NOW, NOW, None)
    with_env = event(
        JSON,
        dumps({"service": "reviews", "version": "1.2", "kind": "started", "environment": "eu"}),
    )
    assert with_env.deploy_id == "generic:reviews:eu:1.2"


# ---------------------------------------------------------------------------- GitHub


def test_a_github_success_status_maps_every_field() -> None:
    body = raw("github_deployment_status_success.json")
    run = "https://github.com/acme-shop/checkout/actions/runs/9478120346/job/26113358720"
    assert event(github("deployment_status", body), body, github_secret=SECRET) == DeployEvent(
        source="github",
        kind="succeeded",
        service="checkout",
        environment="production",
        deploy_id="github:1187462019",
        version="v2.14.0",
        previous_version="v2.13.2",
        started_at=t("2024-06-11T14:02:10+00:00"),
        at=t("2024-06-11T14:07:52+00:00"),
        strategy="canary",
        commit="9f1c2e7b4a6d8e0f3b5c7a9d1e2f4a6b8c0d2e4f",
        url=run,
        dedup_key="github:1187462019:status:2391045587:success",
    )


@pytest.mark.parametrize(
    ("fixture", "kind"),
    [
        ("github_deployment_status_pending.json", "started"),
        ("github_deployment_status_in_progress.json", "progressing"),
        ("github_deployment_status_success.json", "succeeded"),
        ("github_deployment_status_failure.json", "failed"),
    ],
)
def test_github_states_map_to_kinds_of_one_deploy(fixture: str, kind: str) -> None:
    body = raw(fixture)
    e = event(github("deployment_status", body), body, github_secret=SECRET)
    assert (e.kind, e.deploy_id, e.service, e.version) == (
        kind,
        "github:1187462019",
        "checkout",
        "v2.14.0",  # also when `payload` arrives as a JSON string (the pending fixture)
    )
    assert e.started_at == t("2024-06-11T14:02:10+00:00")


def test_a_status_without_a_log_url_has_no_url() -> None:
    body = raw("github_deployment_status_pending.json")
    assert event(github("deployment_status", body), body).url is None


@pytest.mark.parametrize(("state", "kind"), [("queued", "started"), ("error", "failed")])
def test_the_other_github_states(state: str, kind: str) -> None:
    payload = data("github_deployment_status_success.json")
    payload["deployment_status"]["state"] = state
    body = dumps(payload)
    assert event(github("deployment_status", body), body).kind == kind


@pytest.mark.parametrize("state", ["inactive", "waiting"])
def test_inactive_and_waiting_statuses_are_ignored_not_deploys(state: str) -> None:
    payload = data("github_deployment_status_inactive.json")
    payload["deployment_status"]["state"] = state
    body = dumps(payload)
    result = parse(github("deployment_status", body), body, github_secret=SECRET)
    assert isinstance(result, Ignored) and result.source == "github"
    assert state in result.reason


def test_a_created_deployment_is_started_and_defaults_to_the_repository_and_sha() -> None:
    body = raw("github_deployment_created.json")
    e = event(github("deployment", body), body, github_secret=SECRET)
    assert e.kind == "started" and e.environment == "staging"
    assert (e.service, e.version, e.commit) == (
        "checkout",  # repository.name: the payload names no service
        "4b9e2c1d7a3f",
        "4b9e2c1d7a3f5e6b8c0d2f4a6b8c0e1f3a5b7c9d",
    )
    assert e.started_at == e.at == t("2024-06-11T16:45:29+00:00")
    assert e.dedup_key == "github:1187463555:created"


def test_a_deployment_event_with_another_action_is_ignored() -> None:
    payload = data("github_deployment_created.json")
    payload["action"] = "deleted"
    body = dumps(payload)
    assert isinstance(parse(github("deployment", body), body), Ignored)


def test_a_ping_is_answered_without_a_deploy() -> None:
    body = raw("github_ping.json")
    assert parse(github("ping", body), body, github_secret=SECRET) == Ping(hook_id=481226017)
    assert parse(github("ping", body), body) == Ping(hook_id=481226017)
    # the server's entry point: None, so it answers 200 and creates no deploy
    assert parse_deploy_event(github("ping", body), body, github_secret=SECRET, now=NOW) is None


def test_headers_are_case_insensitive() -> None:
    body = raw("github_deployment_status_success.json")
    mixed = github("deployment_status", body)
    lower = {k.lower(): v for k, v in mixed.items()}
    upper = {k.upper(): v for k, v in mixed.items()}
    results = {event(h, body, github_secret=SECRET) for h in (mixed, lower, upper)}
    assert len(results) == 1


# ---------------------------------------------------------------------------- signatures


def test_a_good_signature_is_accepted() -> None:
    body = raw("github_deployment_status_failure.json")
    assert event(github("deployment_status", body), body, github_secret=SECRET).kind == "failed"


def test_a_signature_made_with_another_secret_is_refused() -> None:
    body = raw("github_deployment_status_failure.json")
    headers = github("deployment_status", body) | {"X-Hub-Signature-256": sign(body, "other")}
    exc = rejected(headers, body, github_secret=SECRET)
    assert (exc.status, exc.reason) == (
        401,
        "X-Hub-Signature-256 does not match the body: check the webhook secret",
    )
    assert SECRET not in str(exc)


def test_a_signature_of_another_body_is_refused() -> None:
    body = raw("github_deployment_status_failure.json")
    headers = github("deployment_status", body)
    tampered = body.replace(b'"failure"', b'"success"')
    assert rejected(headers, tampered, github_secret=SECRET).status == 401


@pytest.mark.parametrize("value", ["sha1=" + "0" * 40, "sha256=", "garbage", "sha256=zz\u00e9"])
def test_a_malformed_signature_is_refused(value: str) -> None:
    body = raw("github_ping.json")
    headers = github("ping", body) | {"X-Hub-Signature-256": value}
    assert rejected(headers, body, github_secret=SECRET).status == 401


def test_a_missing_signature_is_refused_when_a_secret_is_configured() -> None:
    body = raw("github_deployment_status_success.json")
    headers = github("deployment_status", body)
    del headers["X-Hub-Signature-256"]
    exc = rejected(headers, body, github_secret=SECRET)
    assert exc.status == 401 and exc.reason.startswith("missing X-Hub-Signature-256")
    # ... the signature is checked before anything else: even a ping must be signed
    ping = raw("github_ping.json")
    assert rejected({"X-GitHub-Event": "ping"}, ping, github_secret=SECRET).status == 401


def test_without_a_secret_signatures_are_not_required_or_checked() -> None:
    body = raw("github_deployment_status_success.json")
    headers = github("deployment_status", body)
    unsigned = {k: v for k, v in headers.items() if k != "X-Hub-Signature-256"}
    wrong = headers | {"X-Hub-Signature-256": sign(body, "other")}
    assert event(unsigned, body).kind == event(wrong, body).kind == "succeeded"
    assert event(unsigned, body, github_secret="").kind == "succeeded"  # empty: not configured


def test_other_senders_may_sign_the_same_way_and_a_bad_signature_is_refused() -> None:
    body = raw("generic_started.json")
    assert event(JSON | {"X-Hub-Signature-256": sign(body)}, body, github_secret=SECRET)
    bad = JSON | {"X-Hub-Signature-256": sign(body, "other")}
    assert rejected(bad, body, github_secret=SECRET).status == 401
    # Argo's notification controller cannot sign: unsigned non-GitHub bodies still pass
    assert event(JSON, raw("argo_rollouts_updated.json"), github_secret=SECRET)


# ---------------------------------------------------------------------------- Argo Rollouts


def test_an_argo_rollouts_update_maps_every_field() -> None:
    assert event(JSON, raw("argo_rollouts_updated.json")) == DeployEvent(
        source="argo-rollouts",
        kind="started",
        service="checkout",
        environment=None,
        deploy_id="argo-rollouts:shop-prod:checkout:14",
        version="v2.14.0",
        started_at=NOW,
        at=NOW,
        strategy="canary",
        dedup_key="argo-rollouts:shop-prod:checkout:14:on-rollout-updated:0",
    )


@pytest.mark.parametrize(
    ("fixture", "kind"),
    [
        ("argo_rollouts_updated.json", "started"),
        ("argo_rollouts_step_completed.json", "progressing"),
        ("argo_rollouts_paused.json", "paused"),
        ("argo_rollouts_analysis_run_failed.json", "failed"),
        ("argo_rollouts_aborted.json", "aborted"),
        ("argo_rollouts_completed.json", "succeeded"),
    ],
)
def test_argo_rollouts_triggers_map_to_kinds_of_one_deploy(fixture: str, kind: str) -> None:
    e = event(JSON, raw(fixture))
    assert (e.kind, e.deploy_id, e.version) == (
        kind,
        "argo-rollouts:shop-prod:checkout:14",
        "v2.14.0",
    )


def test_a_blue_green_rollout_with_a_sidecar_and_a_registry_port() -> None:
    e = event(JSON, raw("argo_rollouts_bluegreen_updated.json"))
    assert (e.service, e.version, e.strategy) == ("ledger", "1.8.3", "blue-green")
    assert e.dedup_key == "argo-rollouts:payments:ledger:3:on-rollout-updated:-"  # no step


def test_a_template_may_name_the_service_environment_version_and_time() -> None:
    body = data("argo_rollouts_completed.json") | {
        "service": "checkout-api",
        "environment": "production",
        "version": "2.14.0+build.77",
        "at": "2024-06-11T14:09:30Z",
    }
    e = event(JSON, dumps(body))
    assert (e.service, e.environment, e.version) == (
        "checkout-api",
        "production",
        "2.14.0+build.77",
    )
    assert e.at == e.started_at == t("2024-06-11T14:09:30+00:00")


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("ghcr.io/acme/app:v1", "v1"),
        ("registry:5000/team/app", "registry:5000/team/app"),
        ("app:v2@sha256:abc", "v2"),
        ("app@sha256:abc", "sha256:abc"),
    ],
)
def test_the_version_is_the_first_images_tag(image: str, version: str) -> None:
    body = data("argo_rollouts_updated.json") | {"images": [image]}
    assert event(JSON, dumps(body)).version == version


# ---------------------------------------------------------------------------- Argo CD


def test_an_argocd_deploy_maps_every_field() -> None:
    assert event(JSON, raw("argocd_deployed.json")) == DeployEvent(
        source="argocd",
        kind="succeeded",
        service="checkout-prod",
        deploy_id="argocd:checkout-prod:4b9e2c1d7a3f5e6b8c0d2f4a6b8c0e1f3a5b7c9d",
        version="4b9e2c1d7a3f",
        started_at=t("2024-06-11T14:02:12+00:00"),
        at=NOW,
        commit="4b9e2c1d7a3f5e6b8c0d2f4a6b8c0e1f3a5b7c9d",
        url="https://argocd.acme-shop.example/applications/checkout-prod",
        dedup_key="argocd:checkout-prod:4b9e2c1d7a3f5e6b8c0d2f4a6b8c0e1f3a5b7c9d"
        ":on-deployed:2024-06-11T14:02:12+00:00",
    )


@pytest.mark.parametrize(
    ("fixture", "kind"),
    [
        ("argocd_sync_running.json", "started"),
        ("argocd_sync_succeeded.json", "progressing"),
        ("argocd_deployed.json", "succeeded"),
        ("argocd_sync_failed.json", "failed"),
    ],
)
def test_argocd_triggers_map_to_kinds_of_one_deploy(fixture: str, kind: str) -> None:
    e = event(JSON, raw(fixture))
    assert (e.kind, e.deploy_id) == (
        kind,
        "argocd:checkout-prod:" + "4b9e2c1d7a3f" + "5e6b8c0d2f4a6b8c0e1f3a5b7c9d",
    )
    assert e.started_at == t("2024-06-11T14:02:12+00:00")


def test_a_degraded_helm_app_without_an_operation_or_argocd_url() -> None:
    e = event(JSON, raw("argocd_health_degraded.json"))
    assert (e.kind, e.service, e.environment) == ("failed", "ledger", "production")
    assert (e.version, e.commit, e.url) == ("1.8.3", None, None)  # a chart version, not a commit
    assert e.started_at == e.at == NOW


# ---------------------------------------------------------------------------- dedup keys

ALL_EVENTS = [
    ("generic", "generic_started.json"),
    ("generic", "generic_succeeded.json"),
    ("generic", "generic_rolled_back.json"),
    ("deployment_status", "github_deployment_status_pending.json"),
    ("deployment_status", "github_deployment_status_in_progress.json"),
    ("deployment_status", "github_deployment_status_success.json"),
    ("deployment_status", "github_deployment_status_failure.json"),
    ("deployment", "github_deployment_created.json"),
    *[("argo", p.name) for p in sorted(FIXTURES.glob("argo*.json"))],
]


def _deliver(kind: str, name: str, delivery: str = "d-1") -> DeployEvent:
    body = raw(name)
    headers = JSON if kind in ("generic", "argo") else github(kind, body, delivery=delivery)
    return event(headers, body)


def test_distinct_events_have_distinct_dedup_keys() -> None:
    keys = [_deliver(kind, name).dedup_key for kind, name in ALL_EVENTS]
    assert len(keys) == len(set(keys)) == len(ALL_EVENTS)


@pytest.mark.parametrize(("kind", "name"), ALL_EVENTS)
def test_a_redelivery_has_the_same_dedup_key(kind: str, name: str) -> None:
    first = _deliver(kind, name, delivery="7c1e5a40-0001")
    again = parse_webhook(
        github(kind, raw(name), delivery="9d2f6b51-0002")
        if kind not in ("generic", "argo")
        else JSON,
        raw(name),
        now=NOW + timedelta(minutes=3),  # redelivered later
    )
    assert isinstance(again, DeployEvent) and again.dedup_key == first.dedup_key


def test_generic_keys_ignore_formatting_but_not_content() -> None:
    body = data("generic_succeeded.json")
    compact = json.dumps(body, separators=(",", ":")).encode()
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=4).encode()
    changed = dumps(body | {"at": "2024-06-11T14:08:00Z"})
    keys = {event(JSON, b).dedup_key for b in (compact, reordered)}
    assert len(keys) == 1 and event(JSON, changed).dedup_key not in keys


def test_each_rollout_step_is_a_distinct_event() -> None:
    step = data("argo_rollouts_step_completed.json")
    one, two = (event(JSON, dumps(step | {"step": s})) for s in ("1", "2"))
    assert one.deploy_id == two.deploy_id and one.dedup_key != two.dedup_key


def test_a_resync_of_the_same_revision_is_a_distinct_event() -> None:
    first = data("argocd_sync_running.json")
    resync = first | {"started_at": "2024-06-11T15:30:00Z"}
    assert event(JSON, dumps(first)).dedup_key != event(JSON, dumps(resync)).dedup_key


def test_another_status_of_the_same_github_deployment_is_a_distinct_event() -> None:
    payload = data("github_deployment_status_success.json")
    payload["deployment_status"]["id"] += 1
    body = dumps(payload)
    other = event(github("deployment_status", body), body)
    assert (
        other.dedup_key
        != _deliver("deployment_status", "github_deployment_status_success.json").dedup_key
    )


# ---------------------------------------------------------------------------- rejections

GENERIC = {"service": "reviews", "version": "1.2", "kind": "started"}


def _gh_status(**changes: Any) -> dict[str, Any]:
    payload = data("github_deployment_status_success.json")
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = payload
        for p in parents:
            node = node[p]
        if value is ...:
            del node[leaf]
        else:
            node[leaf] = value
    return payload


REJECTIONS: list[tuple[str, dict[str, str], bytes, int, str]] = [
    ("not JSON", JSON, b"{service: reviews}", 400, "body is not JSON: "),
    ("empty", JSON, b"", 400, "body is not JSON: "),
    ("not UTF-8", JSON, b'{"service": "\xff\xfe"}', 400, "body is not JSON: "),
    ("a list", JSON, b"[1, 2]", 400, "body is a JSON list, not an object"),
    ("a string", JSON, b'"started"', 400, "body is a JSON str, not an object"),
    ("too deep", JSON, b"[" * 200_000 + b"]" * 200_000, 400, "body is nested too deeply"),
    (
        "text",
        {"content-type": "text/plain"},
        dumps(GENERIC),
        415,
        "content type 'text/plain' is not JSON: send application/json",
    ),
    (
        "GitHub form",
        {"Content-Type": "application/x-www-form-urlencoded", "X-GitHub-Event": "ping"},
        b"payload=%7B%7D",
        415,
        "set the webhook's content type to application/json",
    ),
    (
        "no service",
        JSON,
        dumps({"version": "1", "kind": "started"}),
        422,
        "field 'service': Field required",
    ),
    (
        "no version",
        JSON,
        dumps({"service": "a", "kind": "started"}),
        422,
        "field 'version': Field required",
    ),
    (
        "no kind",
        JSON,
        dumps({"service": "a", "version": "1"}),
        422,
        "field 'kind': required (or 'status')",
    ),
    (
        "bad kind",
        JSON,
        dumps(GENERIC | {"kind": "done"}),
        422,
        "field 'kind': Input should be 'started'",
    ),
    (
        "kinds disagree",
        JSON,
        dumps(GENERIC | {"status": "failed"}),
        422,
        "field 'status': 'failed' disagrees",
    ),
    (
        "blank service",
        JSON,
        dumps(GENERIC | {"service": "  "}),
        422,
        "field 'service': String should have at least 1",
    ),
    (
        "service type",
        JSON,
        dumps(GENERIC | {"service": ["a"]}),
        422,
        "field 'service': Input should be a valid string",
    ),
    (
        "control chars",
        JSON,
        dumps(GENERIC | {"service": "a\nb"}),
        422,
        "field 'service': contains control",
    ),
    (
        "naive time",
        JSON,
        dumps(GENERIC | {"started_at": "2024-06-11T14:02:10"}),
        422,
        "field 'started_at': Input should have timezone info",
    ),
    (
        "bad time",
        JSON,
        dumps(GENERIC | {"at": "yesterday"}),
        422,
        "field 'at': Input should be a valid datetime",
    ),
    (
        "bad strategy",
        JSON,
        dumps(GENERIC | {"strategy": "yolo"}),
        422,
        "field 'strategy': Input should be 'rolling'",
    ),
    (
        "bad url",
        JSON,
        dumps(GENERIC | {"url": "javascript:alert(1)"}),
        422,
        "field 'url': must be an http(s) URL",
    ),
    (
        "two errors",
        JSON,
        dumps({"kind": "started"}),
        422,
        "field 'service': Field required (and 1 more)",
    ),
    (
        "GitHub no id",
        github("deployment_status", b""),
        dumps(_gh_status(deployment__id=...)),
        422,
        "field 'deployment.id': Field required",
    ),
    (
        "GitHub bad state",
        github("deployment_status", b""),
        dumps(_gh_status(deployment_status__state="exploded")),
        422,
        "field 'deployment_status.state': Input should be 'queued'",
    ),
    (
        "GitHub payload version",
        github("deployment_status", b""),
        dumps(_gh_status(deployment__payload={"version": ["v1"]})),
        422,
        "field 'deployment.payload.version': Input should be a valid string",
    ),
    (
        "GitHub naive created_at",
        github("deployment_status", b""),
        dumps(_gh_status(deployment__created_at="2024-06-11 14:02:10")),
        422,
        "field 'deployment.created_at': Input should have timezone info",
    ),
    (
        "GitHub push",
        github("push", b""),
        dumps({"ref": "refs/heads/main"}),
        400,
        "unknown event type: GitHub event 'push'",
    ),
    (
        "Rollouts trigger",
        JSON,
        dumps(data("argo_rollouts_updated.json") | {"trigger": "on-scaling-replica-set"}),
        400,
        "unknown event type: argo-rollouts trigger 'on-scaling-replica-set'",
    ),
    (
        "Rollouts no trigger",
        JSON,
        dumps({k: v for k, v in data("argo_rollouts_updated.json").items() if k != "trigger"}),
        422,
        "field 'trigger': Field required",
    ),
    (
        "Rollouts no revision",
        JSON,
        dumps(data("argo_rollouts_updated.json") | {"revision": None}),
        422,
        "field 'revision': Input should be a valid string",
    ),
    (
        "Rollouts no value",
        JSON,
        dumps(data("argo_rollouts_updated.json") | {"rollout": "<no value>"}),
        422,
        "field 'rollout': the notification template rendered '<no value>'",
    ),
    (
        "Rollouts no image",
        JSON,
        dumps(data("argo_rollouts_updated.json") | {"images": []}),
        422,
        "field 'version': required when 'images' is empty",
    ),
    (
        "Rollouts bad image",
        JSON,
        dumps(data("argo_rollouts_updated.json") | {"images": ["a:1", ""]}),
        422,
        "field 'images[1]': String should have at least 1 character",
    ),
    (
        "Rollouts bad step",
        JSON,
        dumps(data("argo_rollouts_updated.json") | {"step": "two"}),
        422,
        "field 'step': Input should be a valid integer",
    ),
    (
        "Rollouts trigger type",
        JSON,
        dumps(data("argo_rollouts_updated.json") | {"trigger": 7}),
        422,
        "field 'trigger': Input should be a valid string",
    ),
    (
        "Argo CD trigger",
        JSON,
        dumps(data("argocd_deployed.json") | {"trigger": "on-created"}),
        400,
        "unknown event type: argocd trigger 'on-created'",
    ),
    (
        "Argo CD no app",
        JSON,
        dumps(data("argocd_deployed.json") | {"app": ""}),
        422,
        "field 'app': String should have at least 1 character",
    ),
]


@pytest.mark.parametrize(
    ("headers", "body", "status", "reason"),
    [r[1:] for r in REJECTIONS],
    ids=[r[0] for r in REJECTIONS],
)
def test_every_rejection_says_why(
    headers: dict[str, str], body: bytes, status: int, reason: str
) -> None:
    exc = rejected(headers, body)
    assert exc.status == status
    assert reason in exc.reason, exc.reason
    assert str(exc) == f"{status}: {exc.reason}"


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "application/vnd.api+json", "", " "]
)
def test_json_content_types_and_none_at_all_are_accepted(content_type: str) -> None:
    assert event({"Content-Type": content_type}, dumps(GENERIC)).service == "reviews"


def test_the_exception_is_a_vigil_error_that_survives_pickling() -> None:
    assert issubclass(WebhookRejected, VigilError)
    exc = pickle.loads(pickle.dumps(WebhookRejected(422, "field 'x': bad")))
    assert isinstance(exc, WebhookRejected) and (exc.status, exc.reason) == (422, "field 'x': bad")


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_webhook(JSON, dumps(GENERIC), now=datetime(2024, 6, 11))


# ---------------------------------------------------------------------------- templates


def _bodies(source: str) -> dict[str, str]:
    """Each template's webhook body, by the trigger it hard-codes."""
    configmap = yaml.safe_load(TEMPLATES[source])["data"]
    assert configmap["service.webhook.vigil"].count("application/json") == 1
    out = {}
    for key, value in configmap.items():
        if key.startswith("template."):
            hook = yaml.safe_load(value)["webhook"]["vigil"]
            assert hook["method"] == "POST"
            trigger = re.search(r'"trigger": "([a-z-]+)"', hook["body"])
            assert trigger is not None and key == f"template.vigil-{trigger.group(1)}"
            out[trigger.group(1)] = hook["body"]
    return out


def _keys(body: str) -> set[str]:
    return set(re.findall(r'^\s*"(\w+)":', body, flags=re.MULTILINE))


OPTIONAL = {"service", "environment", "version", "url", "at"}


@pytest.mark.parametrize(
    ("source", "prefix"), [("argo-rollouts", "argo_rollouts"), ("argocd", "argocd")]
)
def test_the_templates_render_the_bodies_the_parser_reads(source: str, prefix: str) -> None:
    bodies = _bodies(source)
    fixtures = [data(p.name) for p in sorted(FIXTURES.glob(f"{prefix}_*.json"))]
    assert {f["trigger"] for f in fixtures} == set(bodies)  # a fixture for every trigger
    for fixture in fixtures:
        template = _keys(bodies[fixture["trigger"]])
        assert template <= set(fixture), fixture["trigger"]
        assert set(fixture) - template <= OPTIONAL
    for trigger, body in bodies.items():  # the parser maps every trigger a template sends
        assert f'"source": "{source}"' in body
        sample = fixtures[0] | {"trigger": trigger}
        assert event(JSON, dumps(sample)).source == source


def test_rollouts_triggers_send_vigils_templates() -> None:
    configmap = yaml.safe_load(TEMPLATES["argo-rollouts"])["data"]
    for trigger in _bodies("argo-rollouts"):
        sends = yaml.safe_load(configmap[f"trigger.{trigger}"])[0]["send"]
        assert sends == [f"vigil-{trigger}"]


# ---------------------------------------------------------------------------- fuzz

_HEADER_NAMES = ["Content-Type", "X-GitHub-Event", "X-Hub-Signature-256", "X-GitHub-Delivery"]
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_header_values = st.one_of(
    st.sampled_from(
        ["application/json", "text/plain", "deployment_status", "deployment", "ping", "push", ""]
    ),
    st.text(max_size=30),
)


def _github_event_of(name: str) -> str | None:
    if name.startswith("github_deployment_status"):
        return "deployment_status"
    return {"github_deployment_created.json": "deployment", "github_ping.json": "ping"}.get(name)


_FIXTURE_REQUESTS = [
    (_github_event_of(p.name), data(p.name)) for p in sorted(FIXTURES.glob("*.json"))
]


@st.composite
def _fixture_request(draw: st.DrawFn) -> tuple[dict[str, str], bytes]:
    """A real delivery with (usually) one field deleted or replaced, and its own headers."""
    github_event, fixture = draw(st.sampled_from(_FIXTURE_REQUESTS))
    payload = json.loads(json.dumps(fixture))
    node = payload
    for _ in range(draw(st.integers(0, 2))):
        children = [k for k, v in node.items() if isinstance(v, dict)]
        if not children:
            break
        node = node[draw(st.sampled_from(children))]
    if node and draw(st.integers(0, 4)):
        key = draw(st.sampled_from(sorted(node)))
        if draw(st.booleans()):
            del node[key]
        else:
            node[key] = draw(_json_values)
    headers = dict(JSON)
    if github_event is not None:
        headers["X-GitHub-Event"] = github_event
    if not draw(st.integers(0, 5)):
        headers[draw(st.sampled_from(_HEADER_NAMES))] = draw(_header_values)
    return headers, json.dumps(payload).encode()


_requests = st.one_of(
    st.tuples(
        st.dictionaries(st.sampled_from(_HEADER_NAMES), _header_values, max_size=4),
        st.one_of(st.binary(max_size=300), _json_values.map(lambda v: json.dumps(v).encode())),
    ),
    _fixture_request(),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(request=_requests, secret=st.sampled_from([None, SECRET]), signed=st.booleans())
def test_any_bytes_and_headers_give_a_result_or_a_rejection(
    request: tuple[dict[str, str], bytes], secret: str | None, signed: bool
) -> None:
    headers, body = request
    if signed:
        headers = headers | {"X-Hub-Signature-256": sign(body)}
    try:
        result = parse(headers, body, github_secret=secret)
    except WebhookRejected as exc:
        assert exc.status in (400, 401, 415, 422) and exc.reason
        return
    assert isinstance(result, DeployEvent | Ping | Ignored)
    if isinstance(result, DeployEvent):
        assert result.started_at.tzinfo is not None and result.at.tzinfo is not None
        assert result.at.timestamp() and result.dedup_key and result.deploy_id
        json.dumps(result.model_dump(mode="json")).encode("utf-8")  # storable as it is
        for value in (result.service, result.deploy_id, result.version, result.dedup_key):
            value.encode("utf-8")  # no unpaired surrogates reach sqlite
