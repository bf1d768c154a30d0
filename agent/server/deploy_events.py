"""Deploy webhooks in, one typed `DeployEvent` out.

`parse_deploy_event(headers, body, github_secret=..., now=...)` reads four formats, picked
from the headers and the body (`parse_webhook` is the same, and also says what a webhook that
is not a deploy was):

- `X-GitHub-Event` header → **GitHub** (`deployment_status`, `deployment`, `ping`);
- a body whose `source` is `"argo-rollouts"` or `"argocd"` → the **notification templates**
  in `TEMPLATES` (paste them into the notifications ConfigMap);
- anything else → the **generic** JSON format:
  `{"service", "version", "kind" (or "status"), "environment"?, "deploy_id"?, "id"?,
  "previous_version"?, "started_at"?, "at"?, "strategy"?, "commit"?, "url"?}`.

How each maps to a `kind`:

    GitHub deployment_status  queued, pending → started · in_progress → progressing ·
                              success → succeeded · failure, error → failed ·
                              inactive, waiting → Ignored (a newer deploy superseded it /
                              it awaits approval: neither is a deploy to watch)
    GitHub deployment         created → started
    Argo Rollouts trigger     on-rollout-updated → started · on-rollout-step-completed →
                              progressing · on-rollout-completed → succeeded ·
                              on-rollout-paused → paused · on-rollout-aborted → aborted ·
                              on-analysis-run-failed → failed
    Argo CD trigger           on-sync-running → started · on-sync-succeeded → progressing
                              (manifests applied, pods still rolling) · on-deployed →
                              succeeded (synced and healthy) · on-sync-failed,
                              on-health-degraded → failed

Fields: GitHub's `deployment.payload` (an object or a JSON string) may name `service`,
`version`, `previous_version` and `strategy`; otherwise the service is the repository's name
and the version the commit's first 12 characters; `started_at` is when the deployment was
created. Argo Rollouts: the service is the rollout, the version the first container's image
tag, and `started_at` the event's own time (a rollout records no start; the store keeps the
first event's). Argo CD: the application, the sync revision, and the sync operation's start.
A template may add `service`, `environment`, `version`, `url` and `at` to override these.
Without `at`, an event happened at `now`, the time it was received.

Every event of one deploy carries the same `deploy_id` (GitHub: the deployment id; Argo
Rollouts: namespace, rollout and revision; Argo CD: application and revision; generic: the
caller's `deploy_id`, else service, environment and version). The `dedup_key` is the same for
every delivery of one event and differs between events: GitHub's `X-GitHub-Delivery` is new on
each redelivery, so the key is the deployment id with the status id and state; Argo Rollouts:
the deploy with the trigger and the canary step (the trigger, not the object's phase, which can
lag a generation); Argo CD: the deploy with the trigger and the sync operation's start (a
re-sync is a new event); generic: the caller's `id`, else a hash of the canonical body.

Rejections are `WebhookRejected(status, reason)`, never any other exception:

    400  body is not JSON, not an object, nested too deeply; unknown event type or trigger
    401  GitHub signature missing or wrong (only when a secret is configured)
    415  a declared Content-Type that is not JSON
    422  a field is missing or invalid: the reason names its path

With a secret, every GitHub event must carry `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the
raw body>`; any other request that carries that header is checked the same way, so a generic
sender can sign too. A GitHub `ping` and events that are not deploys (`inactive`, `waiting`)
give None from `parse_deploy_event` (`Ping` and `Ignored` from `parse_webhook`): answer them
200 and record nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from agent.errors import VigilError

__all__ = [
    "TEMPLATES",
    "DeployEvent",
    "Ignored",
    "Kind",
    "ParsedWebhook",
    "Ping",
    "Source",
    "Strategy",
    "WebhookRejected",
    "parse_deploy_event",
    "parse_webhook",
]

Source = Literal["generic", "github", "argo-rollouts", "argocd"]
Kind = Literal["started", "progressing", "succeeded", "failed", "paused", "aborted", "rolled_back"]
Strategy = Literal["rolling", "canary", "blue-green"]


class WebhookRejected(VigilError):
    """A webhook that cannot be accepted: the HTTP status to answer and why."""

    def __init__(self, status: int, reason: str) -> None:
        self.status = status
        self.reason = reason
        super().__init__(f"{status}: {reason}")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.status, self.reason))


class DeployEvent(BaseModel):
    """One thing that happened to one deploy, whatever system reported it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: Source
    kind: Kind
    service: str
    environment: str | None = None
    deploy_id: str
    version: str
    previous_version: str | None = None
    started_at: AwareDatetime  # the deploy's start, as far as this event knows it
    at: AwareDatetime  # when this event happened
    strategy: Strategy | None = None
    commit: str | None = None
    url: str | None = None
    dedup_key: str  # equal for redeliveries of this event, different for any other event


class Ping(BaseModel):
    """GitHub's test delivery when a webhook is created: answer 200, record nothing."""

    model_config = ConfigDict(frozen=True)

    source: Literal["github"] = "github"
    hook_id: int | None = None


class Ignored(BaseModel):
    """A well-formed event that is not a deploy to watch (e.g. GitHub's `inactive`)."""

    model_config = ConfigDict(frozen=True)

    source: Source
    reason: str


ParsedWebhook = DeployEvent | Ping | Ignored

# ---------------------------------------------------------------------------- field types


def _plain(value: str) -> str:
    if value == "<no value>":
        raise ValueError("the notification template rendered '<no value>' (a missing field)")
    if not value.isprintable():
        raise ValueError("contains control characters or unpaired surrogates")
    return value


def _absent_if_blank(value: object) -> object:
    # A Go template renders a missing field as "" or "<no value>": both mean "not given".
    if isinstance(value, str) and value.strip() in ("", "<no value>"):
        return None
    return value


def _number_as_text(value: object) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _strategy(value: object) -> object:
    if not isinstance(value, str):
        return value
    squashed = value.lower().replace("-", "").replace("_", "").replace(" ", "")
    return {"rollingupdate": "rolling", "bluegreen": "blue-green"}.get(squashed, squashed)


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http(s) URL")
    return value


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=256),
    AfterValidator(_plain),
]
OptText = Annotated[Text | None, BeforeValidator(_absent_if_blank)]
Version = Annotated[Text, BeforeValidator(_number_as_text)]
OptVersion = Annotated[Version | None, BeforeValidator(_absent_if_blank)]
OptStrategy = Annotated[
    Strategy | None, BeforeValidator(_strategy), BeforeValidator(_absent_if_blank)
]
OptUrl = Annotated[
    Annotated[
        str, StringConstraints(strip_whitespace=True, max_length=2048), AfterValidator(_plain)
    ]
    | None,
    AfterValidator(lambda v: None if v is None else _http_url(v)),
    BeforeValidator(_absent_if_blank),
]
OptTime = Annotated[AwareDatetime | None, BeforeValidator(_absent_if_blank)]
OptStep = Annotated[int | None, Field(ge=0), BeforeValidator(_absent_if_blank)]
Images = Annotated[list[Text], BeforeValidator(lambda v: [] if v is None else v)]


_M = TypeVar("_M", bound=BaseModel)


class _Incoming(BaseModel):
    model_config = ConfigDict(extra="ignore")  # senders add fields; only ours are checked


# ---------------------------------------------------------------------------- generic


class _Generic(_Incoming):
    id: OptText = None
    service: Text
    environment: OptText = None
    deploy_id: OptText = None
    version: Version
    previous_version: OptVersion = None
    kind: Annotated[Kind | None, BeforeValidator(_lower)] = None
    status: Annotated[Kind | None, BeforeValidator(_lower)] = None
    started_at: OptTime = None
    at: OptTime = None
    strategy: OptStrategy = None
    commit: OptText = None
    url: OptUrl = None


def _generic(data: dict[str, Any], now: datetime) -> DeployEvent:
    body = _validate(_Generic, data)
    if body.kind is None and body.status is None:
        raise WebhookRejected(422, "field 'kind': required (or 'status'), e.g. \"started\"")
    if body.kind is not None and body.status is not None and body.kind != body.status:
        raise WebhookRejected(422, f"field 'status': {body.status!r} disagrees with 'kind'")
    at = body.at or now
    env = f":{body.environment}" if body.environment else ""
    if body.id is not None:
        dedup = f"generic:id:{body.id}"
    else:
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        dedup = f"generic:body:{hashlib.sha256(canonical.encode()).hexdigest()[:32]}"
    return DeployEvent(
        source="generic",
        kind=body.kind or body.status or "started",
        service=body.service,
        environment=body.environment,
        deploy_id=body.deploy_id or f"generic:{body.service}{env}:{body.version}",
        version=body.version,
        previous_version=body.previous_version,
        started_at=body.started_at or at,
        at=at,
        strategy=body.strategy,
        commit=body.commit,
        url=body.url,
        dedup_key=dedup,
    )


# ---------------------------------------------------------------------------- GitHub


class _DeployHints(_Incoming):
    """`deployment.payload`: free-form, but these keys, when present, must be sensible."""

    service: OptText = None
    version: OptVersion = None
    previous_version: OptVersion = None
    strategy: OptStrategy = None


def _payload_object(value: object) -> object:
    # The REST API takes `payload` as an object or a JSON string; anything else is not ours.
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return None
    return value if isinstance(value, dict) else None


class _GitHubRepository(_Incoming):
    name: Text
    full_name: OptText = None


class _GitHubDeployment(_Incoming):
    id: int = Field(ge=1)
    sha: Text
    ref: OptText = None
    environment: Text
    payload: Annotated[_DeployHints | None, BeforeValidator(_payload_object)] = None
    created_at: AwareDatetime


GitHubState = Literal[
    "queued", "pending", "in_progress", "success", "failure", "error", "inactive", "waiting"
]
_GITHUB_KIND: dict[str, Kind] = {
    "queued": "started",
    "pending": "started",
    "in_progress": "progressing",
    "success": "succeeded",
    "failure": "failed",
    "error": "failed",
}
_GITHUB_IGNORED = {
    "inactive": "deployment_status 'inactive': a newer deployment superseded this one",
    "waiting": "deployment_status 'waiting': the deployment awaits approval and has not started",
}


class _GitHubStatus(_Incoming):
    id: int = Field(ge=1)
    state: Annotated[GitHubState, BeforeValidator(_lower)]
    environment: OptText = None
    created_at: AwareDatetime
    log_url: OptUrl = None
    target_url: OptUrl = None


class _GitHubDeploymentStatusEvent(_Incoming):
    deployment_status: _GitHubStatus
    deployment: _GitHubDeployment
    repository: _GitHubRepository


class _GitHubDeploymentEvent(_Incoming):
    action: OptText = None
    deployment: _GitHubDeployment
    repository: _GitHubRepository


def _github_event(
    deployment: _GitHubDeployment,
    repository: _GitHubRepository,
    *,
    kind: Kind,
    at: datetime,
    environment: str,
    url: str | None,
    dedup: str,
) -> DeployEvent:
    hints = deployment.payload or _DeployHints()
    return DeployEvent(
        source="github",
        kind=kind,
        service=hints.service or repository.name,
        environment=environment,
        deploy_id=f"github:{deployment.id}",
        version=hints.version or deployment.sha[:12],
        previous_version=hints.previous_version,
        started_at=deployment.created_at,
        at=at,
        strategy=hints.strategy,
        commit=deployment.sha,
        url=url,
        dedup_key=dedup,
    )


def _github(event: str, data: dict[str, Any]) -> ParsedWebhook:
    if event == "ping":
        hook_id = data.get("hook_id")
        return Ping(hook_id=hook_id if type(hook_id) is int else None)
    if event == "deployment_status":
        body = _validate(_GitHubDeploymentStatusEvent, data)
        status, deployment = body.deployment_status, body.deployment
        if status.state in _GITHUB_IGNORED:
            return Ignored(source="github", reason=_GITHUB_IGNORED[status.state])
        return _github_event(
            deployment,
            body.repository,
            kind=_GITHUB_KIND[status.state],
            at=status.created_at,
            environment=status.environment or deployment.environment,
            url=status.log_url or status.target_url,
            dedup=f"github:{deployment.id}:status:{status.id}:{status.state}",
        )
    if event == "deployment":
        created = _validate(_GitHubDeploymentEvent, data)
        if created.action not in (None, "created"):
            return Ignored(source="github", reason=f"deployment action {created.action!r}")
        deployment = created.deployment
        return _github_event(
            deployment,
            created.repository,
            kind="started",
            at=deployment.created_at,
            environment=deployment.environment,
            url=None,
            dedup=f"github:{deployment.id}:created",
        )
    raise WebhookRejected(
        400,
        f"unknown event type: GitHub event {event[:60]!r}"
        " (Vigil reads deployment, deployment_status and ping)",
    )


# ---------------------------------------------------------------------------- Argo


_ROLLOUT_KIND: dict[str, Kind] = {
    "on-rollout-updated": "started",
    "on-rollout-step-completed": "progressing",
    "on-rollout-completed": "succeeded",
    "on-rollout-paused": "paused",
    "on-rollout-aborted": "aborted",
    "on-analysis-run-failed": "failed",
}
_ARGOCD_KIND: dict[str, Kind] = {
    "on-sync-running": "started",
    "on-sync-succeeded": "progressing",
    "on-deployed": "succeeded",
    "on-sync-failed": "failed",
    "on-health-degraded": "failed",
}


class _ArgoBody(_Incoming):
    trigger: Text
    revision: Version
    service: OptText = None  # optional overrides a user may add to the template
    environment: OptText = None
    version: OptVersion = None
    url: OptUrl = None
    at: OptTime = None
    phase: OptText = None


class _RolloutBody(_ArgoBody):
    rollout: Text
    namespace: OptText = None
    step: OptStep = None
    strategy: OptStrategy = None
    images: Images = []


class _ArgoCDBody(_ArgoBody):
    app: Text
    sync_status: OptText = None
    health: OptText = None
    started_at: OptTime = None


def _trigger(source: str, data: dict[str, Any], known: Mapping[str, Kind]) -> Kind:
    trigger = data.get("trigger")
    if trigger is None:
        raise WebhookRejected(422, "field 'trigger': Field required")
    if not isinstance(trigger, str):
        raise WebhookRejected(422, "field 'trigger': Input should be a valid string")
    if trigger.strip() not in known:
        raise WebhookRejected(
            400,
            f"unknown event type: {source} trigger {trigger.strip()[:60]!r}"
            f" (Vigil maps {', '.join(known)})",
        )
    return known[trigger.strip()]


def _image_version(image: str) -> str:
    """`registry:5000/team/app:v1.4.2@sha256:…` → `v1.4.2`; no tag → the digest or the name."""
    ref, _, digest = image.partition("@")
    _, colon, tag = ref.rpartition(":")
    if colon and "/" not in tag:
        return tag
    return digest or ref


def _argo_rollouts(data: dict[str, Any], now: datetime) -> DeployEvent:
    kind = _trigger("argo-rollouts", data, _ROLLOUT_KIND)
    body = _validate(_RolloutBody, data)
    if body.version is None and not body.images:
        raise WebhookRejected(422, "field 'version': required when 'images' is empty")
    where = f"{body.namespace}:" if body.namespace else ""
    deploy_id = f"argo-rollouts:{where}{body.rollout}:{body.revision}"
    at = body.at or now
    step = "-" if body.step is None else str(body.step)
    return DeployEvent(
        source="argo-rollouts",
        kind=kind,
        service=body.service or body.rollout,
        environment=body.environment,
        deploy_id=deploy_id,
        version=body.version or _image_version(body.images[0]),
        started_at=at,  # the rollout object has no start time; the store keeps the first
        at=at,
        strategy=body.strategy,
        url=body.url,
        dedup_key=f"{deploy_id}:{body.trigger}:{step}",
    )


def _looks_like_commit(revision: str) -> bool:
    return 7 <= len(revision) <= 40 and all(c in "0123456789abcdef" for c in revision)


def _argocd(data: dict[str, Any], now: datetime) -> DeployEvent:
    kind = _trigger("argocd", data, _ARGOCD_KIND)
    body = _validate(_ArgoCDBody, data)
    deploy_id = f"argocd:{body.app}:{body.revision}"
    commit = body.revision if _looks_like_commit(body.revision) else None
    operation = body.started_at.isoformat() if body.started_at else "-"
    at = body.at or now
    return DeployEvent(
        source="argocd",
        kind=kind,
        service=body.service or body.app,
        environment=body.environment,
        deploy_id=deploy_id,
        version=body.version or (body.revision[:12] if commit else body.revision),
        started_at=body.started_at or at,
        at=at,
        commit=commit,
        url=body.url,
        dedup_key=f"{deploy_id}:{body.trigger}:{operation}",
    )


# ---------------------------------------------------------------------------- entry point


def parse_deploy_event(
    headers: Mapping[str, str],
    body: bytes,
    *,
    github_secret: str | None = None,
    now: datetime,
) -> DeployEvent | None:
    """The deploy event a webhook describes, or None when it describes none (a GitHub ping,
    an `inactive` status): answer 200 and record nothing. `parse_webhook` says which.

    Raises `WebhookRejected` for every bad input, and nothing else.
    """
    result = parse_webhook(headers, body, github_secret=github_secret, now=now)
    return result if isinstance(result, DeployEvent) else None


def parse_webhook(
    headers: Mapping[str, str],
    body: bytes,
    *,
    github_secret: str | None = None,
    now: datetime,
) -> ParsedWebhook:
    """A `DeployEvent`, a `Ping` or an `Ignored` (see the module docstring for the formats).

    `now` (timezone-aware) stands in for the event time when the sender does not give one.
    Raises `WebhookRejected` for every bad input, and nothing else.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    h = {str(k).lower(): str(v) for k, v in headers.items()}
    github = h.get("x-github-event")
    if github_secret and (github is not None or "x-hub-signature-256" in h):
        _check_signature(h.get("x-hub-signature-256"), body, github_secret)
    _check_content_type(h.get("content-type", ""))
    data = _json_object(body)
    try:
        if github is not None:
            return _github(github.strip().lower(), data)
        source = data.get("source")
        if source == "argo-rollouts":
            return _argo_rollouts(data, now)
        if source == "argocd":
            return _argocd(data, now)
        return _generic(data, now)
    except RecursionError:
        raise WebhookRejected(400, "body is nested too deeply") from None


def _check_signature(sent: str | None, body: bytes, secret: str) -> None:
    if sent is None:
        raise WebhookRejected(
            401, "missing X-Hub-Signature-256: a webhook secret is configured, so sign the body"
        )
    scheme, _, digest = sent.strip().partition("=")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    given = digest.strip().lower().encode("utf-8", "replace")
    if scheme.lower() != "sha256" or not hmac.compare_digest(expected, given):
        raise WebhookRejected(
            401, "X-Hub-Signature-256 does not match the body: check the webhook secret"
        )


def _check_content_type(declared: str) -> None:
    media = declared.split(";", 1)[0].strip().lower()
    if not media or media == "application/json" or media.endswith("+json"):
        return
    hint = ""
    if media == "application/x-www-form-urlencoded":
        hint = " (for GitHub, set the webhook's content type to application/json)"
    raise WebhookRejected(
        415, f"content type {media[:80]!r} is not JSON: send application/json{hint}"
    )


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except RecursionError:
        raise WebhookRejected(400, "body is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, integer too long
        raise WebhookRejected(400, f"body is not JSON: {str(exc)[:200]}") from None
    if not isinstance(data, dict):
        raise WebhookRejected(400, f"body is a JSON {type(data).__name__}, not an object")
    return data


def _validate(model: type[_M], data: dict[str, Any]) -> _M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        first = errors[0]
        where = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]
        ).lstrip(".")
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        msg = first["msg"].removeprefix("Value error, ")
        raise WebhookRejected(422, f"field '{where or 'body'}': {msg}{more}") from None


# ---------------------------------------------------------------------------- templates

_ROLLOUT_BODY = """\
{
  "source": "argo-rollouts",
  "trigger": "TRIGGER",
  "rollout": "{{.rollout.metadata.name}}",
  "namespace": "{{.rollout.metadata.namespace}}",
  "revision": "{{index .rollout.metadata.annotations "rollout.argoproj.io/revision"}}",
  "phase": "{{.rollout.status.phase}}",
  "step": "{{.rollout.status.currentStepIndex}}",
  "strategy": "{{if .rollout.spec.strategy.canary}}canary{{else}}blue-green{{end}}",
  "images": [{{range $i, $c := .rollout.spec.template.spec.containers}}{{if $i}}, {{end}}\
"{{$c.image}}"{{end}}]
}"""

_ARGOCD_BODY = """\
{
  "source": "argocd",
  "trigger": "TRIGGER",
  "app": "{{.app.metadata.name}}",
  "revision": "{{.app.status.sync.revision}}",
  "sync_status": "{{.app.status.sync.status}}",
  "health": "{{.app.status.health.status}}",
  "phase": "{{with .app.status.operationState}}{{.phase}}{{end}}",
  "started_at": "{{with .app.status.operationState}}{{.startedAt}}{{end}}",
  "url": "{{with .context.argocdUrl}}{{.}}/applications/{{$.app.metadata.name}}{{end}}"
}"""

_SERVICE = """\
  # Vigil's deploy webhook (the URL of `vigil serve`).
  service.webhook.vigil: |
    url: https://vigil.example.com/webhooks/deploy
    headers:
    - name: Content-Type
      value: application/json
"""


def _template(trigger: str, body: str) -> str:
    indented = "".join(
        f"          {line}\n" for line in body.replace("TRIGGER", trigger).split("\n")
    )
    return (
        f"  template.vigil-{trigger}: |\n"
        "    webhook:\n"
        "      vigil:\n"
        "        method: POST\n"
        "        body: |\n"
        f"{indented}"
    )


def _rollouts_configmap() -> str:
    triggers = "".join(f"  trigger.{t}: |\n    - send: [vigil-{t}]\n" for t in _ROLLOUT_KIND)
    return (
        "# argo-rollouts-notification-configmap: merge into `data`. Keep any templates your\n"
        "# triggers already send, e.g. `send: [rollout-updated, vigil-on-rollout-updated]`.\n"
        "# Subscribe each Rollout, once per trigger:\n"
        '#   notifications.argoproj.io/subscribe.on-rollout-updated.vigil: ""\n'
        '# Optional keys a template may add: "service", "environment", "version" (else the\n'
        '# rollout name and the first container\'s image tag), "url".\n'
        "data:\n"
        + _SERVICE
        + triggers
        + "".join(_template(t, _ROLLOUT_BODY) for t in _ROLLOUT_KIND)
    )


def _argocd_configmap() -> str:
    wiring = "".join(f"#   trigger.{t}: send: [..., vigil-{t}]\n" for t in _ARGOCD_KIND)
    return (
        "# argocd-notifications-cm: merge into `data`. Add Vigil's template to the `send` list\n"
        "# of each catalog trigger (keep its `when` and `oncePer`):\n"
        + wiring
        + "# Subscribe each Application, once per trigger:\n"
        '#   notifications.argoproj.io/subscribe.on-deployed.vigil: ""\n'
        '# Optional keys a template may add: "service", "environment", "version" (else the\n'
        "# application name and the sync revision).\n"
        "data:\n" + _SERVICE + "".join(_template(t, _ARGOCD_BODY) for t in _ARGOCD_KIND)
    )


# The notification ConfigMap snippets Vigil expects, by source (the README shows them).
TEMPLATES: dict[str, str] = {
    "argo-rollouts": _rollouts_configmap(),
    "argocd": _argocd_configmap(),
}
