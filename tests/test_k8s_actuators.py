"""The Argo Rollouts and Deployment actuators, through the official kubernetes client, against
API traffic replayed by vcrpy from tests/cassettes/k8s.

No Kubernetes API server can run here, so the cassettes are hand-written from the API
references (each says so in its header). They are played with record_mode="none": a request
that is not in the cassette fails the test, and matching is on method, path, query, JSON body
and Content-Type, so a played cassette proves what the client sent; every test also checks
that every request in its cassette was sent.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import vcr
from kubernetes.client import ApiClient, AppsV1Api, Configuration, CustomObjectsApi
from vcr.cassette import Cassette
from vcr.request import Request
from vcr.serialize import deserialize
from vcr.serializers import yamlserializer

from agent.backends.base import DeployInfo, SourceUnavailable
from agent.errors import ConfigError
from tools.backends.argo import ArgoRolloutsActuator
from tools.backends.kubernetes import DeploymentActuator

CASSETTES = Path(__file__).resolve().parent / "cassettes" / "k8s"
HOST = "https://127.0.0.1:6443"  # never contacted: vcrpy answers from the cassettes
TOKEN = "fake-token-for-tests-3f9a"

DEPLOY = DeployInfo(
    id="deploy-2024-06-11-checkout-v2.4.1",
    service="checkout",
    environment="prod",
    version="v2.4.1",
    previous_version="v2.4.0",
    started_at=datetime(2024, 6, 11, 13, 58, tzinfo=UTC),
    strategy="canary",
)

# Revision 2 (v2.4.0) as its ReplicaSet holds it — defaulted by the API server — without the
# pod template hash label: what both undo patches must put back, byte for byte. Revision 3
# added FEATURE_NEW_PRICING; replacing the template (not merging into it) drops it.
TEMPLATE_V240: dict[str, Any] = {
    "metadata": {"creationTimestamp": None, "labels": {"app": "checkout"}},
    "spec": {
        "containers": [
            {
                "name": "checkout",
                "image": "registry.example.com/shop/checkout:v2.4.0",
                "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                "env": [{"name": "LOG_FORMAT", "value": "json"}],
                "readinessProbe": {
                    "httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
                    "periodSeconds": 5,
                    "timeoutSeconds": 1,
                    "successThreshold": 1,
                    "failureThreshold": 3,
                },
                "resources": {
                    "limits": {"memory": "512Mi"},
                    "requests": {"cpu": "250m", "memory": "256Mi"},
                },
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent",
            }
        ],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "securityContext": {},
        "schedulerName": "default-scheduler",
    },
}
MARK = {"op": "add", "path": "/metadata/annotations/vigil~1rolled-back-deploy", "value": DEPLOY.id}

DEPLOYMENT = "/apis/apps/v1/namespaces/shop-prod/deployments/checkout"
ROLLOUT = "/apis/argoproj.io/v1alpha1/namespaces/shop-prod/rollouts/checkout"
REPLICASETS = "/apis/apps/v1/namespaces/shop-prod/replicasets"


# --- replaying -----------------------------------------------------------------------------


def _parsed(request: Request) -> Any:
    raw = request.body
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _json_body(r1: Request, r2: Request) -> None:
    """Bodies match when they are the same JSON (vcrpy parses only application/json)."""
    if _parsed(r1) != _parsed(r2):
        raise AssertionError(f"body {_parsed(r1)!r} != {_parsed(r2)!r}")


def _content_type(r1: Request, r2: Request) -> None:
    a, b = r1.headers.get("Content-Type"), r2.headers.get("Content-Type")
    if a != b:
        raise AssertionError(f"Content-Type {a!r} != {b!r}")


TAPE = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="none",
    filter_headers=["authorization"],
    match_on=["method", "path", "query", "json_body", "content_type"],
)
TAPE.register_matcher("json_body", _json_body)
TAPE.register_matcher("content_type", _content_type)


@contextmanager
def playing(name: str) -> Iterator[Cassette]:
    with TAPE.use_cassette(name) as cassette:
        yield cassette
    assert cassette.all_played, f"{name}: some requests in the cassette were never sent"


def requests(cassette: Cassette) -> list[tuple[str, str, list[tuple[str, str]]]]:
    return [(r.method, r.path, r.query) for r in cassette.requests]


def patches(cassette: Cassette) -> list[Request]:
    return [r for r in cassette.requests if r.method == "PATCH"]


@pytest.fixture
def api() -> Iterator[ApiClient]:
    cfg = Configuration(host=HOST, api_key={"BearerToken": f"Bearer {TOKEN}"})
    with ApiClient(cfg) as client:
        yield client


@pytest.fixture
def deployments(api: ApiClient) -> DeploymentActuator:
    return DeploymentActuator(
        AppsV1Api(api), namespace_for="shop-{environment}", name_for="{service}"
    )


@pytest.fixture
def rollouts(api: ApiClient) -> ArgoRolloutsActuator:
    return ArgoRolloutsActuator(
        CustomObjectsApi(api),
        namespace_for=lambda d: f"shop-{d.environment}",
        name_for="{service}",
    )


# --- Deployments: pause --------------------------------------------------------------------


def test_deployment_pause_patches_spec_paused_and_reads_it_back(
    deployments: DeploymentActuator,
) -> None:
    with playing("deployment_pause.yaml") as cassette:
        out = deployments.pause(DEPLOY, dry_run=False)
    assert out.changed and out.action == "pause" and out.deploy_id == DEPLOY.id
    assert out.detail == (
        "paused the rollout of Deployment shop-prod/checkout (verified: spec.paused is true)"
    )
    assert requests(cassette) == [
        ("GET", DEPLOYMENT, []),
        ("PATCH", DEPLOYMENT, [("fieldManager", "vigil")]),
        ("GET", DEPLOYMENT, []),
    ]
    (patch,) = patches(cassette)
    assert patch.headers["Content-Type"] == "application/strategic-merge-patch+json"
    assert json.loads(patch.body) == {"spec": {"paused": True}}


def test_deployment_pause_dry_run_is_only_a_server_side_dry_run(
    deployments: DeploymentActuator,
) -> None:
    with playing("deployment_pause_dry_run.yaml") as cassette:
        out = deployments.pause(DEPLOY, dry_run=True)
    assert not out.changed
    assert out.detail.startswith("dry run: would pause Deployment shop-prod/checkout")
    assert "validated the patch with dryRun=All; nothing changed" in out.detail
    (patch,) = patches(cassette)
    assert patch.query == [("dryRun", "All"), ("fieldManager", "vigil")]
    assert json.loads(patch.body) == {"spec": {"paused": True}}
    assert [r.method for r in cassette.requests] == ["GET", "PATCH"]  # no read-back, no real patch


def test_deployment_pause_when_already_paused_only_reads(deployments: DeploymentActuator) -> None:
    with playing("deployment_pause_already.yaml") as cassette:
        out = deployments.pause(DEPLOY, dry_run=False)
        dry = deployments.pause(DEPLOY, dry_run=True)
    assert not out.changed and not dry.changed
    assert out.detail == "already done: Deployment shop-prod/checkout is already paused"
    assert dry.detail == out.detail
    assert patches(cassette) == []


def test_deployment_pause_not_verified_when_read_back_shows_no_change(
    deployments: DeploymentActuator,
) -> None:
    with playing("deployment_pause_not_verified.yaml"):
        out = deployments.pause(DEPLOY, dry_run=False)
    assert out.changed  # the patch was accepted, so something may have changed
    assert out.detail == (
        "sent the pause of Deployment shop-prod/checkout "
        "(not verified: spec.paused reads false after the patch)"
    )


# --- Deployments: rollback -----------------------------------------------------------------


def test_deployment_rollback_puts_the_previous_template_back_and_resumes(
    deployments: DeploymentActuator,
) -> None:
    with playing("deployment_rollback.yaml") as cassette:
        out = deployments.rollback(DEPLOY, dry_run=False)
    assert out.changed and out.action == "rollback"
    # Revision 9 belongs to another Deployment with the same labels: ownership decides.
    assert out.detail == (
        "rolled Deployment shop-prod/checkout back from revision 3 to revision 2 and resumed it "
        "(verified: spec.template matches revision 2)"
    )
    assert requests(cassette) == [
        ("GET", DEPLOYMENT, []),
        ("GET", REPLICASETS, [("labelSelector", "app=checkout")]),
        ("PATCH", DEPLOYMENT, [("fieldManager", "vigil")]),
        ("GET", DEPLOYMENT, []),
    ]
    (patch,) = patches(cassette)
    assert patch.headers["Content-Type"] == "application/json-patch+json"
    assert json.loads(patch.body) == [
        {"op": "test", "path": "/metadata/generation", "value": 4},
        {"op": "replace", "path": "/spec/template", "value": TEMPLATE_V240},
        {"op": "replace", "path": "/spec/paused", "value": False},
        MARK,
    ]


def test_deployment_rollback_dry_run(deployments: DeploymentActuator) -> None:
    with playing("deployment_rollback_dry_run.yaml") as cassette:
        out = deployments.rollback(DEPLOY, dry_run=True)
    assert not out.changed
    assert out.detail == (
        "dry run: would roll Deployment shop-prod/checkout back from revision 3 to revision 2 "
        "(the API server validated the patch with dryRun=All; nothing changed)"
    )
    (patch,) = patches(cassette)
    assert patch.query == [("dryRun", "All"), ("fieldManager", "vigil")]
    assert json.loads(patch.body) == [
        {"op": "test", "path": "/metadata/generation", "value": 3},
        {"op": "replace", "path": "/spec/template", "value": TEMPLATE_V240},
        MARK,
    ]


def test_deployment_rollback_again_after_renumbering_is_a_no_op(
    deployments: DeploymentActuator,
) -> None:
    # Without the mark, revision 3 (v2.4.1) would now look like the one to go back to.
    with playing("deployment_rollback_already_marked.yaml") as cassette:
        out = deployments.rollback(DEPLOY, dry_run=False)
    assert not out.changed
    assert (
        out.detail == f"already done: Deployment shop-prod/checkout was rolled back for {DEPLOY.id}"
    )
    assert [r.method for r in cassette.requests] == ["GET"]


def test_deployment_rollback_when_someone_already_reverted_only_reads(
    deployments: DeploymentActuator,
) -> None:
    with playing("deployment_rollback_already_reverted.yaml") as cassette:
        out = deployments.rollback(DEPLOY, dry_run=False)
    assert not out.changed
    assert out.detail == (
        "already done: Deployment shop-prod/checkout already runs the template of revision 2"
    )
    assert [r.method for r in cassette.requests] == ["GET", "GET"]


def test_deployment_rollback_not_verified_when_read_back_shows_no_change(
    deployments: DeploymentActuator,
) -> None:
    with playing("deployment_rollback_not_verified.yaml"):
        out = deployments.rollback(DEPLOY, dry_run=False)
    assert out.changed
    assert out.detail == (
        "sent the patch to roll Deployment shop-prod/checkout back from revision 3 to revision 2 "
        "(not verified: on read-back spec.template does not run revision 2)"
    )


# --- Deployments: failures -----------------------------------------------------------------


def test_deployment_not_found_is_source_unavailable(deployments: DeploymentActuator) -> None:
    with playing("deployment_not_found.yaml"), pytest.raises(SourceUnavailable) as err:
        deployments.rollback(DEPLOY, dry_run=False)
    assert str(err.value) == (
        "kubernetes: read Deployment shop-prod/checkout failed: HTTP 404 NotFound: "
        'deployments.apps "checkout" not found '
        "(check the namespace and name Vigil is configured with)"
    )


def test_deployment_forbidden_patch_is_source_unavailable(deployments: DeploymentActuator) -> None:
    with playing("deployment_forbidden.yaml"), pytest.raises(SourceUnavailable) as err:
        deployments.pause(DEPLOY, dry_run=False)
    message = str(err.value)
    assert message.startswith(
        "kubernetes: patch Deployment shop-prod/checkout failed: HTTP 403 Forbidden: "
        'deployments.apps "checkout" is forbidden: User "system:serviceaccount:vigil:vigil" '
        'cannot patch resource "deployments"'
    )
    assert message.endswith("(grant Vigil's service account get, list and patch on this resource)")
    assert "\n" not in message and TOKEN not in message


def test_deployment_changed_since_read_is_refused_by_the_generation_test(
    deployments: DeploymentActuator,
) -> None:
    with playing("deployment_rollback_conflict.yaml"), pytest.raises(SourceUnavailable) as err:
        deployments.rollback(DEPLOY, dry_run=False)
    assert str(err.value) == (
        "kubernetes: patch Deployment shop-prod/checkout failed: HTTP 422 Invalid: the server "
        "rejected our request due to an error in our request; testing value "
        "/metadata/generation failed: test failed (the object changed meanwhile or the server "
        "rejected the patch; read it and try again)"
    )


def test_deployment_answer_that_is_not_json_is_source_unavailable(
    deployments: DeploymentActuator,
) -> None:
    with playing("deployment_not_json.yaml"), pytest.raises(SourceUnavailable) as err:
        deployments.pause(DEPLOY, dry_run=False)
    assert str(err.value).startswith(
        "kubernetes: read Deployment shop-prod/checkout: the answer is not a JSON object: "
        "b'<!doctype html>"
    )


# --- Argo Rollouts: pause ------------------------------------------------------------------


def test_rollout_pause_merge_patches_spec_paused(rollouts: ArgoRolloutsActuator) -> None:
    with playing("argo_pause.yaml") as cassette:
        out = rollouts.pause(DEPLOY, dry_run=False)
    assert out.changed
    assert out.detail == "paused Rollout shop-prod/checkout (verified: spec.paused is true)"
    assert requests(cassette) == [
        ("GET", ROLLOUT, []),
        ("PATCH", ROLLOUT, [("fieldManager", "vigil")]),
        ("GET", ROLLOUT, []),
    ]
    (patch,) = patches(cassette)
    assert patch.headers["Content-Type"] == "application/merge-patch+json"
    assert json.loads(patch.body) == {"spec": {"paused": True}}


def test_rollout_pause_dry_run(rollouts: ArgoRolloutsActuator) -> None:
    with playing("argo_pause_dry_run.yaml") as cassette:
        out = rollouts.pause(DEPLOY, dry_run=True)
    assert not out.changed
    assert out.detail.startswith("dry run: would pause Rollout shop-prod/checkout (")
    (patch,) = patches(cassette)
    assert patch.query == [("dryRun", "All"), ("fieldManager", "vigil")]
    assert [r.method for r in cassette.requests] == ["GET", "PATCH"]


def test_rollout_pause_when_already_paused_only_reads(rollouts: ArgoRolloutsActuator) -> None:
    with playing("argo_pause_already.yaml") as cassette:
        out = rollouts.pause(DEPLOY, dry_run=False)
    assert not out.changed
    assert out.detail == "already done: Rollout shop-prod/checkout is already paused"
    assert patches(cassette) == []


def test_rollout_pause_not_verified(rollouts: ArgoRolloutsActuator) -> None:
    with playing("argo_pause_not_verified.yaml"):
        out = rollouts.pause(DEPLOY, dry_run=False)
    assert out.changed
    assert out.detail == (
        "sent the pause of Rollout shop-prod/checkout "
        "(not verified: spec.paused reads false after the patch)"
    )


# --- Argo Rollouts: rollback of an update in progress = abort ------------------------------


def test_rollout_rollback_in_progress_aborts_through_the_status_subresource(
    rollouts: ArgoRolloutsActuator,
) -> None:
    with playing("argo_abort.yaml") as cassette:
        out = rollouts.rollback(DEPLOY, dry_run=False)
    assert out.changed
    assert out.detail == (
        "aborted the update of Rollout shop-prod/checkout to pod template hash 5d8b7f9c4: the "
        "stable pods (hash 7c9f4d6b8) take the traffic back (verified: status.abort is true, "
        "phase Degraded); spec.template still names the new version, so a retry would deploy "
        "it again"
    )
    assert requests(cassette) == [
        ("GET", ROLLOUT, []),
        ("PATCH", ROLLOUT + "/status", [("fieldManager", "vigil")]),
        ("GET", ROLLOUT, []),
    ]
    (patch,) = patches(cassette)
    assert patch.headers["Content-Type"] == "application/merge-patch+json"
    assert json.loads(patch.body) == {"status": {"abort": True}}


def test_rollout_abort_dry_run(rollouts: ArgoRolloutsActuator) -> None:
    with playing("argo_abort_dry_run.yaml") as cassette:
        out = rollouts.rollback(DEPLOY, dry_run=True)
    assert not out.changed
    assert out.detail == (
        "dry run: would abort the update of Rollout shop-prod/checkout to pod template hash "
        "5d8b7f9c4 and give the stable pods (hash 7c9f4d6b8) the traffic back (the API server "
        "validated the patch with dryRun=All; nothing changed)"
    )
    (patch,) = patches(cassette)
    assert patch.path == ROLLOUT + "/status"
    assert patch.query == [("dryRun", "All"), ("fieldManager", "vigil")]


def test_rollout_rollback_when_already_aborted_only_reads(rollouts: ArgoRolloutsActuator) -> None:
    with playing("argo_abort_already.yaml") as cassette:
        out = rollouts.rollback(DEPLOY, dry_run=False)
    assert not out.changed
    assert out.detail == (
        "already done: the update of Rollout shop-prod/checkout is already aborted (phase Degraded)"
    )
    assert patches(cassette) == []


def test_rollout_abort_not_verified(rollouts: ArgoRolloutsActuator) -> None:
    with playing("argo_abort_not_verified.yaml"):
        out = rollouts.rollback(DEPLOY, dry_run=False)
    assert out.changed
    assert out.detail == (
        "sent the abort of the update of Rollout shop-prod/checkout to pod template hash "
        "5d8b7f9c4 (not verified: status.abort reads false after the patch)"
    )


def test_rollout_abort_without_status_subresource_patches_the_object(
    rollouts: ArgoRolloutsActuator,
) -> None:
    with playing("argo_abort_no_status_subresource.yaml") as cassette:
        out = rollouts.rollback(DEPLOY, dry_run=False)
    assert out.changed and "(verified: status.abort is true" in out.detail
    assert [(r.method, r.path) for r in patches(cassette)] == [
        ("PATCH", ROLLOUT + "/status"),
        ("PATCH", ROLLOUT),
    ]
    assert all(json.loads(p.body) == {"status": {"abort": True}} for p in patches(cassette))


# --- Argo Rollouts: rollback of a completed rollout = undo ---------------------------------


def test_rollout_rollback_after_completion_undoes_to_the_previous_revision(
    rollouts: ArgoRolloutsActuator,
) -> None:
    with playing("argo_undo.yaml") as cassette:
        out = rollouts.rollback(DEPLOY, dry_run=False)
    assert out.changed
    assert out.detail == (
        "rolled Rollout shop-prod/checkout back from revision 3 to revision 2 (verified: "
        "spec.template matches revision 2, pod template hash 7c9f4d6b8 is current)"
    )
    assert requests(cassette) == [
        ("GET", ROLLOUT, []),
        ("GET", REPLICASETS, [("labelSelector", "app=checkout")]),
        ("PATCH", ROLLOUT, [("fieldManager", "vigil")]),
        ("GET", ROLLOUT, []),
    ]
    (patch,) = patches(cassette)
    assert patch.headers["Content-Type"] == "application/json-patch+json"
    assert json.loads(patch.body) == [
        {"op": "test", "path": "/metadata/generation", "value": 6},
        {"op": "replace", "path": "/spec/template", "value": TEMPLATE_V240},
        MARK,
    ]


def test_rollout_undo_dry_run(rollouts: ArgoRolloutsActuator) -> None:
    with playing("argo_undo_dry_run.yaml") as cassette:
        out = rollouts.rollback(DEPLOY, dry_run=True)
    assert not out.changed
    assert out.detail == (
        "dry run: would roll Rollout shop-prod/checkout back from revision 3 to revision 2 "
        "(the API server validated the patch with dryRun=All; nothing changed)"
    )
    (patch,) = patches(cassette)
    assert patch.query == [("dryRun", "All"), ("fieldManager", "vigil")]
    assert [r.method for r in cassette.requests] == ["GET", "GET", "PATCH"]


def test_rollout_rollback_again_after_undo_is_a_no_op(rollouts: ArgoRolloutsActuator) -> None:
    # The rollout is mid-update (back to revision 2) again: without the mark it would be aborted.
    with playing("argo_undo_already.yaml") as cassette:
        out = rollouts.rollback(DEPLOY, dry_run=False)
    assert not out.changed
    assert out.detail == f"already done: Rollout shop-prod/checkout was rolled back for {DEPLOY.id}"
    assert [r.method for r in cassette.requests] == ["GET"]


def test_rollout_undo_not_verified(rollouts: ArgoRolloutsActuator) -> None:
    with playing("argo_undo_not_verified.yaml"):
        out = rollouts.rollback(DEPLOY, dry_run=False)
    assert out.changed
    assert out.detail == (
        "sent the patch to roll Rollout shop-prod/checkout back from revision 3 to revision 2 "
        "(not verified: on read-back spec.template does not run revision 2)"
    )


# --- Argo Rollouts: failures ---------------------------------------------------------------


def test_rollout_not_found_is_source_unavailable(rollouts: ArgoRolloutsActuator) -> None:
    with playing("argo_not_found.yaml"), pytest.raises(SourceUnavailable) as err:
        rollouts.pause(DEPLOY, dry_run=False)
    assert str(err.value) == (
        "argo rollouts: read Rollout shop-prod/checkout failed: HTTP 404 NotFound: "
        'rollouts.argoproj.io "checkout" not found '
        "(check the namespace and name Vigil is configured with)"
    )


def test_rollout_forbidden_abort_is_source_unavailable(rollouts: ArgoRolloutsActuator) -> None:
    with playing("argo_forbidden.yaml"), pytest.raises(SourceUnavailable) as err:
        rollouts.rollback(DEPLOY, dry_run=False)
    message = str(err.value)
    assert message.startswith(
        "argo rollouts: patch the status of Rollout shop-prod/checkout failed: HTTP 403 "
        'Forbidden: rollouts.argoproj.io "checkout" is forbidden'
    )
    assert 'cannot patch resource "rollouts/status"' in message
    assert TOKEN not in message


def test_rollout_server_error_is_source_unavailable(rollouts: ArgoRolloutsActuator) -> None:
    with playing("argo_server_error.yaml"), pytest.raises(SourceUnavailable) as err:
        rollouts.rollback(DEPLOY, dry_run=False)
    assert str(err.value) == (
        "argo rollouts: read Rollout shop-prod/checkout failed: HTTP 500 Internal Server Error: "
        "etcdserver: request timed out (the API server failed; try again later)"
    )


# --- without cassettes ---------------------------------------------------------------------


def test_unreachable_api_server_is_source_unavailable() -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = Configuration(host=f"https://127.0.0.1:{port}", api_key={"BearerToken": TOKEN})
    cfg.retries = 0
    with ApiClient(cfg) as client:
        actuator = DeploymentActuator(
            AppsV1Api(client), namespace_for="shop", name_for="{service}", timeout_s=2
        )
        with pytest.raises(SourceUnavailable) as err:
            actuator.pause(DEPLOY, dry_run=False)
    message = str(err.value)
    assert message.startswith(
        "kubernetes: read Deployment shop/checkout failed: API server unreachable ("
    )
    assert "Connection refused" in message and TOKEN not in message


def test_name_templates_are_checked_when_built_and_when_used(api: ApiClient) -> None:
    with pytest.raises(ConfigError, match=r"names 'team'"):
        DeploymentActuator(AppsV1Api(api), namespace_for="{team}", name_for="{service}")
    with pytest.raises(ConfigError):
        ArgoRolloutsActuator(CustomObjectsApi(api), namespace_for="shop", name_for="{0}")
    no_env = DEPLOY.model_copy(update={"environment": None})
    bad_name = DeploymentActuator(
        AppsV1Api(api), namespace_for="shop", name_for=lambda d: d.service.upper()
    )
    good = DeploymentActuator(AppsV1Api(api), namespace_for="shop-{environment}", name_for="web")
    # An empty cassette: any request at all would fail the test with a vcrpy error instead.
    with TAPE.use_cassette("no_requests_expected.yaml"):
        with pytest.raises(SourceUnavailable, match="cannot name the namespace"):
            good.pause(no_env, dry_run=False)
        with pytest.raises(SourceUnavailable, match=r"'CHECKOUT' .* not a valid Kubernetes"):
            bad_name.rollback(DEPLOY, dry_run=False)


def test_cassettes_are_vcrpy_format_and_hold_no_credentials() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert len(files) >= 20
    for path in files:
        text = path.read_text()
        assert "not recorded from a cluster" in text.split("interactions:")[0], path.name
        assert "authorization" not in text.lower() and TOKEN not in text, path.name
        requests_, responses = deserialize(text, yamlserializer)[:2]
        assert requests_ and len(requests_) == len(responses), path.name
        assert all(r.uri.startswith(HOST + "/apis/") for r in requests_), path.name
