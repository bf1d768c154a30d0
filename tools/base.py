"""Typed tools: pydantic input and output, JSON schema derived, one choke point for calls.

A tool is a function `(ToolContext, Input) -> Output` registered with `@tool`. Its docstring
is the description the model sees; its input model gives the JSON schema (never written by
hand). `Toolbox.call` validates arguments, runs the tool, turns every failure into an error
result the model can read (never a crash), redacts secrets and truncates to a budget.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from agent.errors import VigilError

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)

DEFAULT_BUDGET = 12_000  # characters of one tool result shown to the model


class ToolFailure(VigilError):
    """A tool could not do what was asked; the message is shown to the model."""


@dataclass(frozen=True)
class Tool(Generic[In, Out]):
    name: str
    description: str
    input_model: type[In]
    output_model: type[Out]
    fn: Callable[[Any, In], Out]
    acts: bool  # changes something outside Vigil (goes through the guard)

    def definition(self) -> dict[str, Any]:
        """The tool as the Anthropic Messages API expects it."""
        schema = self.input_model.model_json_schema()
        schema.pop("title", None)
        return {"name": self.name, "description": self.description, "input_schema": schema}


def tool(name: str, *, acts: bool = False) -> Callable[[Callable[[Any, In], Out]], Tool[In, Out]]:
    """Register a function `(ctx, args: Input) -> Output` as a tool named `name`."""

    def wrap(fn: Callable[[Any, In], Out]) -> Tool[In, Out]:
        hints = inspect.get_annotations(fn, eval_str=True)
        params = [p for p in inspect.signature(fn).parameters if p != "return"]
        input_model = hints[params[1]]
        output_model = hints["return"]
        description = inspect.cleandoc(fn.__doc__ or "").strip()
        if not description:
            raise TypeError(f"tool {name} needs a docstring: it is the model's description")
        return Tool(name, description, input_model, output_model, fn, acts)

    return wrap


class ToolResult(BaseModel):
    """What one tool call returned, as the model will see it."""

    tool: str
    ok: bool
    content: str
    truncated: bool = False
    redactions: int = 0


def _validation_message(name: str, exc: ValidationError) -> str:
    problems = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "(arguments)"
        problems.append(f"{where}: {err['msg']}")
    return f"invalid arguments for {name}: " + "; ".join(problems)


def truncate(text: str, budget: int) -> tuple[str, bool]:
    if len(text) <= budget:
        return text, False
    note = f"\n[truncated: showing {budget} of {len(text)} characters; narrow the request]"
    return text[:budget] + note, True


class Toolbox:
    """The tools one agent run may use, bound to one context."""

    def __init__(
        self,
        tools: Iterable[Tool[Any, Any]],
        context: Any,
        *,
        budget: int = DEFAULT_BUDGET,
        redact: Callable[[str], tuple[str, int]] | None = None,
    ) -> None:
        self.tools = {t.name: t for t in tools}
        self.context = context
        self.budget = budget
        self._redact = redact

    def definitions(self) -> list[dict[str, Any]]:
        return [t.definition() for t in self.tools.values()]

    def _finish(self, name: str, ok: bool, text: str) -> ToolResult:
        count = 0
        if self._redact is not None:
            text, count = self._redact(text)
        text, cut = truncate(text, self.budget)
        return ToolResult(tool=name, ok=ok, content=text, truncated=cut, redactions=count)

    def call(self, name: str, arguments: Any) -> ToolResult:
        """Run one tool call from the model. Never raises for anything the model sent."""
        spec = self.tools.get(name)
        if spec is None:
            known = ", ".join(sorted(self.tools))
            return self._finish(name, False, f"unknown tool {name!r}; available: {known}")
        if not isinstance(arguments, dict):
            return self._finish(name, False, f"arguments for {name} must be a JSON object")
        unknown = sorted(set(arguments) - set(spec.input_model.model_fields))
        if unknown:
            accepted = ", ".join(spec.input_model.model_fields) or "none"
            why = f"unknown argument(s) {', '.join(map(repr, unknown))} for {name}"
            if spec.acts:
                why += f"; it acts only on the incident's service ({self.context.incident.service})"
            return self._finish(name, False, f"{why}; accepted: {accepted}")
        try:
            args = spec.input_model.model_validate(arguments)
        except ValidationError as exc:
            return self._finish(name, False, _validation_message(name, exc))
        try:
            out = spec.fn(self.context, args)
        except (ToolFailure, VigilError) as exc:
            return self._finish(name, False, f"{name} failed: {exc}")
        except Exception as exc:  # a broken backend must not crash the investigation
            return self._finish(name, False, f"{name} failed: {type(exc).__name__}: {exc}")
        text = json.dumps(out.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":"))
        return self._finish(name, True, text)
