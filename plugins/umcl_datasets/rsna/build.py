"""Writing the RSNA Pneumonia manifest: box rows collapsed to one row per patientId."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from umcl_cli.contracts import UsageError, write_prepared
from umcl_datasets.common.checks import check_header, check_images, refuse_escaping, require_files
from umcl_datasets.common.locate import resolve_root
from umcl_datasets.common.split import group_split
from umcl_datasets.dicom import reader_note
from umcl_datasets.public import HeldOutOptions, absolute, run_info

NAME = "rsna"
DOWNLOAD = "the Kaggle RSNA Pneumonia Detection Challenge (rsna-pneumonia-detection-challenge)"
LABELS, DETAILS, IMAGES = "stage_2_train_labels.csv", "stage_2_detailed_class_info.csv", "stage_2_train_images"
LABEL_COLUMNS = ("patientId", "x", "y", "width", "height", "Target")


def build(options: HeldOutOptions, out: Path) -> Path:
    root = resolve_root(NAME, options.root, f"the RSNA folder (holding {LABELS} and {IMAGES}/)")
    require_files(root, [LABELS, IMAGES], DOWNLOAD)
    boxes = read_boxes(root / LABELS)
    patients = boxes.group_by("patientId", maintain_order=True).agg(
        pl.col("Target").max().alias("Pneumonia"), pl.col("x").is_not_null().sum().alias("boxes")
    )
    rel = (IMAGES + "/" + patients["patientId"] + ".dcm").alias("rel")
    refuse_escaping(rel, str(root / LABELS))
    keep = check_images(root, rel, options.on_missing, DOWNLOAD)
    patients = patients.with_columns(rel, split=group_split(patients["patientId"], options.fractions(), options.seed))
    frame = patients.filter(pl.Series(keep)).select(
        absolute(root, pl.col("rel")),
        pl.lit(None, pl.String).alias("text"),
        "split",
        pl.col("patientId").alias("subject_id"),
        pl.col("patientId").alias("study_id"),
        pl.lit(None, pl.String).alias("view"),
        pl.lit(NAME).alias("source"),
        "Pneumonia",
    )
    info = {
        "name": NAME,
        "version": "stage 2",
        "classes": ["Pneumonia"],
        "task": "binary",
        "eval_classes": ["Pneumonia"],
        "uncertain_policy": "none: Pneumonia is Target (1 when any box marks lung opacity, else 0)",
        "source": DOWNLOAD,
        "images": reader_note(),
        "view": "not recorded (it is in the DICOM header, which prepare does not read)",
        "boxes": int(patients["boxes"].sum()),
        "detailed_classes": read_details(root / DETAILS),
        "missing_images_skipped": int((~keep).sum()),
        "split_policy": "seeded by patientId (the challenge's test labels are not public)",
        **run_info(options, root),
    }
    return write_prepared(out, frame, info)


def read_boxes(path: Path) -> pl.DataFrame:
    """Box rows with Target as 0/1; a negative patient has one row with empty coordinates."""
    check_header(path, LABEL_COLUMNS, DOWNLOAD)
    boxes = pl.read_csv(path, columns=list(LABEL_COLUMNS), infer_schema=False)
    target = boxes["Target"].str.strip_chars()
    bad = boxes.filter(~target.is_in(["0", "1"]))
    if bad.height:
        raise UsageError(
            f"{path.name} has Target values other than 0/1 (patientId {bad['patientId'][0]}: {bad['Target'][0]!r})",
            f"use the original {path.name} from {DOWNLOAD}",
        )
    return boxes.with_columns(pl.col("patientId").str.strip_chars(), Target=target.cast(pl.Float32))


def read_details(path: Path) -> dict[str, int] | str:
    """Patients per detailed class (Normal / Lung Opacity / No Lung Opacity / Not Normal), if the file is there."""
    if not path.is_file():
        return f"{path.name} not found (optional)"
    check_header(path, ("patientId", "class"), DOWNLOAD)
    details = pl.read_csv(path, infer_schema=False).unique("patientId", keep="first")
    counts = details["class"].value_counts(sort=True)
    return dict(zip(counts["class"].to_list(), counts["count"].to_list(), strict=True))
