"""``umcl prepare chexpert``: CheXpert's label-only training set and its official validation set.

Splits: train.csv → ``train``, except a seeded ``--validate-fraction`` of its patients →
``validate``; valid.csv (234 radiologist-labelled images) → ``test``, the standard evaluation set.
Labels follow ``--uncertain`` (see ``policy``); blanks stay null. There are no public reports, so
``text`` is null. ``--exclude-5x200 DIR`` drops the images a prepared ``chexpert-5x200`` set uses,
matched on the path below the dataset folder so a small and a full-size copy match each other.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from umcl_cli.contracts import (
    CHEXPERT_CLASSES,
    CHEXPERT_COMPETITION,
    DatasetPlugin,
    PreparedDataset,
    UsageError,
    write_prepared,
)

from ..common.split import group_split
from .options import ChexpertOptions
from .policy import apply_uncertain, describe, uncertain_map
from .source import existing, locate, manifest_columns
from .tables import read_table


class ChexpertDataset(DatasetPlugin[ChexpertOptions]):
    name = "chexpert"
    summary = "CheXpert v1.0 (small or full): train.csv for training, valid.csv as the test set; labels only"
    Options = ChexpertOptions

    def prepare(self, opts: ChexpertOptions, out: Path) -> list[Path]:
        root, folder = locate(opts)
        train = read_table(root, folder, "train.csv")
        train = train.with_columns(
            group_split(train["subject_id"], {"validate": opts.validate_fraction}, opts.seed).alias("split")
        )
        test = read_table(root, folder, "valid.csv").with_columns(pl.lit("test").alias("split"))
        table = pl.concat([train, test])
        excluded, table = _exclude(table, opts.exclude_5x200)
        lateral = int((table["Frontal/Lateral"] == "Lateral").sum())
        if opts.frontal_only:
            table = table.filter(pl.col("Frontal/Lateral") == "Frontal")
        keep = existing(root, table, opts)
        table = apply_uncertain(table.filter(pl.Series(keep)), opts.uncertain)
        info = {
            "name": "chexpert",
            "version": folder,
            "classes": list(CHEXPERT_CLASSES),
            "task": "multilabel",
            "eval_classes": list(CHEXPERT_COMPETITION),
            "uncertain_policy": describe(opts.uncertain),
            "uncertain_map": uncertain_map(opts.uncertain),
            "blank_labels": "null (not mentioned)",
            "splits": "train.csv → train (validate: a seeded fraction of its patients); valid.csv → test",
            "validate_fraction": opts.validate_fraction,
            "seed": opts.seed,
            "frontal_only": opts.frontal_only,
            "laterals_dropped": lateral if opts.frontal_only else 0,
            "excluded_5x200": excluded,
            "missing_images_skipped": int((~keep).sum()),
            "image_paths": "absolute",
            "text": "null (CheXpert's reports are not public)",
            "source": {"root": str(root), "folder": folder},
            "options": opts.model_dump(mode="json"),
        }
        return [write_prepared(out, table.select(manifest_columns(root, list(CHEXPERT_CLASSES))), info)]


def _exclude(table: pl.DataFrame, five_by_200: Path | None) -> tuple[dict[str, object] | None, pl.DataFrame]:
    """Drop the rows whose image a prepared chexpert-5x200 set uses; returns what was done and the rest."""
    if five_by_200 is None:
        return None, table
    prepared = PreparedDataset(five_by_200)
    if prepared.name != "chexpert-5x200" or "csv_path" not in prepared.frame.columns:
        raise UsageError(
            f"--exclude-5x200 {five_by_200} is a prepared '{prepared.name}' dataset, not chexpert-5x200",
            "pass the directory `umcl prepare chexpert-5x200` wrote",
        )
    # Every draw of a multi-draw set: none of their images may be trained on.
    draws = [prepared, *(PreparedDataset(prepared.root / d) for d in prepared.info.get("draw_dirs", []))]
    keys = pl.concat([d.frame["csv_path"] for d in draws]).str.replace(r"^[^/]*/", "")
    drop = table["key"].is_in(keys.implode())
    return {"dir": str(prepared.root), "draws": len(draws), "images": int(drop.sum())}, table.filter(~drop)
