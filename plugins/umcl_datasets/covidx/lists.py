"""Reading COVIDx list files: ``patientid filename label [source]`` a line, split from the right."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from umcl_cli.contracts import UsageError

DOWNLOAD = "COVIDx CXR (Kaggle andyczhao/covidx-cxr2, built by github.com/lindawangg/COVID-Net)"
MULTICLASS = {"normal": "No Finding", "pneumonia": "Pneumonia", "covid-19": "COVID-19"}
BINARY = {"positive": 1.0, "negative": 0.0}
LABELS = frozenset(MULTICLASS) | frozenset(BINARY)


def read_list(path: Path) -> pl.DataFrame:
    """patient, filename, label (lower case) and source (null in the old 3-field files), one row a line."""
    rows: list[tuple[str, str, str, str | None]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        # Old lists end with the label, newer ones with the source; patient ids may contain spaces,
        # so only the last fields are split off.
        fields = 3 if tokens[-1].lower() in LABELS else 4
        parts = line.strip().rsplit(maxsplit=fields - 1)
        if len(parts) < fields or parts[2].lower() not in LABELS:
            raise UsageError(
                f"{path.name} line {number} is not 'patientid filename label [source]' "
                f"with a label in {sorted(LABELS)}: {line.strip()[:80]!r}",
                f"use the list files from {DOWNLOAD}",
            )
        rows.append((parts[0], parts[1], parts[2].lower(), parts[3] if fields == 4 else None))
    schema = dict.fromkeys(("patient", "filename", "label", "origin"), pl.String)
    return pl.DataFrame(rows, schema=schema, orient="row")


@dataclass(frozen=True)
class Scheme:
    task: str
    columns: dict[str, dict[str, float]]  # class → {label: value}
    policy: str


def label_scheme(labels: pl.Series, files: str) -> Scheme:
    """Three one-hot classes, or binary COVID-19; a mix of both label sets is refused."""
    found = set(labels.unique().to_list())
    if found <= set(MULTICLASS):
        columns = {name: {label: float(label == key) for label in MULTICLASS} for key, name in MULTICLASS.items()}
        return Scheme("multiclass", columns, "none: one class per image (normal → No Finding)")
    if found <= set(BINARY):
        return Scheme("binary", {"COVID-19": BINARY}, "none: COVID-19 is 1 for positive, 0 for negative")
    raise UsageError(
        f"{files} mix three-class labels (normal/pneumonia/COVID-19) with binary ones (positive/negative)",
        "choose a train and a test list of the same COVIDx release with --train-file / --test-file",
    )
