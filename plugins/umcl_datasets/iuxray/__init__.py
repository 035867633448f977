"""The ``iuxray`` dataset: Indiana University chest X-rays from Open-i, with reports and MeSH labels.

One row per image a report lists; the text is the report's FINDINGS and IMPRESSION, the labels come
from its MeSH terms. There is no official split, so reports are split with a seed.
"""

from __future__ import annotations

from pathlib import Path

from umcl_cli.contracts import DatasetPlugin

from .build import build
from .options import IUXrayOptions

__all__ = ["IUXrayDataset", "IUXrayOptions"]


class IUXrayDataset(DatasetPlugin[IUXrayOptions]):
    name = "iuxray"
    summary = "IU X-ray (Open-i): frontal and lateral images with findings/impression and MeSH labels"
    Options = IUXrayOptions

    def prepare(self, options: IUXrayOptions, out: Path) -> list[Path]:
        return [build(options, out)]
