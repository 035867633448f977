"""Options of ``umcl prepare mimic``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from umcl_cli.contracts import PrepareOptions

from ..common.checks import OnMissing


class MimicOptions(PrepareOptions):
    root: Path | None = Field(
        None,
        description="MIMIC-CXR-JPG folder (holding files/ and mimic-cxr-2.0.0-*.csv.gz); "
        "default $UMCL_MIMIC_ROOT, then 'mimic' in ~/.config/umcl/datasets.yaml",
    )
    reports: Path | None = Field(
        None,
        description="mimic-cxr-reports: the unzipped folder (holding files/) or the zip itself; "
        "default: reports unzipped into --root",
    )
    labeler: Literal["chexpert", "negbio"] = Field("chexpert", description="Which label file: chexpert or negbio.")
    views: str = Field("all", description="ViewPosition values to keep, comma-separated (e.g. PA,AP), or all.")
    section: Literal["findings", "impression", "both", "last_paragraph"] = Field(
        "both", description="Report text in the text column: findings, impression, both, or last_paragraph."
    )
    phi: Literal["keep", "strip"] = Field("keep", description="keep or strip the ___ marks that replaced PHI.")
    on_missing: OnMissing = Field("error", description="Images listed but absent on disk: error, or skip them.")
    workers: int = Field(2, ge=1, le=64, description="Worker processes reading and parsing the reports.")

    @field_validator("views")
    @classmethod
    def _views(cls, value: str) -> str:
        if not [v for v in value.split(",") if v.strip()]:
            raise ValueError("give at least one view (e.g. PA,AP) or all")
        return value

    def view_list(self) -> list[str] | None:
        """The views to keep, or None for all."""
        names = [v.strip() for v in self.views.split(",") if v.strip()]
        return None if [n.lower() for n in names] == ["all"] else names
