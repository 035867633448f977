"""``umcl prepare csv``: user tables (CSV / TSV / Parquet) of image paths, texts and labels."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from fixtures_real import assert_one_line_error, invoke

from umcl_cli.data.manifest import CANONICAL_CLASSES, PreparedDataset

# 12 rows, 4 patients; "Effusion" and "Pleural_Thickening" are ChestX-ray14-style names.
TABLE = pl.DataFrame(
    {
        "file": [f"img/{i:02d}.png" for i in range(12)],
        "report": [f"report {i}" if i % 3 else "" for i in range(12)],
        "Effusion": [1, 0, -1, None, 1, 0, 0, 1, None, 0, 1, 0],
        "cardiomegaly": [0, 1, 0, 0, None, 1, 0, 0, 1, 0, 0, 1],
        "Pleural_Thickening": [0] * 12,
        "patient": [f"P{i // 3}" for i in range(12)],
        "fold": ["train", "val", "test", "Train"] * 3,
    }
)


def write(tmp_path: Path, frame: pl.DataFrame = TABLE, name: str = "table.csv", images: bool = True) -> Path:
    """The table at ``tmp_path/name`` and (``images``) an empty file for each image it lists."""
    for path in frame["file"] if images else ():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).touch()
    target = tmp_path / name
    if name.endswith(".parquet"):
        frame.write_parquet(target)
    else:
        frame.write_csv(target, separator="\t" if ".tsv" in name else ",")
    return target


def prepare(table: Path, out: Path, *extra: str) -> PreparedDataset:
    result = invoke("prepare", "csv", "--file", str(table), "--image-column", "file", "--out", str(out), *extra)
    assert result.exit_code == 0, result.output
    return PreparedDataset(out)


LABELS = ("--label-columns", "Effusion,cardiomegaly,Pleural_Thickening", "--label-map", "Effusion=Pleural Effusion")


@pytest.mark.parametrize("name", ["table.csv", "table.tsv", "table.parquet"])
def test_table_to_manifest(tmp_path: Path, name: str) -> None:
    table = write(tmp_path, name=name)
    ds = prepare(table, tmp_path / "out", "--text-column", "report", "--split-column", "fold", *LABELS)
    frame = ds.frame
    assert ds.classes == ["Pleural Effusion", "Cardiomegaly", "Pleural Thickening"]
    assert ds.info["label_columns"] == {
        "Effusion": "Pleural Effusion",
        "cardiomegaly": "Cardiomegaly",
        "Pleural_Thickening": "Pleural Thickening",
    }
    assert frame["image_path"][3] == str((tmp_path / "img/03.png").resolve())
    assert frame["split"].to_list() == ["train", "validate", "test", "train"] * 3
    assert frame["Pleural Effusion"].to_list()[:4] == [1.0, 0.0, -1.0, None]
    assert frame["text"].to_list()[:3] == [None, "report 1", "report 2"]  # a blank cell is no text
    assert ds.info["task"] == "multilabel" and ds.info["counts"] == {"train": 6, "validate": 3, "test": 3}
    assert ds.info["positives"]["train"]["Pleural Effusion"] == 3


def test_seeded_split_keeps_patients_together(tmp_path: Path) -> None:
    table = write(tmp_path)
    args = ("--subject-column", "patient", "--validate-fraction", "0.25", "--test-fraction", "0.25", *LABELS)
    ds = prepare(table, tmp_path / "a", *args)
    splits = ds.frame.group_by("subject_id").agg(pl.col("split").n_unique())
    assert splits["split"].to_list() == [1] * 4 and ds.info["counts"] == {"train": 6, "validate": 3, "test": 3}
    assert prepare(table, tmp_path / "b", *args).frame["split"].to_list() == ds.frame["split"].to_list()
    by_row = prepare(table, tmp_path / "c", *LABELS)
    assert by_row.info["counts"] == {"train": 10, "validate": 1, "test": 1}
    assert by_row.info["split_rule"] == "seeded by row: validate 0.1, test 0.1, seed 0"


def test_multiclass_and_binary_tasks(tmp_path: Path) -> None:
    one_hot = TABLE.select("file", a=pl.Series([1, 0, 0] * 4), b=pl.Series([0, 1, 1] * 4))
    table = write(tmp_path, one_hot)
    labels = ("--label-columns", "a,b", "--label-map", "a=Edema,b=Atelectasis")
    ds = prepare(table, tmp_path / "mc", *labels, "--task", "multiclass", "--name", "my-set")
    assert ds.info["task"] == "multiclass" and ds.name == "my-set" and ds.classes == ["Edema", "Atelectasis"]
    result = invoke("prepare", "csv", "--file", str(table), "--image-column", "file", *labels, "--task", "binary")
    assert_one_line_error(result, "--task binary needs one label column, got 2")
    not_one_hot = write(tmp_path, TABLE, "labels.csv")
    args = ("--file", str(not_one_hot), "--image-column", "file", *LABELS, "--task", "multiclass")
    assert_one_line_error(invoke("prepare", "csv", *args), "do not have exactly one positive label")


def test_unmappable_label_names_list_the_vocabulary(tmp_path: Path) -> None:
    table = write(tmp_path)
    result = invoke("prepare", "csv", "--file", str(table), "--image-column", "file", "--label-columns", "Effusion")
    line = assert_one_line_error(result, "label names ['Effusion'] are not in umcl's vocabulary", "--label-map")
    assert all(name in line for name in CANONICAL_CLASSES)


def test_bad_columns_values_and_splits(tmp_path: Path) -> None:
    table = write(tmp_path)
    base = ("prepare", "csv", "--file", str(table), "--image-column", "file")
    assert_one_line_error(invoke(*base, "--text-column", "notes"), "lacks columns ['notes']")
    bad = write(tmp_path, TABLE.with_columns(pl.col("Effusion").replace(-1, 2)), "bad.csv")
    result = invoke("prepare", "csv", "--file", str(bad), "--image-column", "file", *LABELS)
    assert_one_line_error(result, "label column 'Effusion' of bad.csv holds [2.0]")
    odd = write(tmp_path, TABLE.with_columns(pl.lit("holdout").alias("fold")), "odd.csv")
    result = invoke("prepare", "csv", "--file", str(odd), "--image-column", "file", "--split-column", "fold")
    assert_one_line_error(result, "split column 'fold' holds ['holdout']")
    assert_one_line_error(invoke(*base, "--label-map", "Effusion"), "'Effusion' is not COLUMN=CLASS")


@pytest.mark.parametrize("path", ["../outside.png", "/etc/passwd", "img/../../x.png"])
def test_image_paths_cannot_escape_the_root(tmp_path: Path, path: str) -> None:
    write(tmp_path)
    escaping = TABLE.with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(pl.lit(path)).otherwise("file").alias("file")
    )
    table = write(tmp_path, escaping, "t.csv", images=False)
    result = invoke("prepare", "csv", "--file", str(table), "--image-column", "file")
    assert_one_line_error(result, "1 path(s) in t.csv leave the dataset root", path)


def test_missing_images_error_or_skip_and_root(tmp_path: Path) -> None:
    table = write(tmp_path)
    (tmp_path / "img/05.png").unlink()
    base = ("prepare", "csv", "--file", str(table), "--image-column", "file", "--out", str(tmp_path / "o"))
    assert_one_line_error(invoke(*base), "1 of 12 images are missing", "img/05.png", "--on-missing skip")
    assert invoke(*base, "--on-missing", "skip").exit_code == 0
    ds = PreparedDataset(tmp_path / "o")
    assert ds.frame.height == 11 and ds.info["missing_images_skipped"] == 1
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (tmp_path / "img").rename(moved / "img")
    assert_one_line_error(invoke(*base), "12 of 12 images are missing")
    assert invoke(*base, "--root", str(moved), "--on-missing", "skip").exit_code == 0
    assert PreparedDataset(tmp_path / "o").frame["image_path"][0] == str(moved.resolve() / "img/00.png")
