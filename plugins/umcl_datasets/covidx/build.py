"""Writing the COVIDx manifest: the published train and test lists, validate drawn from train."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from umcl_cli.contracts import UsageError, write_prepared
from umcl_datasets.common.checks import check_images, refuse_escaping, require_files
from umcl_datasets.common.locate import resolve_root
from umcl_datasets.public import absolute, carve_validate, run_info

from .lists import DOWNLOAD, label_scheme, read_list
from .options import COVIDxOptions

NAME = "covidx"


def build(options: COVIDxOptions, out: Path) -> Path:
    root = resolve_root(NAME, options.root, "the COVIDx folder (holding train_*.txt, test_*.txt, train/ and test/)")
    train_file = options.train_file or _only(root, "train")
    test_file = options.test_file or _only(root, "test")
    require_files(root, [train_file, test_file, "train", "test"], DOWNLOAD)
    # Each list's images sit in the folder named after its split.
    lists = pl.concat(
        [
            read_list(root / name).with_columns(split=pl.lit(split))
            for name, split in ((train_file, "train"), (test_file, "test"))
        ]
    )
    scheme = label_scheme(lists["label"], f"{train_file} and {test_file}")
    rel = (lists["split"] + "/" + lists["filename"]).alias("rel")
    refuse_escaping(rel, f"{train_file} / {test_file}")
    keep = check_images(root, rel, options.on_missing, DOWNLOAD)
    lists = lists.with_columns(rel).with_columns(
        carve_validate(lists["split"], lists["patient"], options.validate_fraction, options.seed)
    )
    frame = lists.filter(pl.Series(keep)).select(
        absolute(root, pl.col("rel")),
        pl.lit(None, pl.String).alias("text"),
        "split",
        pl.col("patient").alias("subject_id"),
        pl.col("filename").alias("study_id"),
        pl.lit(None, pl.String).alias("view"),
        pl.lit(NAME).alias("source"),
        *(
            pl.col("label").replace_strict(values, return_dtype=pl.Float32).alias(c)
            for c, values in scheme.columns.items()
        ),
    )
    origins = lists["origin"].fill_null("not given").value_counts(sort=True)
    info = {
        "name": NAME,
        "version": f"{train_file} + {test_file}",
        "classes": list(scheme.columns),
        "task": scheme.task,
        "eval_classes": list(scheme.columns),
        "uncertain_policy": scheme.policy,
        "source": DOWNLOAD,
        "label_mapping": scheme.columns,
        "origins": dict(zip(origins["origin"].to_list(), origins["count"].to_list(), strict=True)),
        "missing_images_skipped": int((~keep).sum()),
        "split_policy": "train list → train less a seeded patient-level validate; test list → test",
        **run_info(options, root, train_file=train_file, test_file=test_file),
    }
    return write_prepared(out, frame, info)


def _only(root: Path, split: str) -> str:
    """The single ``<split>_*.txt`` in ``root`` (the pattern itself when none, so the check names it)."""
    found = sorted(p.name for p in root.glob(f"{split}_*.txt"))
    if len(found) > 1:
        raise UsageError(
            f"{root} holds several {split} lists ({', '.join(found)})", f"choose one with --{split}-file NAME"
        )
    return found[0] if found else f"{split}_*.txt"
