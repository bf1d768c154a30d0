"""The deploy event Vigil stores, what a webhook may parse to (`Ping`, `Ignored`), the
rejection, and the field types the incoming formats share.
"""

from __future__ import annotations

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


def lowercase(value: object) -> object:
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


class Incoming(BaseModel):
    model_config = ConfigDict(extra="ignore")  # senders add fields; only ours are checked


def validated(model: type[_M], data: dict[str, Any]) -> _M:
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
