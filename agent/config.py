"""`vigil.yaml`: the services Vigil watches and the systems it reads and acts on.

Secrets never live in the file: it names environment variables (`*_env` fields) and the
values are read from the environment when a client is built. Every problem is reported with
the file, the line and the field, and PromQL is parsed on load so a typo in a query fails
`vigil config check` instead of a 3 AM investigation.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from agent.bundle import yamlpos
from agent.bundle.model import BadDirection, SignalKind, SignalUnit, parse_duration
from agent.errors import ConfigError, ConfigFileError
from agent.guard import GuardPolicy

CONFIG_ENV = "VIGIL_CONFIG"
DEFAULT_PATHS = (Path("vigil.yaml"), Path("/etc/vigil/vigil.yaml"))
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(value: str) -> str:
    parse_duration(value)
    return value


def _env_name(value: str | None) -> str | None:
    if value is not None and not _ENV_NAME.match(value):
        raise ValueError(f"{value!r} is not an environment variable name (secrets stay in env)")
    return value


def check_promql(query: str) -> str:
    """Parse a PromQL expression; a ValueError carries the parser's message."""
    import promql_parser

    try:
        promql_parser.parse(query)
    except Exception as exc:  # the parser raises plain exceptions with a readable message
        raise ValueError(f"not valid PromQL: {exc}") from None
    return query


Duration = Annotated[str, Field(min_length=1)]


class Auth(_Strict):
    """Bearer token or basic auth, read from the environment."""

    bearer_token_env: str | None = None
    username: str | None = None
    password_env: str | None = None

    _env = field_validator("bearer_token_env", "password_env")(_env_name)

    @model_validator(mode="after")
    def _one_kind(self) -> Auth:
        if self.bearer_token_env and self.username:
            raise ValueError("use either bearer_token_env or username/password_env, not both")
        if (self.username is None) != (self.password_env is None):
            raise ValueError("basic auth needs both username and password_env")
        return self

    def headers(self) -> dict[str, str]:
        if self.bearer_token_env:
            return {"Authorization": f"Bearer {secret_from_env(self.bearer_token_env)}"}
        return {}

    def basic(self) -> tuple[str, str] | None:
        if self.username and self.password_env:
            return self.username, secret_from_env(self.password_env)
        return None


def secret_from_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ConfigError(f"environment variable {name} is not set (named in vigil.yaml)")
    return value


class PrometheusConfig(_Strict):
    url: str = Field(pattern=r"^https?://")
    timeout_s: float = Field(10.0, gt=0)
    retries: int = Field(2, ge=0, le=10)
    verify_tls: bool = True
    auth: Auth = Auth()


class LokiConfig(_Strict):
    url: str = Field(pattern=r"^https?://")
    tenant: str | None = None
    timeout_s: float = Field(10.0, gt=0)
    auth: Auth = Auth()


class GitHubConfig(_Strict):
    base_url: str = Field("https://api.github.com", pattern=r"^https?://")
    token_env: str | None = "GITHUB_TOKEN"

    _env = field_validator("token_env")(_env_name)


class PagerDutyConfig(_Strict):
    url: str = Field("https://events.pagerduty.com/v2/enqueue", pattern=r"^https?://")
    routing_key_env: str = "PAGERDUTY_ROUTING_KEY"

    _env = field_validator("routing_key_env")(_env_name)


class SignalConfig(_Strict):
    """One signal: a PromQL query that yields the value at each step (per cohort if any)."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_:.\-]*$")
    query: str = Field(min_length=1)
    kind: SignalKind
    unit: SignalUnit
    bad_direction: BadDirection
    slo: float | None = None
    critical: bool = False
    events: str | None = Field(
        None, description="the signal counting this ratio's events per step (e.g. requests)"
    )

    _promql = field_validator("query")(check_promql)


class Cohorts(_Strict):
    """Canary analysis: the label that tells the cohorts apart in every query's result."""

    label: str = Field(min_length=1)
    baseline: str = "stable"
    canary: str = "canary"


class LogsConfig(_Strict):
    source: Literal["loki", "file"]
    selector: str | None = Field(None, description="LogQL stream selector for Loki")
    path: str | None = Field(None, description="a file, or a pattern with {service}")

    @model_validator(mode="after")
    def _needs(self) -> LogsConfig:
        if self.source == "file" and not self.path:
            raise ValueError("path: a file log source needs a path")
        if self.selector is not None and "{service}" not in self.selector:
            raise ValueError("selector: write the service as {service}, e.g. '{app=\"{service}\"}'")
        return self


LINK_FIELD = re.compile(r"\{([^{}]*)\}")  # a {placeholder} of a link template
LINK_PLACEHOLDERS = {
    "compare_url": frozenset({"web_url", "base", "head"}),
    "file_url": frozenset({"web_url", "head", "path"}),
}


def link_template_problem(template: str, allowed: frozenset[str]) -> str | None:
    """Why a link template is unusable (an unknown placeholder), or None."""
    unknown = sorted(set(LINK_FIELD.findall(template)) - allowed)
    if unknown:
        names = ", ".join("{" + p + "}" for p in sorted(allowed))
        return f"unknown placeholder {{{unknown[0]}}} (use {names})"
    return None


class RepositoryConfig(_Strict):
    git: str | None = Field(None, description="a local clone")
    github: str | None = Field(None, pattern=r"^[\w.-]+/[\w.-]+$", description="owner/repo")
    ref_template: str = "{version}"
    web_url: str | None = Field(
        None,
        pattern=r"^https?://",
        description="the repository's web page, for links (derived for github: owner/repo)",
    )
    compare_url: str = Field(
        "{web_url}/compare/{base}...{head}",
        description="link to a deploy's change; GitLab: {web_url}/-/compare/{base}...{head}",
    )
    file_url: str = Field(
        "{web_url}/blob/{head}/{path}",
        description="link to a file as deployed; GitLab: {web_url}/-/blob/{head}/{path}",
    )

    @field_validator("compare_url", "file_url")
    @classmethod
    def _link(cls, value: str, info: ValidationInfo) -> str:
        problem = link_template_problem(value, LINK_PLACEHOLDERS[str(info.field_name)])
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _one(self) -> RepositoryConfig:
        if (self.git is None) == (self.github is None):
            raise ValueError("set exactly one of git (a local clone) or github (owner/repo)")
        return self


class RolloutConfig(_Strict):
    kind: Literal["argo", "deployment", "webhook", "recording"]
    namespace: str | None = None
    name: str | None = Field(None, description="the Rollout or Deployment; default the service")
    url: str | None = Field(None, pattern=r"^https?://")
    status_url: str | None = Field(None, pattern=r"^https?://")
    secret_env: str | None = None

    _env = field_validator("secret_env")(_env_name)

    @model_validator(mode="after")
    def _needs(self) -> RolloutConfig:
        if self.kind == "webhook" and not (self.url and self.secret_env):
            raise ValueError("a webhook rollout needs url and secret_env")
        if self.kind in ("argo", "deployment") and not self.namespace:
            raise ValueError(f"namespace: a {self.kind} rollout needs a namespace")
        return self


class EscalationConfig(_Strict):
    kind: Literal["pagerduty", "webhook", "recording"]
    url: str | None = Field(None, pattern=r"^https?://")
    secret_env: str | None = None

    _env = field_validator("secret_env")(_env_name)

    @model_validator(mode="after")
    def _needs(self) -> EscalationConfig:
        if self.kind == "webhook" and not (self.url and self.secret_env):
            raise ValueError("a webhook escalation needs url and secret_env")
        return self


class ServiceConfig(_Strict):
    environment: str | None = None
    step: str = "15s"
    baseline: str = Field("1h", description="how much history before a deploy is the baseline")
    watch: str = Field("20m", description="how long a deploy is watched after it starts")
    cohorts: Cohorts | None = None
    signals: list[SignalConfig] = Field(min_length=1)
    logs: LogsConfig | None = None
    repository: RepositoryConfig | None = None
    rollout: RolloutConfig = RolloutConfig(kind="recording")
    escalation: EscalationConfig = EscalationConfig(kind="recording")
    guard: dict[str, Any] = Field(default_factory=dict, description="GuardPolicy overrides")

    _durations = field_validator("step", "baseline", "watch")(_duration)

    @model_validator(mode="after")
    def _consistent(self) -> ServiceConfig:
        names = [s.name for s in self.signals]
        for i, spec in enumerate(self.signals):
            if names.index(spec.name) != i:
                raise ValueError(f"signals[{i}].name: duplicate signal name {spec.name!r}")
            if spec.events is not None and spec.events not in names:
                raise ValueError(f"signals[{i}].events: {spec.events!r} is not a signal here")
        try:
            GuardPolicy.model_validate(self.guard)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in err["loc"])
            raise ValueError(f"guard.{where}: {err['msg']}") from None
        return self

    @property
    def step_seconds(self) -> float:
        return parse_duration(self.step)

    @property
    def baseline_seconds(self) -> float:
        return parse_duration(self.baseline)

    @property
    def watch_seconds(self) -> float:
        return parse_duration(self.watch)

    def policy(self) -> GuardPolicy:
        return GuardPolicy.model_validate(self.guard)


class VigilConfig(_Strict):
    version: Literal[1] = 1
    prometheus: PrometheusConfig | None = None
    loki: LokiConfig | None = None
    github: GitHubConfig | None = None
    pagerduty: PagerDutyConfig | None = None
    services: dict[str, ServiceConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _sources_exist(self) -> VigilConfig:
        for name, svc in self.services.items():
            if svc.logs is not None and svc.logs.source == "loki" and self.loki is None:
                raise ValueError(f"services.{name}.logs: a loki log source needs a top-level loki")
            if svc.escalation.kind == "pagerduty" and self.pagerduty is None:
                raise ValueError(
                    f"services.{name}.escalation: pagerduty escalation needs a top-level pagerduty"
                )
        return self

    def service(self, name: str) -> ServiceConfig:
        try:
            return self.services[name]
        except KeyError:
            known = ", ".join(sorted(self.services))
            raise ConfigError(
                f"no service {name!r} in the configuration (known: {known})"
            ) from None


def find_config(explicit: Path | None = None) -> Path:
    """--config, else $VIGIL_CONFIG, else ./vigil.yaml or /etc/vigil/vigil.yaml."""
    if explicit is not None:
        return explicit
    if env := os.environ.get(CONFIG_ENV):
        return Path(env)
    for candidate in DEFAULT_PATHS:
        if candidate.is_file():
            return candidate
    raise ConfigError(f"no configuration: pass --config FILE or set ${CONFIG_ENV}")


def load_config(path: Path) -> VigilConfig:
    """Read and validate a config file; any problem names its file, line and field."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigFileError(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(path, f"cannot read: {exc}") from None
    try:
        data, root = yamlpos.load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = None if mark is None else int(mark.line) + 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigFileError(path, f"not valid YAML: {problem}", line=line) from None
    if not isinstance(data, dict) or root is None:
        raise ConfigFileError(path, "must be a YAML mapping (version, prometheus, services...)")
    if (duplicate := yamlpos.duplicate_key(root)) is not None:
        line, loc = duplicate
        raise ConfigFileError(path, "key written twice", line=line, field=yamlpos.dotted(loc))
    try:
        return VigilConfig.model_validate(data)
    except ValidationError as exc:
        raise yamlpos.validation_error(
            path, root, exc, error=ConfigFileError, unknown="unknown field"
        ) from None
