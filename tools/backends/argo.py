"""Argo Rollouts as an actuator, through the official `kubernetes` client (Rollouts are the
custom resource `rollouts.argoproj.io/v1alpha1`).

pause sets `spec.paused: true`, as `kubectl argo rollouts pause`. rollback does what the
rollout needs: an update still in progress is aborted (`status.abort: true` through the status
subresource, as `kubectl argo rollouts abort`: the stable pods take the traffic back), and a
rollout that already completed is undone to its previous revision (the pod template of the
ReplicaSet with the next-highest `rollout.argoproj.io/revision`, as `kubectl argo rollouts
undo`; like any template change it goes through the rollout's steps again). Reads, dry runs,
read-back checks and errors work as for Deployments (`tools.backends.kubernetes`).
"""

from __future__ import annotations

from typing import Annotated, Any

from kubernetes.client import AppsV1Api, CustomObjectsApi
from kubernetes.client.exceptions import ApiException
from pydantic import BeforeValidator, Field
from urllib3.exceptions import HTTPError

from agent.backends.base import ActionOutcome, DeployInfo, SourceUnavailable
from tools.backends.kubernetes import (
    FIELD_MANAGER,
    JSON_PATCH,
    MERGE_PATCH,
    ROLLBACK_MARK,
    KubeModel,
    LabelSelector,
    ObjectMeta,
    ReplicaSetList,
    Target,
    call,
    dry_note,
    history,
    json_object,
    locate,
    namer,
    outcome,
    parse,
    pause_spec,
    same_template,
    step_back,
    unavailable,
    undo_patch,
    without_label,
)

GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "rollouts"
ROLLOUT_REVISION = "rollout.argoproj.io/revision"
ROLLOUT_HASH = "rollouts-pod-template-hash"


class RolloutSpec(KubeModel):
    paused: bool = False
    selector: LabelSelector = Field(default_factory=LabelSelector)
    template: dict[str, Any] | None = None  # absent when the rollout uses a workloadRef


class RolloutStatus(KubeModel):
    abort: bool = False
    phase: str = ""
    stable_rs: str = Field("", alias="stableRS")
    current_pod_hash: str = Field("", alias="currentPodHash")

    @property
    def completed(self) -> bool:
        """Argo's own test: the pods of the current template are the stable ones."""
        return bool(self.stable_rs) and self.stable_rs == self.current_pod_hash


class Rollout(KubeModel):
    metadata: ObjectMeta
    spec: RolloutSpec
    status: Annotated[RolloutStatus, BeforeValidator(lambda v: {} if v is None else v)] = Field(
        default_factory=RolloutStatus
    )


class ArgoRolloutsActuator:
    """`Actuator` over an Argo Rollout. `apps` (for the rollout's ReplicaSets, needed to undo)
    defaults to an AppsV1Api on the same API client as `api`."""

    system = "argo rollouts"

    def __init__(
        self,
        api: CustomObjectsApi,
        *,
        namespace_for: Target,
        name_for: Target,
        apps: AppsV1Api | None = None,
        timeout_s: float = 10.0,
        field_manager: str = FIELD_MANAGER,
    ) -> None:
        self.api = api
        self.apps = apps if apps is not None else AppsV1Api(api.api_client)
        self.namespace_for = namer(namespace_for, "namespace")
        self.name_for = namer(name_for, "name")
        self.timeout_s = timeout_s
        self.field_manager = field_manager

    def pause(self, deploy: DeployInfo, *, dry_run: bool) -> ActionOutcome:
        ns, name = locate(self.system, deploy, self.namespace_for, self.name_for)
        return pause_spec(
            deploy,
            f"Rollout {ns}/{name}",
            lambda: self._read(ns, name),
            lambda body, dry: self._patch(ns, name, body, MERGE_PATCH, dry_run=dry),
            dry_run=dry_run,
            verb="paused",
        )

    def rollback(self, deploy: DeployInfo, *, dry_run: bool) -> ActionOutcome:
        ns, name = locate(self.system, deploy, self.namespace_for, self.name_for)
        obj = f"Rollout {ns}/{name}"
        ro = self._read(ns, name)
        # The mark first: after an undo the rollout is mid-update again, and must not be aborted.
        if ro.metadata.annotations.get(ROLLBACK_MARK) == deploy.id:
            return outcome(
                "rollback", deploy, False, f"already done: {obj} was rolled back for {deploy.id}"
            )
        if ro.status.abort:
            phase = ro.status.phase or "unknown"
            return outcome(
                "rollback",
                deploy,
                False,
                f"already done: the update of {obj} is already aborted (phase {phase})",
            )
        if not ro.status.completed:
            return self._abort(deploy, ns, name, ro, dry_run=dry_run)
        return self._undo(deploy, ns, name, ro, dry_run=dry_run)

    def _abort(
        self, deploy: DeployInfo, ns: str, name: str, ro: Rollout, *, dry_run: bool
    ) -> ActionOutcome:
        obj = f"Rollout {ns}/{name}"
        update = f"the update of {obj} to pod template hash {ro.status.current_pod_hash or '?'}"
        stable = f"the stable pods (hash {ro.status.stable_rs or '?'})"
        body = {"status": {"abort": True}}
        if dry_run:
            after = self._patch_status(ns, name, body, dry_run=True)
            detail = f"dry run: would abort {update} and give {stable} the traffic back"
            return outcome("rollback", deploy, False, detail + dry_note(after.status.abort))
        self._patch_status(ns, name, body, dry_run=False)
        back = self._read(ns, name)
        if back.status.abort:
            phase = back.status.phase or "unknown"
            detail = (
                f"aborted {update}: {stable} take the traffic back (verified: status.abort is "
                f"true, phase {phase}); spec.template still names the new version, so a retry "
                "would deploy it again"
            )
        else:
            detail = (
                f"sent the abort of {update} "
                "(not verified: status.abort reads false after the patch)"
            )
        return outcome("rollback", deploy, True, detail)

    def _undo(
        self, deploy: DeployInfo, ns: str, name: str, ro: Rollout, *, dry_run: bool
    ) -> ActionOutcome:
        obj = f"Rollout {ns}/{name}"
        if ro.spec.template is None:
            raise SourceUnavailable(
                f"{self.system}: {obj} has no spec.template (it uses a workloadRef); "
                "roll back the workload it references instead"
            )
        revisions = history(
            self._replica_sets(ns, ro), ro.metadata.uid, ROLLOUT_REVISION, ROLLOUT_HASH
        )
        current, previous = step_back(revisions, without_label(ro.spec.template, ROLLOUT_HASH))
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
        patch = undo_patch(ro.metadata, previous.template, deploy.id, resume=ro.spec.paused)
        was = f"revision {current.number}" if current else "the new template"
        move = f"{obj} back from {was} to revision {previous.number}"
        resume = " and resume it" if ro.spec.paused else ""
        if dry_run:
            after = self._patch(ns, name, patch, JSON_PATCH, dry_run=True)
            took = same_template(previous.template, after.spec.template or {})
            return outcome(
                "rollback", deploy, False, f"dry run: would roll {move}{resume}{dry_note(took)}"
            )
        self._patch(ns, name, patch, JSON_PATCH, dry_run=False)
        back = self._read(ns, name)
        if same_template(previous.template, back.spec.template or {}) and not back.spec.paused:
            resumed = " and resumed it" if ro.spec.paused else ""
            current_hash = back.status.current_pod_hash == previous.pod_hash
            running = f", pod template hash {previous.pod_hash} is current" if current_hash else ""
            detail = (
                f"rolled {move}{resumed} (verified: spec.template matches revision "
                f"{previous.number}{running})"
            )
        else:
            paused = " or it is still paused" if back.spec.paused else ""
            detail = (
                f"sent the patch to roll {move}{resume} (not verified: on read-back spec.template "
                f"does not run revision {previous.number}{paused})"
            )
        return outcome("rollback", deploy, True, detail)

    def _read(self, ns: str, name: str) -> Rollout:
        what = f"read Rollout {ns}/{name}"
        raw = call(
            self.system,
            what,
            lambda: self.api.get_namespaced_custom_object(
                GROUP,
                VERSION,
                ns,
                PLURAL,
                name,
                _preload_content=False,
                _request_timeout=self.timeout_s,
            ),
        )
        return parse(self.system, what, Rollout, raw)

    def _replica_sets(self, ns: str, ro: Rollout) -> ReplicaSetList:
        what = f"list the ReplicaSets of Rollout {ns}/{ro.metadata.name}"
        try:
            selector = ro.spec.selector.query() or None
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

    def _patch(self, ns: str, name: str, body: Any, content_type: str, *, dry_run: bool) -> Rollout:
        what = f"{'dry-run ' if dry_run else ''}patch Rollout {ns}/{name}"
        raw = call(
            self.system,
            what,
            lambda: self.api.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                ns,
                PLURAL,
                name,
                body,
                dry_run="All" if dry_run else None,
                field_manager=self.field_manager,
                _content_type=content_type,
                _preload_content=False,
                _request_timeout=self.timeout_s,
            ),
        )
        return parse(self.system, what, Rollout, raw)

    def _patch_status(self, ns: str, name: str, body: dict[str, Any], *, dry_run: bool) -> Rollout:
        what = f"{'dry-run ' if dry_run else ''}patch the status of Rollout {ns}/{name}"
        try:
            response = self.api.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                ns,
                PLURAL,
                name,
                body,
                dry_run="All" if dry_run else None,
                field_manager=self.field_manager,
                _content_type=MERGE_PATCH,
                _preload_content=False,
                _request_timeout=self.timeout_s,
            )
        except ApiException as exc:
            if exc.status != 404:
                raise unavailable(self.system, what, exc) from None
            # The object was just read, so 404 means a CRD without the status subresource,
            # where status is patched on the object itself (the plugin falls back the same way).
            return self._patch(ns, name, body, MERGE_PATCH, dry_run=dry_run)
        except (HTTPError, OSError) as exc:
            raise unavailable(self.system, what, exc) from None
        return parse(self.system, what, Rollout, json_object(self.system, what, response))
