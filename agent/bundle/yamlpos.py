"""YAML with positions: load once keeping node marks, and map validation errors to lines."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from agent.errors import BundleError, InputError

# libyaml when present: the same nodes and marks, several times faster than pure Python.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Loc = tuple[str | int, ...]

# A model-level message that starts with a field path: "signals[1].events: not declared".
_FIELD_PREFIX = re.compile(r"^([A-Za-z_]\w*(?:\[\d+\]|\.[A-Za-z_]\w*)*): (.+)$", re.DOTALL)
_PART = re.compile(r"[A-Za-z_]\w*|\[\d+\]")
_MODEL_LEVEL = frozenset({"value_error", "assertion_error"})
_QUIET_INPUT = _MODEL_LEVEL | {"missing", "extra_forbidden"}


def load(text: str) -> tuple[Any, yaml.Node | None]:
    """The Python data of a one-document YAML text and its node tree (one parse for both)."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        data = None if root is None else loader.construct_document(root)
    finally:
        loader.dispose()
    return data, root


def line_of(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def duplicate_key(root: yaml.Node | None, loc: Loc = ()) -> tuple[int, Loc] | None:
    """Line and path of the first key written twice in one mapping (YAML keeps the last)."""
    if isinstance(root, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in root.value:
            name = str(key.value)
            if name in seen:
                return line_of(key), (*loc, name)
            seen.add(name)
            found = duplicate_key(value, (*loc, name))
            if found is not None:
                return found
    elif isinstance(root, yaml.SequenceNode):
        for index, item in enumerate(root.value):
            found = duplicate_key(item, (*loc, index))
            if found is not None:
                return found
    return None


@dataclass(frozen=True)
class Position:
    line: int | None
    found: bool  # False when `loc` goes past what the YAML holds (the line is its parent's)


def locate(root: yaml.Node | None, loc: Sequence[str | int]) -> Position:
    """1-based line of the value at `loc`; for an absent key, the line of its parent's key."""
    if root is None:
        return Position(None, False)
    node: yaml.Node = root
    line = line_of(root)
    for key in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode) and isinstance(key, str):
            for key_node, value_node in node.value:
                if key_node.value == key:
                    child = value_node
                    # Scalars may sit below their key; collections always do: point at the key.
                    line = line_of(value_node if _is_scalar(value_node) else key_node)
                    break
            else:
                return Position(line, False)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            if not 0 <= key < len(node.value):
                return Position(line, False)
            child = node.value[key]
            line = line_of(child)
        else:
            return Position(line, False)
        node = child
    return Position(line, True)


def _is_scalar(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode)


def dotted(loc: Sequence[str | int]) -> str:
    """('signals', 2, 'kind') -> 'signals[2].kind'."""
    out = ""
    for key in loc:
        if isinstance(key, int):
            out += f"[{key}]"
        else:
            out += ("." if out else "") + str(key)
    return out


def parse_dotted(text: str) -> tuple[Loc, str] | None:
    """'signals[1].events: message' -> (('signals', 1, 'events'), 'message'), else None."""
    match = _FIELD_PREFIX.match(text)
    if match is None:
        return None
    loc = tuple(
        int(part[1:-1]) if part.startswith("[") else part for part in _PART.findall(match.group(1))
    )
    return loc, match.group(2)


def _shown(value: Any) -> str | None:
    """A short rendering of an offending scalar, or None for collections and models."""
    if value is None or isinstance(value, bool | int | float | str):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return None


def validation_error(
    file: Path,
    root: yaml.Node | None,
    exc: ValidationError,
    *,
    error: type[InputError] = BundleError,
    unknown: str = "unknown field (not part of bundle format 1)",
) -> InputError:
    """The first pydantic error as an InputError naming the file, the line and the field."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc: Loc = tuple(first["loc"])
    kind = str(first["type"])
    message = str(first["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if kind in _MODEL_LEVEL and (parsed := parse_dotted(message)):
        loc, message = (*loc, *parsed[0]), parsed[1]
    position = locate(root, loc)
    if kind == "missing":
        message = "required field is missing"
    elif kind == "extra_forbidden":
        message = unknown
    elif kind not in _QUIET_INPUT and (shown := _shown(first.get("input"))) is not None:
        message += f" (got {shown})"
    if len(errors) > 1:
        more = len(errors) - 1
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return error(file, message, line=position.line, field=dotted(loc) or None)
