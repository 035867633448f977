"""The ``chestxray14`` dataset: NIH ChestX-ray14, 112,120 frontal images with 14 mined findings.

Label-only (no reports): each image has 1/0 for No Finding and the 14 findings, mapped to the
canonical names (Effusion → Pleural Effusion, Pleural_Thickening → Pleural Thickening).
"""

from __future__ import annotations

from pathlib import Path

from umcl_cli.contracts import DatasetPlugin

from .build import build
from .options import ChestXray14Options

__all__ = ["ChestXray14Dataset", "ChestXray14Options"]


class ChestXray14Dataset(DatasetPlugin[ChestXray14Options]):
    name = "chestxray14"
    summary = "NIH ChestX-ray14: frontal images with 14 findings, the official test list, no reports"
    Options = ChestXray14Options

    def prepare(self, options: ChestXray14Options, out: Path) -> list[Path]:
        return [build(options, out)]
