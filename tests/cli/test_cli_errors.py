"""Bad input: one line naming the problem and the fix, exit code 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import torch
from typer.testing import CliRunner

from umcl_cli.cli.app import app

runner = CliRunner()
DEMO = Path(__file__).parents[2] / "recipes" / "demo.yaml"


def invoke(args: list[str], env: dict[str, str] | None = None):
    return runner.invoke(app, args, env=env or {"UMCL_DEBUG": ""}, terminal_width=200)


def assert_one_line_error(result, *fragments: str, code: int = 2) -> None:
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_missing_recipe_file(tmp_path: Path) -> None:
    assert_one_line_error(invoke(["pretrain", str(tmp_path / "nope.yaml")]), "nope.yaml not found", "recipes/demo.yaml")


def test_yaml_syntax_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndata: [unclosed\n")
    assert_one_line_error(invoke(["pretrain", str(bad)]), "bad.yaml", "YAML syntax error at line", "fix the YAML")


def test_unknown_field_names_file_and_path(tmp_path: Path) -> None:
    bad = tmp_path / "r.yaml"
    bad.write_text(DEMO.read_text().replace("  batch_size: 64", "  batch_size: 64\n  batchsize: 3"))
    assert_one_line_error(invoke(["pretrain", str(bad)]), "r.yaml", "train.batchsize: unknown field")


def test_wrong_type_names_field_and_expected(tmp_path: Path) -> None:
    result = invoke(["pretrain", str(DEMO), "--set", "train.lr=fast"])
    assert_one_line_error(result, "train.lr", "valid number", "'fast'")


def test_bad_override_syntax() -> None:
    assert_one_line_error(invoke(["pretrain", str(DEMO), "--set", "train.lr"]), "not KEY=VALUE")


def test_unknown_plugin_name_lists_installed() -> None:
    result = invoke(["pretrain", str(DEMO), "--set", "loss.name=infonce"])
    assert_one_line_error(result, "unknown loss plugin 'infonce'", "clip, itl, soft")


def test_dataset_never_prepared(tmp_path: Path) -> None:
    result = invoke(["pretrain", str(DEMO), "--data-root", str(tmp_path), "--out", str(tmp_path / "run")])
    assert_one_line_error(result, "neither a directory nor prepared under the data root", "umcl prepare synthetic")


def test_directory_that_is_not_a_prepared_dataset(tmp_path: Path) -> None:
    (tmp_path / "synthetic").mkdir()
    result = invoke(["pretrain", str(DEMO), "--data-root", str(tmp_path), "--out", str(tmp_path / "run")])
    assert_one_line_error(result, "is not a prepared umcl dataset", "umcl prepare")


@pytest.mark.parametrize("content", [b"not a checkpoint at all", None])
def test_file_that_is_not_a_umcl_checkpoint(tmp_path: Path, content: bytes | None) -> None:
    ckpt = tmp_path / "model.pt"
    if content is None:
        torch.save({"state_dict": {}}, ckpt)  # a torch file, but not ours
    else:
        ckpt.write_bytes(content)
    data = tmp_path / "ds"
    data.mkdir()
    pl.DataFrame({"image_path": ["a.png"], "split": ["test"]}).write_parquet(data / "manifest.parquet")
    (data / "dataset.json").write_text('{"name": "ds", "classes": []}')
    result = invoke(["zeroshot", "--ckpt", str(ckpt), "--dataset", str(data)])
    assert_one_line_error(result, "is not a umcl checkpoint", "umcl pretrain")


def test_damaged_manifest(tmp_path: Path) -> None:
    (tmp_path / "manifest.parquet").write_bytes(b"truncated")
    (tmp_path / "dataset.json").write_text('{"name": "ds", "classes": []}')
    result = invoke(["zeroshot", "--ckpt", str(tmp_path / "m.pt"), "--dataset", str(tmp_path)])
    assert_one_line_error(result, "is damaged", "prepare it again")


def test_missing_checkpoint(tmp_path: Path) -> None:
    result = invoke(["linear-probe", "--ckpt", str(tmp_path / "model.pt"), "--dataset", str(tmp_path)])
    assert result.exit_code == 2


def test_unknown_dataset_plugin_for_prepare() -> None:
    assert_one_line_error(invoke(["prepare", "imagenet"]), "unknown dataset plugin 'imagenet'", "synthetic")


def test_unknown_prepare_option(tmp_path: Path) -> None:
    result = invoke(["prepare", "synthetic", "--out", str(tmp_path / "s"), "--bogus", "3"])
    assert_one_line_error(result, "'synthetic' has no option --bogus", "--n")


def test_bad_prepare_value(tmp_path: Path) -> None:
    result = invoke(["prepare", "synthetic", "--out", str(tmp_path / "s"), "--n", "lots"])
    assert_one_line_error(result, "umcl prepare synthetic: n", "lots")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = invoke(["pretrain", str(tmp_path / "nope.yaml")], env={"UMCL_DEBUG": "1"})
    assert result.exit_code != 0
    assert result.exception is not None and "not found" in str(result.exception)
