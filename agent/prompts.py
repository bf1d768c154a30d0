"""Prompt templates: one Jinja2 environment over `prompts/`, StrictUndefined, pure rendering.

Text gathered from the systems under investigation goes through the `untrusted` filter: its
secrets are redacted and every tag that could open or close an `<untrusted>` block is altered,
so data can never end the block it sits in and pose as instructions.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from agent.redact import redact

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"

# `<untrusted`, `</untrusted`, `< / UNTRUSTED` ...; not `untrusted_` (already altered).
_TAG = re.compile(r"<(\s*/?\s*)untrusted\b", re.IGNORECASE)
_SOURCE = re.compile(r"[^\w .:/#-]")


def defuse(text: str) -> str:
    """Alter every `<untrusted>`-like tag so that data cannot open or close a data block."""
    return _TAG.sub(lambda m: f"<{m.group(1)}untrusted_", text)


def untrusted(value: object, source: str) -> str:
    """`value` as a data block: secrets redacted, block tags defused, the source named."""
    body = defuse(redact(str(value))) or "(none)"
    label = _SOURCE.sub("", str(source))[:80]  # str() of an undefined source raises
    return f'<untrusted source="{label}">\n{body}\n</untrusted>'


def number(value: float | int | None) -> str:
    """A measured number for a table: six significant digits, '—' when there is none."""
    if value is None:
        return "—"
    if isinstance(value, int):  # bool is an int too
        return str(value)
    return f"{value:.6g}"


def pretty_json(value: Any) -> str:
    """JSON for a prompt (Jinja's `tojson` escapes `<>&` for HTML, which models misread)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@cache
def environment(folder: Path = PROMPTS_DIR) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # Markdown and plain text, never HTML
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["untrusted"] = untrusted
    env.filters["number"] = number
    env.filters["pretty_json"] = pretty_json
    return env


def templates() -> list[str]:
    """Every prompt template (partials excluded), by name as `render` takes it."""
    return sorted(
        environment().list_templates(
            filter_func=lambda name: name.endswith(".j2") and not name.startswith("partials/")
        )
    )


def render(name: str, **values: Any) -> str:
    """Render `prompts/<name>`; a missing value is an error, never an empty string."""
    return environment().get_template(name).render(**values)
