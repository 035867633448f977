"""Options of ``umcl prepare synthetic``, validated so bad values fail with a message naming the field."""

from __future__ import annotations

from pydantic import Field, model_validator

from umcl_cli.contracts import PrepareOptions


class SyntheticOptions(PrepareOptions):
    n: int = Field(3000, ge=50, le=1_000_000, description="Rows in the main dataset (at least 50).")
    seed: int = Field(0, ge=0, description="Random seed; the same options give identical images and manifests.")
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
    validate_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="Fraction of rows (by patient) to validate.")
    test_fraction: float = Field(0.2, ge=0.0, lt=1.0, description="Fraction of rows (by patient) to test.")

    @model_validator(mode="after")
    def _train_keeps_rows(self) -> SyntheticOptions:
        if self.validate_fraction + self.test_fraction > 0.8:
            raise ValueError(
                f"validate_fraction + test_fraction = {self.validate_fraction + self.test_fraction:g} "
                "leaves too little for train; keep the sum at 0.8 or below"
            )
        return self
