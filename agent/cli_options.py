"""Options several `vigil` commands share, declared once, and how their times are read."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

ConfigOption = Annotated[
    Path | None, typer.Option(help="vigil.yaml (default $VIGIL_CONFIG or ./vigil.yaml).")
]
VersionOption = Annotated[str, typer.Option(help="Live: the deployed version.")]
PreviousVersionOption = Annotated[str | None, typer.Option(help="Live: the version before it.")]
DeployIdOption = Annotated[str | None, typer.Option(help="Live: the deploy's id.")]


def parse_moment(text: str, start: float) -> float:
    """A look time: RFC 3339, Unix seconds, or `+90s`/`+5m` after the deploy start."""
    from agent.bundle.model import parse_duration

    text = text.strip()
    try:
        if text.startswith("+"):
            return start + parse_duration(text[1:])
        try:
            return float(text)
        except ValueError:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                raise ValueError("time needs a timezone, e.g. 2026-02-08T13:50:00Z") from None
            return moment.timestamp()
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r}: {exc}") from None
