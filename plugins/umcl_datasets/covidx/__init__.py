"""The ``covidx`` dataset: COVIDx CXR, a COVID-19 benchmark assembled from several public sources.

Labels normal / pneumonia / COVID-19 (multiclass), or positive / negative in the binary releases.
The published train and test lists are kept; validate is drawn from train by patient.
"""

from __future__ import annotations

from pathlib import Path

from umcl_cli.contracts import DatasetPlugin

from .build import build
from .options import COVIDxOptions

__all__ = ["COVIDxDataset", "COVIDxOptions"]


class COVIDxDataset(DatasetPlugin[COVIDxOptions]):
    name = "covidx"
    summary = "COVIDx CXR: No Finding / Pneumonia / COVID-19 (or binary COVID-19), published test list"
    Options = COVIDxOptions

    def prepare(self, options: COVIDxOptions, out: Path) -> list[Path]:
        return [build(options, out)]
