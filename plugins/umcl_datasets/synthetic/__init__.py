"""The ``synthetic`` dataset: generated chest radiographs, reports and CheXpert labels.

No download and no source files: a seed fully determines the data. It is the dataset tests, the
demo and ablations run on, and it is hard in the ways real data is (co-occurring findings,
uncertain and unmentioned labels, label-only rows, held-out phrasings for zero-shot).
"""

from __future__ import annotations

from pathlib import Path

from umcl_cli.contracts import DatasetPlugin

from .build import build_five_by_200, build_main
from .images import render_images
from .labels import Findings, sample_findings
from .options import SyntheticOptions
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


class SyntheticDataset(DatasetPlugin[SyntheticOptions]):
    name = "synthetic"
    summary = "Generated chest X-rays with reports and CheXpert labels, plus a 5x200-style test set"
    Options = SyntheticOptions

    def prepare(self, opts: SyntheticOptions, out: Path) -> list[Path]:
        """Write the main dataset to ``out`` and the 5x200-style set to ``out/5x200``."""
        out = Path(out)
        return [build_main(out, opts), build_five_by_200(out / "5x200", opts)]
