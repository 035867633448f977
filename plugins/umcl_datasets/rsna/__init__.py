"""The ``rsna`` dataset: RSNA Pneumonia Detection Challenge (stage 2 train), DICOM images.

One row per patientId with a binary Pneumonia label (1 when any box marks lung opacity). The
challenge's test labels were never released, so validate and test are drawn from train with a seed.
"""

from __future__ import annotations

from pathlib import Path

from umcl_cli.contracts import DatasetPlugin
from umcl_datasets.public import HeldOutOptions

from .build import build

__all__ = ["RSNADataset"]


class RSNADataset(DatasetPlugin[HeldOutOptions]):
    name = "rsna"
    summary = "RSNA Pneumonia Detection (stage 2 train): DICOM images, binary Pneumonia label"
    Options = HeldOutOptions

    def prepare(self, options: HeldOutOptions, out: Path) -> list[Path]:
        return [build(options, out)]
