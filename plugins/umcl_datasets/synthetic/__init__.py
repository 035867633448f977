"""The ``synthetic`` dataset: generated chest radiographs, reports and CheXpert labels.

No download and no source files: a seed fully determines the data. It is the dataset tests, the
demo and ablations run on, and it is hard in the ways real data is (co-occurring findings,
uncertain and unmentioned labels, label-only rows, held-out phrasings for zero-shot).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from umcl_cli.data.plugin import DatasetPlugin, PrepareOptions

from .build import build_five_by_200, build_main
from .images import render_images
from .labels import Findings, sample_findings
from .reports import HELD_OUT_PHRASES, TRAINING_PHRASES, write_reports

__all__ = [
    "HELD_OUT_PHRASES",
    "TRAINING_PHRASES",
    "Findings",
    "SyntheticDataset",
    "SyntheticOptions",
    "render_images",
    "sample_findings",
    "write_reports",
]


class SyntheticOptions(PrepareOptions):
    n: int = Field(3000, ge=50, le=1_000_000, description="Rows in the main dataset (at least 50).")
    seed: int = Field(0, ge=0, description="Random seed; the same options give byte-identical output.")
    size: int = Field(64, ge=16, le=512, description="Image side in pixels (16-512).")
    label_only_fraction: float = Field(
        0.4,
        ge=0.0,
        le=0.95,
        description="Fraction of train rows that keep labels but have no report (the label-only subset).",
    )
    per_class: int = Field(
        100, ge=1, le=10_000, description="Images per competition class in the 5x200-style test set."
    )
    label_sets: int | None = Field(
        None,
        ge=1,
        description="If set, restrict the main dataset to this many distinct label vectors (ablation).",
    )
    validate_fraction: float = Field(
        0.1, ge=0.0, lt=1.0, description="Fraction of rows (by patient) to validate."
    )
    test_fraction: float = Field(0.2, ge=0.0, lt=1.0, description="Fraction of rows (by patient) to test.")

    @model_validator(mode="after")
    def _train_keeps_rows(self) -> SyntheticOptions:
        if self.validate_fraction + self.test_fraction > 0.8:
            raise ValueError(
                f"validate_fraction + test_fraction = {self.validate_fraction + self.test_fraction:g} "
                "leaves too little for train; keep the sum at 0.8 or below"
            )
        return self


class SyntheticDataset(DatasetPlugin):
    name = "synthetic"
    summary = "Generated chest X-rays with reports and CheXpert labels, plus a 5x200-style test set"
    Options = SyntheticOptions

    def prepare(self, options: PrepareOptions, out: Path) -> list[Path]:
        """Write the main dataset to ``out`` and the 5x200-style set to ``out/5x200``."""
        opts = SyntheticOptions.model_validate(options.model_dump())
        out = Path(out)
        main = build_main(
            out,
            n=opts.n,
            seed=opts.seed,
            size=opts.size,
            label_only_fraction=opts.label_only_fraction,
            label_sets=opts.label_sets,
            validate_fraction=opts.validate_fraction,
            test_fraction=opts.test_fraction,
            options=opts.model_dump(),
        )
        five = build_five_by_200(
            out / "5x200", per_class=opts.per_class, seed=opts.seed, size=opts.size, options=opts.model_dump()
        )
        return [main, five]
