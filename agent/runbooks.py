"""Runbooks as data: Markdown with a YAML front matter the agent and the guard can read."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.errors import ConfigError

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "runbooks"


class Runbook(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    title: str
    alerts: tuple[str, ...] = ()  # alert names this runbook answers
    signals: tuple[str, ...] = ()  # signal kinds it is about (errors, latency, ...)
    allows_pause: bool = False  # a confident agent may pause the rollout below tier 2
    body: str = Field("", exclude=True)


def parse_runbook(path: Path) -> Runbook:
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        raise ConfigError(f"{path}:1: a runbook starts with a '---' YAML front matter")
    head, sep, body = text[4:].partition("\n---\n")
    if not sep:
        raise ConfigError(f"{path}: the front matter has no closing '---'")
    try:
        meta = yaml.safe_load(head) or {}
        return Runbook.model_validate({**meta, "body": body.strip()})
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: front matter is not valid YAML: {exc}") from None
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{path}: front matter field '{field}': {err['msg']}") from None


class RunbookLibrary:
    def __init__(self, runbooks: list[Runbook]) -> None:
        self.runbooks = {r.name: r for r in runbooks}

    @classmethod
    def load(cls, folder: Path = DEFAULT_DIR) -> RunbookLibrary:
        if not folder.is_dir():
            return cls([])
        return cls([parse_runbook(p) for p in sorted(folder.glob("*.md"))])

    def get(self, name: str) -> Runbook | None:
        return self.runbooks.get(name)

    def match(self, alertname: str | None, kinds: tuple[str, ...] = ()) -> list[Runbook]:
        """Runbooks for an alert name first, then those about the regressed signal kinds."""
        by_alert = [r for r in self.runbooks.values() if alertname and alertname in r.alerts]
        by_kind = [
            r
            for r in self.runbooks.values()
            if r not in by_alert and any(k in r.signals for k in kinds)
        ]
        return by_alert + by_kind
