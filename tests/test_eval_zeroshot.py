"""Zero-shot protocols and prompt-tuning sweeps on a tiny trained model, checked against sklearn/numpy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from e2e_helpers import RECIPES, TINY, prepare_tiny
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from umcl_cli.cli.app import app
from umcl_cli.cli.pretrain import run_pretrain
from umcl_cli.data.manifest import CHEXPERT_COMPETITION
from umcl_cli.data.resolve import resolve_dataset
from umcl_cli.evaluation.features import encode_image_files
from umcl_cli.evaluation.prompt_sources import hand_written
from umcl_cli.evaluation.zeroshot import pair_probability
from umcl_cli.model.checkpoint import load_model

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), terminal_width=200, env={"UMCL_DEBUG": ""})


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("eval-zs")
    prepare_tiny(root / "data")
    run = run_pretrain(RECIPES / "demo.yaml", TINY, root / "run", data_root=str(root / "data"))
    return root, run / "model.pt"


def zeroshot(root: Path, ckpt: Path, *args: str):
    return invoke("zeroshot", "--ckpt", str(ckpt), "--data-root", str(root / "data"), *args)


def test_a_task_that_does_not_fit_the_dataset_is_refused(trained) -> None:
    root, ckpt = trained
    # The main split is multilabel: most rows have several positives or none.
    result = zeroshot(root, ckpt, "--dataset", "synthetic", "--task", "multiclass", "--out", str(root / "x"))
    assert_one_line_error(result, "multiclass zero-shot does not fit dataset synthetic", "--task multilabel")
    assert not (root / "x" / "metrics.json").exists()
    assert_one_line_error(zeroshot(root, ckpt, "--dataset", "synthetic", "--task", "binary"), "pass --classes NAME")
    assert_one_line_error(zeroshot(root, ckpt, "--dataset", "synthetic", "--task", "ranking"), "multiclass, multilabel")


def test_a_prompts_file_naming_unknown_classes_is_refused(trained, tmp_path: Path) -> None:
    root, ckpt = trained
    prompts = tmp_path / "prompts.yaml"
    prompts.write_text(
        "\n".join(f"{c}: [{c.lower()}]" for c in CHEXPERT_COMPETITION) + "\nPneumomediastinum: [free air]\n"
    )
    result = zeroshot(root, ckpt, "--dataset", "synthetic/5x200", "--prompts", str(prompts))
    assert_one_line_error(result, "names classes ['Pneumomediastinum']", "use the dataset's class names")


def test_multilabel_reports_mean_auroc_over_standard_and_all_classes(trained) -> None:
    root, ckpt = trained
    out = root / "zs-ml"
    result = zeroshot(
        root, ckpt, "--dataset", "synthetic", "--prompts", "templates", "--bootstrap", "30", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["task"] == "multilabel" and doc["eval_classes"] == list(CHEXPERT_COMPETITION)
    assert len(doc["classes"]) == 14 and set(doc["ci95"]) == set(doc["metrics"])

    # Independently: encode, score with the hand-written ensembles, AUROC per class with sklearn.
    model, payload = load_model(ckpt)
    ds = resolve_dataset("synthetic", root / "data")
    frame = ds.split("test")
    features = encode_image_files(model, [ds.image_file(p) for p in frame["image_path"]], payload["image_size"])
    probs = pair_probability(features, hand_written(model, doc["classes"]), float(model.scale().detach())).numpy()
    aurocs = {}
    for j, name in enumerate(doc["classes"]):
        raw = np.nan_to_num(frame[name].to_numpy().astype(float), nan=0.0)  # blank = not mentioned = 0
        keep = raw != -1  # uncertain rows are left out of that class
        if 0 < raw[keep].sum() < keep.sum():
            aurocs[name] = roc_auc_score(raw[keep], probs[keep, j])
    assert doc["metrics"]["mean_auroc"] == pytest.approx(np.mean(list(aurocs.values())), abs=1e-6)
    standard = [aurocs[c] for c in CHEXPERT_COMPETITION if c in aurocs]
    assert doc["metrics"]["mean_auroc_eval_classes"] == pytest.approx(np.mean(standard), abs=1e-6)
    assert (out / "roc_curves.png").is_file() and doc["plots"] == ["roc_curves.png"]


def test_binary_gives_every_headline_metric_a_ci(trained) -> None:
    root, ckpt = trained
    out = root / "zs-bin"
    args = ("--dataset", "synthetic", "--task", "binary", "--classes", "Edema", "--bootstrap", "40", "--out", str(out))
    assert zeroshot(root, ckpt, *args).exit_code == 0
    doc = json.loads((out / "metrics.json").read_text())
    assert set(doc["metrics"]) == {"auroc", "accuracy", "sensitivity", "specificity"} == set(doc["ci95"])
    for key, value in doc["metrics"].items():
        ci = doc["ci95"][key]
        assert ci["estimate"] == pytest.approx(value) and ci["n"] == 40
        assert ci["low"] is None or ci["low"] <= value <= ci["high"]


def test_prompt_tune_sweep_prints_one_table_and_writes_every_row(trained) -> None:
    root, ckpt = trained
    out = root / "sweep"
    result = invoke(
        "prompt-tune",
        "--ckpt",
        str(ckpt),
        "--dataset",
        "synthetic",
        "--data-root",
        str(root / "data"),
        "--shots",
        "1,2",
        "--seeds",
        "0,1",
        "--steps",
        "2",
        "--bootstrap",
        "20",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("prompt tuning → zero-shot") == 1
    for row in ("hand-written", "checkpoint", "1-shot", "2-shot", "chance"):
        assert row in result.output
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["eval_dataset"] == "synthetic-5x200" and doc["task"] == "multiclass"  # the default eval set
    assert len(doc["runs"]) == 4 and all(Path(r["prompts"]).is_file() for r in doc["runs"])
    for shots in (1, 2):
        accuracies = [r["metrics"]["accuracy"] for r in doc["runs"] if r["shots"] == shots]
        assert doc["metrics"][f"accuracy@{shots}-shot"] == pytest.approx(np.mean(accuracies))
        assert doc["std"][f"accuracy@{shots}-shot"] == pytest.approx(np.std(accuracies))
    for key in ("accuracy@templates", "accuracy@learned", "macro_f1@2-shot"):
        assert key in doc["metrics"] and key in doc["ci95"]
    assert (out / "shots_curve.png").is_file()


def test_prompt_tune_needs_a_multiclass_set_to_evaluate_on(trained, tmp_path: Path) -> None:
    root, ckpt = trained
    bare = tmp_path / "labels-only"  # a multilabel dataset without a 5x200 subset
    bare.mkdir()
    for name in ("manifest.parquet", "dataset.json"):
        shutil.copy(root / "data" / "synthetic" / name, bare / name)
    result = invoke("prompt-tune", "--ckpt", str(ckpt), "--dataset", str(bare), "--shots", "1")
    assert_one_line_error(result, "has no 5x200 subset", "--eval-dataset")
