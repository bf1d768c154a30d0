"""Options several `vigil` commands share, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigOption = Annotated[
    Path | None, typer.Option(help="vigil.yaml (default $VIGIL_CONFIG or ./vigil.yaml).")
]
VersionOption = Annotated[str, typer.Option(help="Live: the deployed version.")]
PreviousVersionOption = Annotated[str | None, typer.Option(help="Live: the version before it.")]
DeployIdOption = Annotated[str | None, typer.Option(help="Live: the deploy's id.")]
