"""Reading NIH ChestX-ray14's label table (both releases) and its official split lists."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from umcl_cli.contracts import UsageError
from umcl_datasets.common.checks import check_header

DOWNLOAD = "NIH ChestX-ray14 (https://nihcc.app.box.com/v/ChestXray-NIHCC, or Kaggle nih-chest-xrays/data)"
# The 2020 re-release first; the original 2017 file (CRLF, trailing comma, ages like 058Y) second.
ENTRY_FILES = ("Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv")
# The columns read; the image-size and pixel-spacing columns are not needed.
COLUMNS = ("Image Index", "Finding Labels", "Patient ID", "Patient Age", "Patient Gender", "View Position")
SPLIT_LISTS = {"train_val_list.txt": "train", "test_list.txt": "test"}

# NIH spellings → canonical class names, in the order of the NIH paper; No Finding first.
NIH_TO_CANONICAL: dict[str, str] = {
    "No Finding": "No Finding",
    "Atelectasis": "Atelectasis",
    "Cardiomegaly": "Cardiomegaly",
    "Effusion": "Pleural Effusion",
    "Infiltration": "Infiltration",
    "Mass": "Mass",
    "Nodule": "Nodule",
    "Pneumonia": "Pneumonia",
    "Pneumothorax": "Pneumothorax",
    "Consolidation": "Consolidation",
    "Edema": "Edema",
    "Emphysema": "Emphysema",
    "Fibrosis": "Fibrosis",
    "Pleural_Thickening": "Pleural Thickening",
    "Hernia": "Hernia",
}
CLASSES: tuple[str, ...] = tuple(NIH_TO_CANONICAL.values())
FINDINGS: tuple[str, ...] = CLASSES[1:]
_UNITS_PER_YEAR = {"Y": 1.0, "M": 12.0, "D": 365.0}


def read_entries(path: Path) -> pl.DataFrame:
    """One row per image: name, patient, view, sex, age in years and one 1/0 column per class."""
    check_header(path, COLUMNS, DOWNLOAD)
    raw = pl.read_csv(path, columns=list(COLUMNS), infer_schema=False)
    findings = raw["Finding Labels"].str.split("|").list.eval(pl.element().str.strip_chars())
    unknown = sorted(set(findings.explode().drop_nulls().to_list()) - set(NIH_TO_CANONICAL))
    if unknown:
        raise UsageError(
            f"{path.name} has finding names outside the 15 NIH labels: {unknown[:5]}",
            f"use the original {path.name} from {DOWNLOAD}",
        )
    return raw.select(
        pl.col("Image Index").str.strip_chars().alias("image"),
        pl.col("Patient ID").str.strip_chars().alias("subject_id"),
        pl.col("View Position").str.strip_chars().alias("view"),
        pl.col("Patient Gender").str.strip_chars().alias("sex"),
        _age_years(pl.col("Patient Age")).alias("age"),
        *(findings.list.contains(nih).cast(pl.Float32).alias(name) for nih, name in NIH_TO_CANONICAL.items()),
    )


def _age_years(age: pl.Expr) -> pl.Expr:
    """``58`` (2020 file) or ``058Y`` / ``011M`` / ``020D`` (2017 file) → years as Float32."""
    number = age.str.extract(r"^\s*(\d+)", 1).cast(pl.Float32)
    unit = age.str.extract(r"([YMD])\s*$", 1).fill_null("Y")
    return number / unit.replace_strict(_UNITS_PER_YEAR, return_dtype=pl.Float32)


def read_split_lists(root: Path) -> dict[str, str]:
    """Image name → official split (``train`` for train_val_list.txt, ``test`` for test_list.txt)."""
    split_of: dict[str, str] = {}
    for name, split in SPLIT_LISTS.items():
        for line in (root / name).read_text().splitlines():
            image = line.strip()
            if not image:
                continue
            if split_of.setdefault(image, split) != split:
                raise UsageError(
                    f"{image} is in both {' and '.join(SPLIT_LISTS)}",
                    f"use the original split lists from {DOWNLOAD}",
                )
    return split_of
