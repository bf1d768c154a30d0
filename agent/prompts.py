"""Prompt templates: one Jinja2 environment over `prompts/`, StrictUndefined, pure rendering."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"


@cache
def environment(folder: Path = PROMPTS_DIR) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(name: str, **values: Any) -> str:
    """Render `prompts/<name>`; a missing value is an error, never an empty string."""
    return environment().get_template(name).render(**values)
