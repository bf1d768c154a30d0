"""Vigil's one error tree.

    VigilError
    ├── InputError             an input file is malformed (names file, line, field)
    │   ├── BundleError        ... a deploy bundle's
    │   ├── ConfigFileError    ... vigil.yaml
    │   └── RunbookError       ... a runbook's (agent.runbooks)
    ├── ConfigError            settings or configuration are invalid
    ├── SourceUnavailable      a backend could not answer: not configured, unreachable, no
    │                          such data (agent.backends.base)
    ├── ToolFailure            a tool could not do what it was asked (tools.base)
    ├── ModelUnavailable       the model API kept failing or is not configured (agent.llm)
    ├── RunbookRejected        a model-written runbook failed its checks (agent.runbook_generate)
    ├── IncidentNotFound       no such incident in the store (agent.timeline)
    └── WebhookRejected        a webhook the server answers 4xx, with its reason
                               (agent.server.deploy_events)

Every error that reaches the CLI is one of these; the CLI prints it and exits with code 2.
"""

from __future__ import annotations

from pathlib import Path


class VigilError(Exception):
    """Base of every error Vigil raises on purpose."""


class InputError(VigilError):
    """An input file could not be read: the message names the file, line and field."""

    def __init__(
        self,
        path: Path | str,
        message: str,
        *,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.line = line
        self.field = field
        self.reason = message
        where = str(self.path)
        if line is not None:
            where += f":{line}"
        what = f" field '{field}':" if field else ""
        super().__init__(f"{where}:{what} {message}")

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only fields: the default pickling would lose them (and fail in worker pools).
        return (_rebuild_input_error, (type(self), self.path, self.reason, self.line, self.field))


class BundleError(InputError):
    """A deploy bundle could not be read: the message names the file, line and field."""


class ConfigFileError(InputError):
    """`vigil.yaml` could not be read: the message names the file, line and field."""


def _rebuild_input_error(
    cls: type[InputError], path: Path, message: str, line: int | None, field: str | None
) -> InputError:
    return cls(path, message, line=line, field=field)


class ConfigError(VigilError):
    """Settings or configuration are invalid."""
