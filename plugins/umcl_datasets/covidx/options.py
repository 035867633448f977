"""Options of ``umcl prepare covidx``."""

from __future__ import annotations

from pydantic import Field

from umcl_datasets.public import PublicOptions


class COVIDxOptions(PublicOptions):
    train_file: str | None = Field(
        None, description="Train list in the root (default: the one train_*.txt there, e.g. train_COVIDx9A.txt)."
    )
    test_file: str | None = Field(
        None, description="Test list in the root (default: the one test_*.txt there, e.g. test_COVIDx9A.txt)."
    )
    validate_fraction: float = Field(
        0.1,
        ge=0.0,
        le=0.5,
        description="Fraction of the train list's patients moved to validate (seeded by --seed); "
        "the test list is the test split as published.",
    )
