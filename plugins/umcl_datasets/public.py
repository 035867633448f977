"""Options and dataset.json fields shared by the public-dataset plugins.

chestxray14, iuxray, rsna, siim and covidx all read a download from a root folder, decide what to do
about missing images and draw a seeded split; they record the same facts about each run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, Field, model_validator

from umcl_cli.contracts import PrepareOptions
from umcl_datasets.common.checks import OnMissing
from umcl_datasets.common.split import group_split


class PublicOptions(PrepareOptions):
    root: Path | None = Field(
        None,
        description="Folder holding the download (default: $UMCL_<NAME>_ROOT, "
        "then the NAME entry of ~/.config/umcl/datasets.yaml).",
    )
    on_missing: OnMissing = Field(
        "error",
        description="When a listed image file is absent: 'error' stops and names it, "
        "'skip' drops the row and counts it in dataset.json.",
    )
    seed: int = Field(0, ge=0, description="Seed of the split; the same seed and files give the same split.")


class HeldOutOptions(PublicOptions):
    """For datasets without an official split: validate and test are drawn by group."""

    validate_fraction: float = Field(
        0.1,
        ge=0.0,
        lt=1.0,
        description="Fraction of patients (reports or images where no patient id exists) to validate.",
    )
    test_fraction: float = Field(
        0.2, ge=0.0, lt=1.0, description="Fraction of patients (reports or images where no patient id exists) to test."
    )

    @model_validator(mode="after")
    def _train_keeps_rows(self) -> HeldOutOptions:
        total = self.validate_fraction + self.test_fraction
        if total > 0.8:
            raise ValueError(
                f"validate_fraction + test_fraction = {total:g} leaves too little for train; keep it <= 0.8"
            )
        return self

    def fractions(self) -> dict[str, float]:
        return {"test": self.test_fraction, "validate": self.validate_fraction}


def absolute(root: Path, rel_path: pl.Expr) -> pl.Expr:
    """The ``image_path`` column ``root/rel``: ``root`` is already resolved, so the result is absolute."""
    return (pl.lit(str(root) + "/") + rel_path).alias("image_path")


def run_info(options: BaseModel, root: Path, **fields: Any) -> dict[str, Any]:
    """dataset.json fields every public plugin writes: every option with its effective value."""
    return {"root": str(root), **fields, "options": {**options.model_dump(mode="json"), "root": str(root)}}


def carve_validate(split: pl.Series, groups: pl.Series, fraction: float, seed: int) -> pl.Series:
    """Move whole groups of the ``train`` rows to ``validate``; other splits are left as published."""
    values = split.to_numpy().copy()
    train = values == "train"
    values[train] = group_split(groups.filter(pl.Series(train)), {"validate": fraction}, seed).to_numpy()
    return pl.Series("split", values, dtype=pl.String)
