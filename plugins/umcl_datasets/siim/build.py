"""Writing the SIIM-ACR manifest: mask rows collapsed to one row per ImageId."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from umcl_cli.contracts import write_prepared
from umcl_datasets.common.checks import check_columns, decide_missing, read_header, require_files
from umcl_datasets.common.locate import resolve_root
from umcl_datasets.common.split import group_split
from umcl_datasets.dicom import reader_note
from umcl_datasets.public import HeldOutOptions, absolute, run_info

NAME = "siim"
DOWNLOAD = "the SIIM-ACR Pneumothorax Segmentation data (Kaggle siim-acr-pneumothorax-segmentation)"
MASKS, IMAGES = "train-rle.csv", "dicom-images-train"
# The file says " EncodedPixels" (leading space); names are compared without surrounding spaces.
COLUMNS = ("ImageId", "EncodedPixels")
EMPTY_MASK = "-1"


def build(options: HeldOutOptions, out: Path) -> Path:
    root = resolve_root(NAME, options.root, f"the SIIM-ACR folder (holding {MASKS} and {IMAGES}/)")
    require_files(root, [MASKS, IMAGES], DOWNLOAD)
    images = (
        read_masks(root / MASKS)
        .group_by("ImageId", maintain_order=True)
        .agg(pl.col("positive").any().cast(pl.Float32).alias("Pneumothorax"), pl.col("positive").sum().alias("masks"))
    )
    index = index_dicoms(root / IMAGES)
    images = images.with_columns(rel=pl.col("ImageId").replace_strict(index, default=None, return_dtype=pl.String))
    shown = images.select(pl.coalesce("rel", f"{IMAGES}/<Study>/<Series>/" + pl.col("ImageId") + ".dcm")).to_series()
    keep = decide_missing(shown, images["rel"].is_not_null().to_numpy(), options.on_missing, root, DOWNLOAD)
    images = images.with_columns(split=group_split(images["ImageId"], options.fractions(), options.seed))
    frame = images.filter(pl.Series(keep)).select(
        absolute(root, pl.col("rel")),
        pl.lit(None, pl.String).alias("text"),
        "split",
        pl.lit(None, pl.String).alias("subject_id"),
        pl.col("rel").str.split("/").list.get(1).alias("study_id"),
        pl.lit(None, pl.String).alias("view"),
        pl.lit(NAME).alias("source"),
        "Pneumothorax",
    )
    info = {
        "name": NAME,
        "version": "train",
        "classes": ["Pneumothorax"],
        "task": "binary",
        "eval_classes": ["Pneumothorax"],
        "uncertain_policy": "none: Pneumothorax is 1 when any mask of the image is non-empty, else 0",
        "source": DOWNLOAD,
        "images": reader_note(),
        "subject_id": "not recorded (PatientID is in the DICOM header, which prepare does not read)",
        "view": "not recorded (it is in the DICOM header)",
        "masks": int(images["masks"].sum()),
        "dicoms_without_labels": len(index) - int(images["rel"].is_not_null().sum()),
        "missing_images_skipped": int((~keep).sum()),
        "split_policy": "seeded by ImageId (the DICOM folders give one study per image)",
        **run_info(options, root),
    }
    return write_prepared(out, frame, info)


def read_masks(path: Path) -> pl.DataFrame:
    """``ImageId`` and ``positive`` (the mask is not ``-1``), one row per mask as in the file."""
    header = [name.strip() for name in read_header(path)]
    check_columns(header, COLUMNS, str(path), f"use the original {path.name} from {DOWNLOAD}")
    masks = pl.read_csv(path, infer_schema=False, new_columns=header)
    return masks.select(
        pl.col("ImageId").str.strip_chars(),
        (pl.col("EncodedPixels").str.strip_chars() != EMPTY_MASK).alias("positive"),
    )


def index_dicoms(folder: Path) -> dict[str, str]:
    """ImageId → ``dicom-images-train/<Study>/<Series>/<ImageId>.dcm``, walking the tree once."""
    index: dict[str, str] = {}
    for dirpath, _, files in os.walk(folder):
        prefix = Path(dirpath).relative_to(folder.parent).as_posix()
        for name in files:
            if name.endswith(".dcm"):
                index.setdefault(name[: -len(".dcm")], f"{prefix}/{name}")
    return index
