"""The ``siim`` dataset: SIIM-ACR Pneumothorax Segmentation (train), DICOM images.

One row per ImageId with a binary Pneumothorax label (1 when any of its masks is non-empty). Only
the labelled train set is public, so validate and test are drawn from it with a seed.
"""

from __future__ import annotations

from pathlib import Path

from umcl_cli.contracts import DatasetPlugin
from umcl_datasets.public import HeldOutOptions

from .build import build

__all__ = ["SIIMDataset"]


class SIIMDataset(DatasetPlugin[HeldOutOptions]):
    name = "siim"
    summary = "SIIM-ACR Pneumothorax (train): DICOM images, binary Pneumothorax label from the masks"
    Options = HeldOutOptions

    def prepare(self, options: HeldOutOptions, out: Path) -> list[Path]:
        return [build(options, out)]
