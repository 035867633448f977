"""Typer options that several commands share, defined once so their names and help never drift."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Ckpt = Annotated[Path, typer.Option("--ckpt", help="model.pt written by `umcl pretrain`")]
Bootstrap = Annotated[int, typer.Option("--bootstrap", min=0, help="bootstrap resamples for 95% CIs (0 = off)")]
BootstrapSeed = Annotated[int, typer.Option("--bootstrap-seed", help="seed of the bootstrap resamples")]
BootstrapUnit = Annotated[
    str,
    typer.Option("--bootstrap-unit", help="auto (patient, else study, else image) | patient | study | image"),
]
DataRoot = Annotated[
    str | None, typer.Option("--data-root", help="where dataset names resolve (default: $UMCL_DATA or ./data)")
]
CacheDir = Annotated[Path | None, typer.Option("--cache-dir", help="image feature cache (default: beside the ckpt)")]
