"""Options of ``umcl prepare csv``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from umcl_cli.contracts import PrepareOptions

from ..common.checks import OnMissing


class CsvOptions(PrepareOptions):
    file: Path = Field(..., description="The table: .csv, .tsv (optionally .gz) or .parquet.")
    image_column: str = Field(..., description="Column of image paths, relative to --root.")
    root: Path | None = Field(None, description="Folder the image paths are relative to (default: the table's folder).")
    text_column: str | None = Field(None, description="Column of report text (optional).")
    label_columns: str | None = Field(None, description="Comma-separated label columns (values 1 / 0 / -1 / blank).")
    label_map: str | None = Field(
        None, description="Non-canonical label names: 'Effusion=Pleural Effusion,Nodule/Mass=Nodule'."
    )
    split_column: str | None = Field(None, description="Column of train / validate / test (else a seeded split).")
    subject_column: str | None = Field(None, description="Patient column: the seeded split keeps patients together.")
    validate_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="Seeded split: fraction to validate.")
    test_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="Seeded split: fraction to test.")
    seed: int = Field(0, ge=0, description="Seed of the split.")
    task: Literal["multilabel", "multiclass", "binary"] = Field(
        "multilabel", description="Evaluation task: multilabel, multiclass (one 1 per row), binary (one label)."
    )
    name: str = Field("csv", min_length=1, description="Dataset name recorded in dataset.json.")
    on_missing: OnMissing = Field("error", description="Images listed but absent on disk: error, or skip them.")

    @model_validator(mode="after")
    def _fractions(self) -> CsvOptions:
        if self.validate_fraction + self.test_fraction >= 1:
            raise ValueError("validate_fraction + test_fraction must stay below 1 so train keeps rows")
        return self

    def labels(self) -> list[str]:
        return [c.strip() for c in (self.label_columns or "").split(",") if c.strip()]
