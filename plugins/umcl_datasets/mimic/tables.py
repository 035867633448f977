"""The MIMIC-CXR-JPG tables: metadata (per image), split (per image) and labels (per study)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from umcl_cli.contracts import CHEXPERT_CLASSES, UsageError

from ..common.checks import EXAMPLES, check_header, require_files

DOWNLOAD = "MIMIC-CXR-JPG 2.0.0 from PhysioNet"
METADATA = "mimic-cxr-2.0.0-metadata.csv.gz"
SPLIT = "mimic-cxr-2.0.0-split.csv.gz"
LABEL_FILES = {"chexpert": "mimic-cxr-2.0.0-chexpert.csv.gz", "negbio": "mimic-cxr-2.0.0-negbio.csv.gz"}
META_COLUMNS = {
    "dicom_id": pl.String,
    "subject_id": pl.Int64,
    "study_id": pl.Int64,
    "ViewPosition": pl.String,
    "StudyDate": pl.Int64,
    "StudyTime": pl.Float64,  # hhmmss.fff as a number: leading zeros are lost (80556.875 is 08:05:56)
}
SPLIT_COLUMNS = {"dicom_id": pl.String, "split": pl.String}


def table_files(root: Path, labeler: str) -> dict[str, Path]:
    """The three tables, after checking they exist and carry the columns read from them."""
    names = {"metadata": METADATA, "split": SPLIT, "labels": LABEL_FILES[labeler]}
    paths = dict(zip(names, require_files(root, list(names.values()), DOWNLOAD), strict=True))
    check_header(paths["metadata"], list(META_COLUMNS), DOWNLOAD)
    check_header(paths["split"], list(SPLIT_COLUMNS), DOWNLOAD)
    check_header(paths["labels"], ["study_id", *CHEXPERT_CLASSES], DOWNLOAD)
    return paths


def read_metadata(path: Path, views: list[str] | None) -> tuple[pl.DataFrame, int]:
    """Images (one row each) with their relative path, keeping ``views`` only; also how many were dropped."""
    meta = pl.read_csv(path, columns=list(META_COLUMNS), schema_overrides=META_COLUMNS)
    if views is not None:
        present = set(meta["ViewPosition"].drop_nulls().unique().to_list())
        unknown = [v for v in views if v not in present]
        if unknown:
            raise UsageError(
                f"--views {','.join(unknown)} not found in {path.name} (its ViewPosition values: {sorted(present)})",
                "choose among those values, or pass --views all",
            )
        kept = meta.filter(pl.col("ViewPosition").is_in(views))
        return _with_paths(kept), meta.height - kept.height
    return _with_paths(meta), 0


def _with_paths(meta: pl.DataFrame) -> pl.DataFrame:
    subject = pl.col("subject_id").cast(pl.String)
    return meta.with_columns(
        pl.concat_str(
            pl.lit("files/p"),
            subject.str.slice(0, 2),
            pl.lit("/p"),
            subject,
            pl.lit("/s"),
            pl.col("study_id"),
            pl.lit("/"),
            pl.col("dicom_id"),
            pl.lit(".jpg"),
        ).alias("image_path")
    )


def join_split_and_labels(images: pl.DataFrame, split_path: Path, labels_path: Path) -> tuple[pl.DataFrame, int]:
    """Split per image (every image needs one) and labels per study (no row: all null); also the
    number of studies without a label row."""
    split = pl.read_csv(split_path, columns=list(SPLIT_COLUMNS), schema_overrides=SPLIT_COLUMNS)
    label_types = {"study_id": pl.Int64, **dict.fromkeys(CHEXPERT_CLASSES, pl.Float32)}
    labels = pl.read_csv(labels_path, columns=list(label_types), schema_overrides=label_types)
    frame = images.join(split, on="dicom_id", how="left", maintain_order="left")
    unsplit = frame.filter(pl.col("split").is_null())
    if unsplit.height:
        shown = ", ".join(unsplit["dicom_id"].head(EXAMPLES).to_list())
        raise UsageError(
            f"{unsplit.height} images in {METADATA} have no row in {split_path.name} (first: {shown})",
            f"use the metadata and split files of one {DOWNLOAD} download",
        )
    labelled = images["study_id"].unique().is_in(labels["study_id"].implode())
    frame = frame.join(labels.unique("study_id", keep="first"), on="study_id", how="left", maintain_order="left")
    return frame, int((~labelled).sum())
