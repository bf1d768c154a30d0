"""Plain Kubernetes Deployments as an actuator, and the Kubernetes plumbing the Argo Rollouts
actuator shares, over the official `kubernetes` client.

Every action reads the object first (a second identical call is a no-op and sends no patch),
dry runs are server-side (`dryRun=All`: the API server validates the patch and changes
nothing), and every change is read back to say whether it took. Objects are read as raw JSON
into small pydantic models that keep pod templates verbatim, so a rollback never drops a field
this client does not know. Any failure of the API server is `SourceUnavailable` with the HTTP
status, the server's reason and what to do next.
"""

from __future__ import annotations

import copy
import json
import re
import string
from collections.abc import Callable
from typing import Annotated, Any, NamedTuple, Protocol, TypeVar

from kubernetes.client import AppsV1Api
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from urllib3.exceptions import HTTPError

from agent.backends.base import ActionOutcome, DeployInfo, SourceUnavailable
from agent.errors import ConfigError

Target = str | Callable[[DeployInfo], str]
"""A namespace or object name: a template over DeployInfo fields ("{service}"), or a function."""

FIELD_MANAGER = "vigil"  # shows in managedFields, so `kubectl get -o yaml` says who changed it
ROLLBACK_MARK = "vigil/rolled-back-deploy"  # annotation: the deploy a rollback was made for

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"

DEPLOYMENT_REVISION = "deployment.kubernetes.io/revision"
DEPLOYMENT_HASH = "pod-template-hash"

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")

_HINTS = {
    401: "check the service account token Vigil was given",
    403: "grant Vigil's service account get, list and patch on this resource",
    404: "check the namespace and name Vigil is configured with",
    409: "the object changed meanwhile; try again",
    422: "the object changed meanwhile or the server rejected the patch; read it and try again",
    429: "the API server is throttling; try again shortly",
}

M = TypeVar("M", bound=BaseModel)


# --- objects, as far as the actuators read them -------------------------------------------


def _empty_if_null(value: Any) -> Any:
    return {} if value is None else value


def _none_list(value: Any) -> Any:
    return [] if value is None else value


StrMap = Annotated[dict[str, str], BeforeValidator(_empty_if_null)]
Template = Annotated[dict[str, Any], BeforeValidator(_empty_if_null)]


class KubeModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class OwnerReference(KubeModel):
    kind: str = ""
    name: str = ""
    uid: str = ""
    controller: bool = False


class ObjectMeta(KubeModel):
    name: str = ""
    namespace: str = ""
    uid: str = ""
    generation: int = 0
    labels: StrMap = Field(default_factory=dict)
    annotations: StrMap = Field(default_factory=dict)
    owner_references: Annotated[list[OwnerReference], BeforeValidator(_none_list)] = Field(
        default_factory=list, alias="ownerReferences"
    )

    def controlled_by(self, uid: str) -> bool:
        return bool(uid) and any(o.controller and o.uid == uid for o in self.owner_references)


class SelectorRequirement(KubeModel):
    key: str
    operator: str
    values: Annotated[list[str], BeforeValidator(_none_list)] = Field(default_factory=list)


class LabelSelector(KubeModel):
    match_labels: StrMap = Field(default_factory=dict, alias="matchLabels")
    match_expressions: Annotated[list[SelectorRequirement], BeforeValidator(_none_list)] = Field(
        default_factory=list, alias="matchExpressions"
    )

    def query(self) -> str:
        """The selector in the `labelSelector` query syntax."""
        parts = [f"{k}={v}" for k, v in sorted(self.match_labels.items())]
        for req in self.match_expressions:
            values = ",".join(req.values)
            forms = {
                "In": f"{req.key} in ({values})",
                "NotIn": f"{req.key} notin ({values})",
                "Exists": req.key,
                "DoesNotExist": f"!{req.key}",
            }
            if req.operator not in forms:
                raise ValueError(f"unknown selector operator {req.operator!r}")
            parts.append(forms[req.operator])
        return ",".join(parts)


class ReplicaSetSpec(KubeModel):
    template: Template = Field(default_factory=dict)


class ReplicaSet(KubeModel):
    metadata: ObjectMeta
    spec: ReplicaSetSpec = Field(default_factory=ReplicaSetSpec)


class ReplicaSetList(KubeModel):
    items: Annotated[list[ReplicaSet], BeforeValidator(_none_list)] = Field(default_factory=list)


class DeploymentSpec(KubeModel):
    paused: bool = False
    selector: LabelSelector = Field(default_factory=LabelSelector)
    template: Template = Field(default_factory=dict)


class Deployment(KubeModel):
    metadata: ObjectMeta
    spec: DeploymentSpec


# --- revisions and pod templates -----------------------------------------------------------


class Revision(NamedTuple):
    number: int
    replica_set: str
    pod_hash: str
    template: dict[str, Any]  # without the pod template hash label, ready to patch back


def history(
    replica_sets: ReplicaSetList, owner_uid: str, revision_key: str, hash_label: str
) -> list[Revision]:
    """The revisions of the owner's own ReplicaSets (by controller reference), newest first."""
    out = []
    for rs in replica_sets.items:
        if not rs.metadata.controlled_by(owner_uid):
            continue
        try:
            number = int(rs.metadata.annotations.get(revision_key, ""))
        except ValueError:
            continue
        template = without_label(rs.spec.template, hash_label)
        out.append(
            Revision(number, rs.metadata.name, rs.metadata.labels.get(hash_label, ""), template)
        )
    return sorted(out, key=lambda r: r.number, reverse=True)


def step_back(
    revisions: list[Revision], template: dict[str, Any]
) -> tuple[Revision | None, Revision | None]:
    """The revision an object's pod template is (None: newer than every ReplicaSet, which the
    controller has not created yet) and the revision to go back to (None: there is none)."""
    for i, rev in enumerate(revisions):
        if same_template(rev.template, template):
            return rev, revisions[i + 1] if i + 1 < len(revisions) else None
    return None, revisions[0] if revisions else None


def without_label(template: dict[str, Any], label: str) -> dict[str, Any]:
    """A copy of a pod template without one label (the controller's template hash)."""
    out = copy.deepcopy(template)
    labels = (out.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(label, None)
    return out


def covers(full: Any, part: Any) -> bool:
    """Does `full` agree with every field `part` sets? Fields of `part` that are unset, empty
    or false are ignored, as Go's omitempty drops them: API servers default fields, and custom
    resources keep templates sparse."""
    if isinstance(part, dict):
        return isinstance(full, dict) and all(
            covers(full.get(k), v) for k, v in part.items() if v not in (None, {}, [], "", False)
        )
    if isinstance(part, list):
        return (
            isinstance(full, list)
            and len(full) == len(part)
            and all(covers(f, p) for f, p in zip(full, part, strict=True))
        )
    return bool(full == part)


def same_template(target: dict[str, Any], actual: dict[str, Any]) -> bool:
    """Does the object's pod template `actual` run what the revision's `target` runs?"""
    containers = (actual.get("spec") or {}).get("containers")
    return bool(containers) and covers(target, actual)


def undo_patch(
    meta: ObjectMeta, template: dict[str, Any], deploy_id: str, *, resume: bool
) -> list[dict[str, Any]]:
    """The JSON patch that puts an older pod template back, as `kubectl rollout undo` does,
    guarded by the generation it was computed from and marked with the deploy it undoes."""
    ops: list[dict[str, Any]] = []
    if meta.generation:
        # Refuse to apply if the spec changed since it was read (a new deploy, another undo).
        ops.append({"op": "test", "path": "/metadata/generation", "value": meta.generation})
    ops.append({"op": "replace", "path": "/spec/template", "value": template})
    if resume:
        # A paused object would keep the old pods: the rollback must actually roll.
        ops.append({"op": "replace", "path": "/spec/paused", "value": False})
    if meta.annotations:
        path = "/metadata/annotations/" + ROLLBACK_MARK.replace("~", "~0").replace("/", "~1")
        ops.append({"op": "add", "path": path, "value": deploy_id})
    else:
        ops.append(
            {"op": "add", "path": "/metadata/annotations", "value": {ROLLBACK_MARK: deploy_id}}
        )
    return ops


# --- naming the object a deploy acts on ----------------------------------------------------


def namer(target: Target, what: str) -> Callable[[DeployInfo], str | None]:
    """A function from a deploy to the namespace or name `target` describes. A template may
    use DeployInfo fields by name only; anything else is a configuration error now, not later.
    It gives None when a field the template needs is unknown for a deploy."""
    if not isinstance(target, str):
        return target
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(target) if f is not None]
    except ValueError as exc:
        raise ConfigError(f"{what} template {target!r}: {exc}") from None
    known = set(DeployInfo.model_fields)
    bad = [f for f in fields if f not in known]
    if bad:
        raise ConfigError(
            f"{what} template {target!r} names {', '.join(map(repr, bad))}; "
            f"use deploy fields: {', '.join(sorted(known))}"
        )

    def render(deploy: DeployInfo) -> str | None:
        values = {f: getattr(deploy, f) for f in fields}
        if any(v is None for v in values.values()):
            return None
        return target.format(**values)

    return render


def locate(
    system: str,
    deploy: DeployInfo,
    namespace_for: Callable[[DeployInfo], str | None],
    name_for: Callable[[DeployInfo], str | None],
) -> tuple[str, str]:
    """The (namespace, name) a deploy acts on, checked to be valid Kubernetes names."""
    namespace, name = namespace_for(deploy), name_for(deploy)
    for what, value, pattern, limit in (
        ("namespace", namespace, _LABEL, 63),
        ("name", name, _SUBDOMAIN, 253),
    ):
        if value is None:
            raise SourceUnavailable(
                f"{system}: cannot name the {what} for deploy {deploy.id}: "
                "a field its template needs is unknown for this deploy"
            )
        if len(value) > limit or not pattern.fullmatch(value):
            raise SourceUnavailable(
                f"{system}: {value!r} (the {what} for deploy {deploy.id}) "
                "is not a valid Kubernetes name; check the configured template"
            )
    assert namespace is not None and name is not None
    return namespace, name


# --- talking to the API server -------------------------------------------------------------


def unavailable(system: str, what: str, exc: Exception) -> SourceUnavailable:
    """The one-line error for a failed API call: status, the server's reason, what to do."""
    if isinstance(exc, ApiException):
        return SourceUnavailable(_line(f"{system}: {what} failed: {_api_error(exc)}"))
    kind = type(exc).__name__
    return SourceUnavailable(
        _line(f"{system}: {what} failed: API server unreachable ({kind}): {exc}")
    )


def _api_error(exc: ApiException) -> str:
    """`HTTP 403 Forbidden: <the server's message>; <its causes> (<what to do>)`."""
    try:
        status = json.loads(exc.body) if exc.body else {}
    except (TypeError, ValueError):
        status = {}
    if not isinstance(status, dict):
        status = {}
    reason = str(status.get("reason") or exc.reason or "")
    said = [str(status.get("message") or "")]
    details = status.get("details")
    if isinstance(details, dict) and isinstance(details.get("causes"), list):
        said += [str(c.get("message") or "") for c in details["causes"] if isinstance(c, dict)]
    code = exc.status or 0
    text = f"HTTP {code} {reason}".strip() if code else f"no answer: {reason}"
    if any(said):
        text += ": " + "; ".join(m for m in said if m)
    hint = _HINTS.get(code) or ("the API server failed; try again later" if code >= 500 else "")
    return f"{text} ({hint})" if hint else text


def call(system: str, what: str, fn: Callable[[], object]) -> dict[str, Any]:
    """Run one API call made with `_preload_content=False` and return its JSON object."""
    try:
        return json_object(system, what, fn())
    except (ApiException, HTTPError, OSError) as exc:
        raise unavailable(system, what, exc) from None


def json_object(system: str, what: str, response: object) -> dict[str, Any]:
    data = getattr(response, "data", None)
    try:
        parsed = json.loads(data) if isinstance(data, bytes | str) else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        shown = data[:80] if isinstance(data, bytes | str) else type(response).__name__
        raise SourceUnavailable(
            _line(f"{system}: {what}: the answer is not a JSON object: {shown!r}")
        )
    return parsed


def parse(system: str, what: str, model: type[M], raw: dict[str, Any]) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise SourceUnavailable(
            _line(
                f"{system}: {what}: the answer is not a {model.__name__} ({where}: {first['msg']})"
            )
        ) from None


def outcome(action: str, deploy: DeployInfo, changed: bool, detail: str) -> ActionOutcome:
    return ActionOutcome(
        action=action, service=deploy.service, deploy_id=deploy.id, changed=changed, detail=detail
    )


def _line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 600 else text[:599] + "…"


# --- the Deployment actuator ---------------------------------------------------------------


class DeploymentActuator:
    """`Actuator` over a Kubernetes Deployment.

    pause: `spec.paused: true` (a strategic merge patch, as `kubectl rollout pause`).
    rollback: the pod template of the previous revision — the ReplicaSet the Deployment owns
    with the next-highest `deployment.kubernetes.io/revision` — is put back into
    `spec.template` without its `pod-template-hash` label (a JSON patch, as
    `kubectl rollout undo`); a paused Deployment is resumed so the old pods actually return.
    The Deployment is annotated with the deploy rolled back, so asking again is a no-op even
    after the controller has renumbered the revisions.
    """

    system = "kubernetes"

    def __init__(
        self,
        apps: AppsV1Api,
        *,
        namespace_for: Target,
        name_for: Target,
        timeout_s: float = 10.0,
        field_manager: str = FIELD_MANAGER,
    ) -> None:
        self.apps = apps
        self.namespace_for = namer(namespace_for, "namespace")
        self.name_for = namer(name_for, "name")
        self.timeout_s = timeout_s
        self.field_manager = field_manager

    def pause(self, deploy: DeployInfo, *, dry_run: bool) -> ActionOutcome:
        ns, name = locate(self.system, deploy, self.namespace_for, self.name_for)
        return pause_spec(
            deploy,
            f"Deployment {ns}/{name}",
            lambda: self._read(ns, name),
            lambda body, dry: self._patch(ns, name, body, STRATEGIC_PATCH, dry_run=dry),
            dry_run=dry_run,
            verb="paused the rollout of",
        )

    def rollback(self, deploy: DeployInfo, *, dry_run: bool) -> ActionOutcome:
        ns, name = locate(self.system, deploy, self.namespace_for, self.name_for)
        obj = f"Deployment {ns}/{name}"
        dep = self._read(ns, name)
        if dep.metadata.annotations.get(ROLLBACK_MARK) == deploy.id:
            return outcome(
                "rollback", deploy, False, f"already done: {obj} was rolled back for {deploy.id}"
            )
        revisions = history(
            self._replica_sets(ns, dep), dep.metadata.uid, DEPLOYMENT_REVISION, DEPLOYMENT_HASH
        )
        current, previous = step_back(revisions, without_label(dep.spec.template, DEPLOYMENT_HASH))
        if current is not None and current != revisions[0]:
            return outcome(
                "rollback",
                deploy,
                False,
                f"already done: {obj} already runs the template of revision {current.number}",
            )
        if previous is None:
            raise SourceUnavailable(
                f"{self.system}: {obj} has no earlier revision to roll back to "
                f"({len(revisions)} ReplicaSet(s) with a revision); roll forward instead"
            )
        patch = undo_patch(dep.metadata, previous.template, deploy.id, resume=dep.spec.paused)
        was = f"revision {current.number}" if current else "the new template"
        move = f"{obj} back from {was} to revision {previous.number}"
        resume = " and resume it" if dep.spec.paused else ""
        if dry_run:
            after = self._patch(ns, name, patch, JSON_PATCH, dry_run=True)
            took = same_template(previous.template, after.spec.template)
            return outcome(
                "rollback", deploy, False, f"dry run: would roll {move}{resume}{dry_note(took)}"
            )
        self._patch(ns, name, patch, JSON_PATCH, dry_run=False)
        back = self._read(ns, name)
        if same_template(previous.template, back.spec.template) and not back.spec.paused:
            resumed = " and resumed it" if dep.spec.paused else ""
            detail = (
                f"rolled {move}{resumed} (verified: spec.template matches revision "
                f"{previous.number})"
            )
        else:
            paused = " or it is still paused" if back.spec.paused else ""
            detail = (
                f"sent the patch to roll {move}{resume} (not verified: on read-back spec.template "
                f"does not run revision {previous.number}{paused})"
            )
        return outcome("rollback", deploy, True, detail)

    def _read(self, ns: str, name: str) -> Deployment:
        what = f"read Deployment {ns}/{name}"
        raw = call(
            self.system,
            what,
            lambda: self.apps.read_namespaced_deployment(
                name, ns, _preload_content=False, _request_timeout=self.timeout_s
            ),
        )
        return parse(self.system, what, Deployment, raw)

    def _replica_sets(self, ns: str, dep: Deployment) -> ReplicaSetList:
        what = f"list the ReplicaSets of Deployment {ns}/{dep.metadata.name}"
        try:
            selector = dep.spec.selector.query() or None
        except ValueError as exc:
            raise SourceUnavailable(f"{self.system}: {what}: {exc}") from None
        raw = call(
            self.system,
            what,
            lambda: self.apps.list_namespaced_replica_set(
                ns,
                label_selector=selector,
                _preload_content=False,
                _request_timeout=self.timeout_s,
            ),
        )
        return parse(self.system, what, ReplicaSetList, raw)

    def _patch(
        self, ns: str, name: str, body: Any, content_type: str, *, dry_run: bool
    ) -> Deployment:
        what = f"{'dry-run ' if dry_run else ''}patch Deployment {ns}/{name}"
        raw = call(
            self.system,
            what,
            lambda: self.apps.patch_namespaced_deployment(
                name,
                ns,
                body,
                dry_run="All" if dry_run else None,
                field_manager=self.field_manager,
                _content_type=content_type,
                _preload_content=False,
                _request_timeout=self.timeout_s,
            ),
        )
        return parse(self.system, what, Deployment, raw)


class _Pausable(Protocol):
    @property
    def spec(self) -> Any: ...


def pause_spec(
    deploy: DeployInfo,
    obj: str,
    read: Callable[[], _Pausable],
    patch: Callable[[dict[str, Any], bool], _Pausable],
    *,
    dry_run: bool,
    verb: str,
) -> ActionOutcome:
    """Set `spec.paused` on a Deployment or a Rollout: a no-op when already paused, a
    server-side dry run when asked, and read back afterwards to say whether it took."""
    if read().spec.paused:
        return outcome("pause", deploy, False, f"already done: {obj} is already paused")
    body = {"spec": {"paused": True}}
    if dry_run:
        after = patch(body, True)
        return outcome(
            "pause", deploy, False, f"dry run: would pause {obj}{dry_note(after.spec.paused)}"
        )
    patch(body, False)
    if read().spec.paused:
        detail = f"{verb} {obj} (verified: spec.paused is true)"
    else:
        detail = f"sent the pause of {obj} (not verified: spec.paused reads false after the patch)"
    return outcome("pause", deploy, True, detail)


def dry_note(took: bool) -> str:
    """How a server-side dry run went, for an outcome's detail."""
    if took:
        return " (the API server validated the patch with dryRun=All; nothing changed)"
    return (
        " (the API server accepted the patch with dryRun=All but its answer does not show "
        "the change)"
    )
