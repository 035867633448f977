"""Writing the ChestX-ray14 manifest: official split lists, a patient-level validate split, 15 labels."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from umcl_cli.contracts import UsageError, write_prepared
from umcl_datasets.common.checks import decide_missing, require_files
from umcl_datasets.common.locate import resolve_root
from umcl_datasets.public import absolute, carve_validate, run_info

from .entries import CLASSES, DOWNLOAD, ENTRY_FILES, FINDINGS, SPLIT_LISTS, read_entries, read_split_lists
from .options import ChestXray14Options

NAME = "chestxray14"


def build(options: ChestXray14Options, out: Path) -> Path:
    root = resolve_root(NAME, options.root, "the ChestX-ray14 folder (holding Data_Entry_2017_v2020.csv)")
    # Either release of the label table will do; the 2020 one wins when both are there.
    entry_file = next((name for name in ENTRY_FILES if (root / name).is_file()), ENTRY_FILES[0])
    require_files(root, [entry_file, *SPLIT_LISTS], DOWNLOAD)
    entries = read_entries(root / entry_file)

    split = entries["image"].replace_strict(read_split_lists(root), default=None, return_dtype=pl.String)
    unlisted = split.null_count()
    entries = entries.with_columns(split=split).filter(pl.col("split").is_not_null())
    entries = entries.with_columns(
        carve_validate(entries["split"], entries["subject_id"], options.validate_fraction, options.seed)
    )

    index, layout = index_images(root)
    entries = entries.with_columns(rel=pl.col("image").replace_strict(index, default=None, return_dtype=pl.String))
    shown = entries.select(pl.coalesce("rel", pl.lit("images/") + pl.col("image"))).to_series()
    keep = decide_missing(shown, entries["rel"].is_not_null().to_numpy(), options.on_missing, root, DOWNLOAD)
    frame = entries.filter(pl.Series(keep)).select(
        absolute(root, pl.col("rel")),
        pl.lit(None, pl.String).alias("text"),
        "split",
        "subject_id",
        pl.col("image").str.replace(r"\.png$", "").alias("study_id"),
        "view",
        pl.lit(NAME).alias("source"),
        "sex",
        "age",
        *CLASSES,
    )
    info = {
        "name": NAME,
        "version": entry_file,
        "classes": list(CLASSES),
        "task": "multilabel",
        "eval_classes": list(FINDINGS),
        "uncertain_policy": "none: a class is 1 when Finding Labels lists it, else 0",
        "source": DOWNLOAD,
        "label_file": entry_file,
        "class_mapping": {"Effusion": "Pleural Effusion", "Pleural_Thickening": "Pleural Thickening"},
        "split_policy": "test_list.txt → test; train_val_list.txt → train, less a seeded patient-level validate",
        "image_layout": layout,
        "text": "none (ChestX-ray14 publishes no reports)",
        "not_in_split_lists": unlisted,
        "missing_images_skipped": int((~keep).sum()),
        **run_info(options, root),
    }
    return write_prepared(out, frame, info)


def index_images(root: Path) -> tuple[dict[str, str], str]:
    """PNG name → path relative to ``root``, scanning ``images/`` and Kaggle's ``images_*/images/`` once."""
    folders = [d for d in (root / "images", *sorted(root.glob("images_*/images"))) if d.is_dir()]
    if not folders:
        raise UsageError(
            f"{root} has neither images/ nor images_001/images/ (expected from {DOWNLOAD})",
            "extract the image archives into --root",
        )
    index: dict[str, str] = {}
    for folder in folders:
        prefix = folder.relative_to(root).as_posix()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.endswith(".png"):
                    index.setdefault(entry.name, f"{prefix}/{entry.name}")
    layout = " and ".join(sorted({"images/" if f.parent == root else "images_*/images/ (Kaggle)" for f in folders}))
    return index, layout
