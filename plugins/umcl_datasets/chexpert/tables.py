"""Locating CheXpert's folder and reading train.csv / valid.csv as they are distributed."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from umcl_cli.contracts import CHEXPERT_CLASSES, UsageError

from ..common.checks import check_header, refuse_escaping

DOWNLOAD = "CheXpert v1.0 (or v1.0-small) from the Stanford AIMI site"
FOLDERS = ("CheXpert-v1.0", "CheXpert-v1.0-small")
HEADER = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *CHEXPERT_CLASSES)
_TYPES = {
    "Path": pl.String,
    "Sex": pl.String,
    "Age": pl.Int64,
    "Frontal/Lateral": pl.String,
    "AP/PA": pl.String,
    **dict.fromkeys(CHEXPERT_CLASSES, pl.Float32),
}


def dataset_folder(root: Path, folder: str | None) -> tuple[Path, str]:
    """``(root, folder name)`` where ``root`` CONTAINS ``CheXpert-v1.0[-small]`` (the Path column's base).

    A root that is itself the dataset folder is taken one level up; with both sizes present the
    user chooses with ``--folder``.
    """
    if root.name in FOLDERS and (root / "train.csv").is_file():
        folder, root = folder or root.name, root.parent
    present = [f for f in FOLDERS if (root / f / "train.csv").is_file()]
    if folder is not None:
        if folder not in present:
            raise UsageError(
                f"{root / folder}/train.csv not found (CheXpert folders with a train.csv here: {present or 'none'})",
                f"download {DOWNLOAD} and pass --root the folder that contains {folder}",
            )
        return root, folder
    if not present:
        raise UsageError(
            f"{root} contains neither {FOLDERS[0]}/train.csv nor {FOLDERS[1]}/train.csv",
            f"download {DOWNLOAD} and pass --root the folder that contains {FOLDERS[1]} (or {FOLDERS[0]})",
        )
    if len(present) > 1:
        raise UsageError(f"{root} holds both {present[0]} and {present[1]}", "choose one with --folder NAME")
    return root, present[0]


def read_table(root: Path, folder: str, name: str) -> pl.DataFrame:
    """``train.csv`` or ``valid.csv`` with its header checked, paths checked, and id/view columns added.

    Adds ``subject_id`` (patient00001), ``study_id`` (patient00001/study1), ``view`` (AP/PA for
    frontals, LATERAL for laterals) and ``key`` (the Path below the dataset folder, the same for
    the small and full-size copies).
    """
    path = root / folder / name
    if not path.is_file():
        raise UsageError(f"{path} not found", f"download {DOWNLOAD}; it ships train.csv and valid.csv")
    check_header(path, HEADER, DOWNLOAD)
    table = pl.read_csv(path, columns=list(HEADER), schema_overrides=_TYPES)
    refuse_escaping(table["Path"], str(path))
    ids = pl.col("Path").str.extract_groups(r"(patient\d+)/(study\d+)/")
    return table.with_columns(
        ids.struct.field("1").alias("subject_id"),
        pl.concat_str(ids.struct.field("1"), pl.lit("/"), ids.struct.field("2")).alias("study_id"),
        pl.when(pl.col("Frontal/Lateral") == "Lateral")
        .then(pl.lit("LATERAL"))
        .otherwise(pl.col("AP/PA"))
        .alias("view"),
        pl.col("Path").str.replace(r"^[^/]*/", "").alias("key"),
    )
