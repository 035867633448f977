"""``umcl prepare csv``: a table of image paths, optional texts and labels, as a prepared dataset.

Image paths are relative to ``--root`` (default: the table's folder); absolute paths and ``..`` are
refused, and the manifest stores them resolved (absolute). Splits come from ``--split-column``
(train / validate / test; val, valid, validation and dev read as validate) or from a seeded draw,
by patient when ``--subject-column`` is given, else by row.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from umcl_cli.contracts import SPLITS, DatasetPlugin, UsageError, write_prepared

from ..common.checks import check_columns, check_images, refuse_escaping
from ..common.split import group_split
from .labels import canonical_names, label_values, parse_label_map
from .options import CsvOptions

_SPLIT_NAMES = {"val": "validate", "valid": "validate", "validation": "validate", "dev": "validate"}
_FIX = "pass the column names exactly as the table's header spells them"


class CsvDataset(DatasetPlugin[CsvOptions]):
    name = "csv"
    summary = "Any CSV / TSV / Parquet table of image paths with optional text and labels"
    Options = CsvOptions

    def prepare(self, opts: CsvOptions, out: Path) -> list[Path]:
        table = read_table(opts.file)
        source = opts.file.name
        columns = [opts.image_column, *opts.labels()]
        columns += [c for c in (opts.text_column, opts.split_column, opts.subject_column) if c]
        check_columns(table.columns, columns, str(opts.file), _FIX)
        classes = canonical_names(opts.labels(), parse_label_map(opts.label_map))
        if opts.task == "binary" and len(classes) != 1:
            raise UsageError(
                f"--task binary needs one label column, got {len(classes)}", "pass one --label-columns name"
            )
        root = (opts.root or opts.file.parent).expanduser().resolve()
        if not root.is_dir():
            raise UsageError(f"--root {root} is not a folder", "pass the folder the image paths are relative to")
        paths = table[opts.image_column].cast(pl.String)
        refuse_escaping(paths, source)
        keep = check_images(root, paths, opts.on_missing, f"the images {source} lists")
        frame = pl.DataFrame(
            {
                "image_path": f"{root}/" + paths,
                "text": _text(table, opts.text_column),
                "split": _split(table, opts),
                "subject_id": table[opts.subject_column].cast(pl.String) if opts.subject_column else None,
                "study_id": None,
                "view": None,
                "source": opts.name,
                **{canonical: label_values(table, column, source) for column, canonical in classes.items()},
            },
            schema_overrides={"subject_id": pl.String, "study_id": pl.String, "view": pl.String},
        ).filter(pl.Series(keep))
        if opts.task == "multiclass":
            _check_one_hot(frame, list(classes.values()), source)
        info = {
            "name": opts.name,
            "version": "user table",
            "classes": list(classes.values()),
            "task": opts.task,
            "eval_classes": list(classes.values()),
            "uncertain_policy": "kept as -1",
            "label_columns": classes,
            "split_rule": f"column {opts.split_column}" if opts.split_column else _split_rule(opts),
            "missing_images_skipped": int((~keep).sum()),
            "image_paths": "absolute",
            "source": {"file": str(opts.file.resolve()), "root": str(root)},
            "options": opts.model_dump(mode="json"),
        }
        return [write_prepared(out, frame, info)]


def read_table(path: Path) -> pl.DataFrame:
    """A CSV / TSV (gzipped or not) or Parquet file, chosen by its extension."""
    if not path.is_file():
        raise UsageError(f"--file {path} not found", "pass the path of the CSV, TSV or Parquet table")
    suffixes = [s.lower() for s in path.suffixes[-2:]]
    kind = suffixes[-2] if suffixes[-1:] == [".gz"] and len(suffixes) == 2 else suffixes[-1] if suffixes else ""
    if kind == ".parquet":
        return pl.read_parquet(path)
    if kind in (".csv", ".tsv"):
        return pl.read_csv(path, separator="\t" if kind == ".tsv" else ",", infer_schema_length=10_000)
    raise UsageError(f"--file {path} is not .csv, .tsv (optionally .gz) or .parquet", "convert it, or rename it")


def _text(table: pl.DataFrame, column: str | None) -> pl.Series | None:
    if column is None:
        return None
    text = table[column].cast(pl.String).str.strip_chars()
    return text.set(text == "", None) if text.len() else text  # a blank cell is no text


def _split(table: pl.DataFrame, opts: CsvOptions) -> pl.Series:
    if opts.split_column is None:
        groups = (
            table[opts.subject_column].cast(pl.String)
            if opts.subject_column
            else pl.Series(range(table.height)).cast(pl.String)
        )
        fractions = {"validate": opts.validate_fraction, "test": opts.test_fraction}
        return group_split(groups, fractions, opts.seed)
    split = table[opts.split_column].cast(pl.String).str.strip_chars().str.to_lowercase()
    split = split.replace(_SPLIT_NAMES)
    bad = split.filter(~split.is_in(list(SPLITS)) | split.is_null()).unique().to_list()
    if bad:
        raise UsageError(
            f"split column '{opts.split_column}' holds {bad[:5]}",
            "use train, validate (or val/valid/validation/dev) and test",
        )
    return split


def _split_rule(opts: CsvOptions) -> str:
    by = f"patient ({opts.subject_column})" if opts.subject_column else "row"
    return f"seeded by {by}: validate {opts.validate_fraction}, test {opts.test_fraction}, seed {opts.seed}"


def _check_one_hot(frame: pl.DataFrame, classes: list[str], source: str) -> None:
    positives = frame.select(pl.sum_horizontal(pl.col(c) == 1 for c in classes)).to_series()
    off = int((positives != 1).sum())
    if off:
        raise UsageError(
            f"--task multiclass but {off} rows of {source} do not have exactly one positive label",
            "fix those rows, or use --task multilabel",
        )
