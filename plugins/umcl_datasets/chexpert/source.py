"""What both CheXpert plugins share: finding the download and checking the images a manifest lists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from ..common.checks import check_images
from ..common.locate import resolve_root
from .options import CommonOptions
from .tables import DOWNLOAD, dataset_folder

WHAT = "the folder that contains CheXpert-v1.0-small or CheXpert-v1.0"
SOURCE = "chexpert"


def locate(opts: CommonOptions) -> tuple[Path, str]:
    """``(root, dataset folder name)`` from ``--root`` / ``$UMCL_CHEXPERT_ROOT`` / the user config."""
    return dataset_folder(resolve_root("chexpert", opts.root, WHAT), opts.folder)


def existing(root: Path, table: pl.DataFrame, opts: CommonOptions) -> np.ndarray:
    """Mask of rows whose image is on disk; missing ones raise or are skipped per ``--on-missing``."""
    return check_images(root, table["Path"], opts.on_missing, DOWNLOAD)


def manifest_columns(root: Path, classes: list[str]) -> list[pl.Expr]:
    """The manifest's columns from a CheXpert table (absolute image paths; no report text exists)."""
    return [
        pl.concat_str(pl.lit(f"{root}/"), pl.col("Path")).alias("image_path"),
        pl.lit(None, dtype=pl.String).alias("text"),
        "split",
        "subject_id",
        "study_id",
        "view",
        pl.lit(SOURCE).alias("source"),
        pl.col("Path").alias("csv_path"),
        "Sex",
        "Age",
        "Frontal/Lateral",
        "AP/PA",
        *classes,
    ]
