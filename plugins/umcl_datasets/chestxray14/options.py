"""Options of ``umcl prepare chestxray14``."""

from __future__ import annotations

from pydantic import Field

from umcl_datasets.public import PublicOptions


class ChestXray14Options(PublicOptions):
    validate_fraction: float = Field(
        0.1,
        ge=0.0,
        le=0.5,
        description="Fraction of the train_val_list.txt patients moved to validate (seeded by --seed); "
        "test_list.txt is the test split as published.",
    )
