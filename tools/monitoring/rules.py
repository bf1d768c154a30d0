"""A Prometheus rule file, typed: its groups, recording rules and alerting rules."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.errors import InputError


class AlertRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    alert: str
    expr: str
    for_: str | None = Field(None, alias="for")  # a Prometheus duration, e.g. "5m"
    keep_firing_for: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class RecordingRule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    record: str
    expr: str
    labels: dict[str, str] = Field(default_factory=dict)


class RuleGroup(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    interval: str | None = None
    limit: int | None = None
    rules: tuple[AlertRule | RecordingRule, ...]


class RuleFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    groups: tuple[RuleGroup, ...]

    @property
    def alerts(self) -> list[AlertRule]:
        return [r for g in self.groups for r in g.rules if isinstance(r, AlertRule)]

    @property
    def records(self) -> list[RecordingRule]:
        return [r for g in self.groups for r in g.rules if isinstance(r, RecordingRule)]


def load_rule_file(path: Path) -> RuleFile:
    """Read a rule file; a malformed one raises `InputError` naming the file and field."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(path, f"cannot read the rule file: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise InputError(path, f"not valid YAML: {exc}") from None
    try:
        return RuleFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in err["loc"])
        raise InputError(path, err["msg"], field=field or None) from None
