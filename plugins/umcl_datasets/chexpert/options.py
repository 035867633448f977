"""Options of ``umcl prepare chexpert`` and ``umcl prepare chexpert-5x200``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from umcl_cli.contracts import PrepareOptions

from ..common.checks import OnMissing
from .policy import Policy

# Both plugins read the same download, so both look it up as 'chexpert' ($UMCL_CHEXPERT_ROOT).
_ROOT = (
    "Folder that CONTAINS CheXpert-v1.0-small (or CheXpert-v1.0); default $UMCL_CHEXPERT_ROOT, "
    "then 'chexpert' in ~/.config/umcl/datasets.yaml"
)


class CommonOptions(PrepareOptions):
    """Options both CheXpert plugins take."""

    root: Path | None = Field(None, description=_ROOT)
    folder: str | None = Field(
        None, description="CheXpert-v1.0 or CheXpert-v1.0-small; needed only when --root holds both."
    )
    on_missing: OnMissing = Field("error", description="Images listed but absent on disk: error, or skip them.")


class ChexpertOptions(CommonOptions):
    uncertain: Policy = Field(
        "ignore", description="Uncertain (-1) labels: ignore (keep -1), ones, zeros, or gloria (per class)."
    )
    validate_fraction: float = Field(
        0.05, ge=0.0, lt=1.0, description="Fraction of train.csv patients moved to the validate split."
    )
    seed: int = Field(0, ge=0, description="Seed of the validate-split draw.")
    frontal_only: bool = Field(False, description="Keep frontal images only (recorded in dataset.json).")
    exclude_5x200: Path | None = Field(
        None, description="A prepared chexpert-5x200 directory whose images are removed from this manifest."
    )


class Chexpert5x200Options(CommonOptions):
    per_class: int = Field(200, ge=1, le=10_000, description="Images drawn per competition class.")
    seed: int = Field(0, ge=0, description="Seed of the draw (GLoRIA's was unseeded and never released).")
    draws: int = Field(
        1, ge=1, le=100, description="Independent draws (seeds SEED, SEED+1, ...); zeroshot reports mean ± std."
    )
