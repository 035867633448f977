"""The manifest contract: ``DIR/manifest.parquet`` + ``DIR/dataset.json``.

Every prepared dataset is one table of rows ``(image, text | null, labels | null)``. Label columns
are Float32: 1 positive, 0 negative, -1 uncertain, null not mentioned.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import polars as pl

from umcl_cli import __version__
from umcl_cli.data.paths import IMAGE_ROOT, ImagePaths, derive_image_root, recorded_image_root
from umcl_cli.errors import UsageError
from umcl_cli.io_safety import atomic_write

MANIFEST = "manifest.parquet"
INFO = "dataset.json"
SPLITS = ("train", "validate", "test")
TaskType = Literal["multiclass", "multilabel", "binary"]

# CheXpert's 14 observations first (their canonical order), then findings other datasets name.
CHEXPERT_CLASSES: tuple[str, ...] = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
CANONICAL_CLASSES: tuple[str, ...] = (
    *CHEXPERT_CLASSES,
    "Infiltration",
    "Mass",
    "Nodule",
    "Emphysema",
    "Fibrosis",
    "Pleural Thickening",
    "Hernia",
    "COVID-19",
)
# CheXpert competition tasks and GLoRIA's 5x200 classes (the same five).
CHEXPERT_COMPETITION: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Pleural Effusion",
)

BASE_COLUMNS: dict[str, pl.DataType] = {
    "image_path": pl.String(),
    "text": pl.String(),
    "split": pl.String(),
    "subject_id": pl.String(),
    "study_id": pl.String(),
    "view": pl.String(),
    "source": pl.String(),
}


def manifest_schema(classes: Sequence[str]) -> dict[str, pl.DataType]:
    schema = dict(BASE_COLUMNS)
    schema.update({name: pl.Float32() for name in classes})
    return schema


def check_manifest(frame: pl.DataFrame, classes: Sequence[str]) -> None:
    """Raise if ``frame`` misses a contract column or has a split outside train/validate/test."""
    missing = [c for c in manifest_schema(classes) if c not in frame.columns]
    if missing:
        raise ValueError(f"manifest lacks columns {missing}")
    unknown = [c for c in classes if c not in CANONICAL_CLASSES]
    if unknown:
        raise ValueError(f"class names {unknown} are not canonical; map them to {list(CANONICAL_CLASSES)}")
    bad = set(frame["split"].unique().to_list()) - set(SPLITS)
    if bad:
        raise ValueError(f"split values {sorted(map(str, bad))} are not one of {SPLITS}")


def write_prepared(
    out: Path,
    frame: pl.DataFrame,
    info: dict[str, Any],
    extra_files: dict[str, Path] | None = None,
) -> Path:
    """Write manifest + dataset.json into ``out`` so a half-written directory never looks complete.

    ``info`` must hold at least ``name`` and ``classes``; counts, version and the command line are
    added here. Files are written to a temporary name and renamed at the end, so an interrupted run
    leaves the previous manifest (if any) in place.
    """
    classes = list(info["classes"])
    frame = frame.cast({k: v for k, v in manifest_schema(classes).items() if k in frame.columns})
    check_manifest(frame, classes)
    # Absolute image paths are only followed inside the folder recorded here (see data.paths).
    image_root = info.get(IMAGE_ROOT) or derive_image_root(frame["image_path"])
    if image_root is not None:
        info = {**info, IMAGE_ROOT: str(image_root)}
    ImagePaths(out, info.get(IMAGE_ROOT), str(info["name"])).check_all(frame["image_path"])
    out.mkdir(parents=True, exist_ok=True)
    counts = {s: int((frame["split"] == s).sum()) for s in SPLITS}
    per_class = {s: {c: int(((frame["split"] == s) & (frame[c] == 1)).sum()) for c in classes} for s in SPLITS}
    full_info = {
        "umcl_version": __version__,
        "command": " ".join(["umcl", *sys.argv[1:]]) if sys.argv else "",
        **info,
        "counts": counts,
        "positives": per_class,
        "with_text": int(frame["text"].is_not_null().sum()),
        "with_labels": int(frame.select(pl.any_horizontal(pl.col(classes).is_not_null())).to_series().sum()),
    }
    atomic_write(out / MANIFEST, lambda p: frame.write_parquet(p))
    atomic_write(out / INFO, lambda p: p.write_text(json.dumps(full_info, indent=2) + "\n"))
    for name, src in (extra_files or {}).items():
        atomic_write(out / name, lambda p, src=src: shutil.copyfile(src, p))
    return out


class PreparedDataset:
    """A prepared dataset directory, read back: its manifest, info and class names."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        info_path = self.root / INFO
        manifest_path = self.root / MANIFEST
        if not self.root.is_dir():
            raise UsageError(
                f"dataset directory {self.root} does not exist",
                "run `umcl prepare NAME --out DIR` first, or pass the directory it wrote",
            )
        if not (info_path.is_file() and manifest_path.is_file()):
            raise UsageError(
                f"{self.root} is not a prepared umcl dataset (no {MANIFEST} + {INFO})",
                "run `umcl prepare NAME --out DIR` to prepare it",
            )
        try:
            self.info: dict[str, Any] = json.loads(info_path.read_text())
            self.frame = pl.read_parquet(manifest_path)
            self.classes: list[str] = list(self.info["classes"])
            self.image_paths = ImagePaths(self.root, recorded_image_root(self.info), self.name)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, pl.exceptions.PolarsError) as exc:
            raise UsageError(
                f"prepared dataset {self.root} is damaged ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})",
                "prepare it again with `umcl prepare NAME --out DIR`",
            ) from exc

    @property
    def name(self) -> str:
        return str(self.info.get("name", self.root.name))

    @property
    def task(self) -> TaskType:
        """Evaluation task of the test split, as the preparer recorded it."""
        return self.info.get("task", "multilabel")

    @property
    def eval_classes(self) -> list[str]:
        """Classes the field reports for this dataset's test split (defaults to all)."""
        return list(self.info.get("eval_classes", self.classes))

    def split(self, name: str) -> pl.DataFrame:
        return self.frame.filter(pl.col("split") == name)

    def image_file(self, image_path: str) -> Path:
        """The file of a manifest row; raises for a path leading outside the dataset (see data.paths)."""
        return self.image_paths.resolve(image_path)
