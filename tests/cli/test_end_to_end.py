"""The whole flow on tiny synthetic data: prepare → pretrain → every evaluation command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from e2e_helpers import RECIPES, TINY, prepare_tiny
from typer.testing import CliRunner

from umcl_cli.cli.app import app
from umcl_cli.model import objectives
from umcl_cli.model.checkpoint import load_model

runner = CliRunner()


def umcl(*args: str) -> str:
    result = runner.invoke(app, list(args), terminal_width=200, env={"UMCL_DEBUG": ""})
    assert result.exit_code == 0, result.output
    return result.output


def on_model(trained: tuple[Path, Path], command: str, dataset: str, *extra: str) -> str:
    """Run an evaluation command on the module's trained model and data."""
    root, run = trained
    return umcl(
        command, "--ckpt", str(run / "model.pt"), "--dataset", dataset, "--data-root", str(root / "data"), *extra
    )


def tiny_args(*extra: str) -> list[str]:
    return [a for s in [*TINY, *extra] for a in ("--set", s)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("e2e")
    prepare_tiny(root / "data")
    run = root / "run"
    umcl("pretrain", str(RECIPES / "demo.yaml"), "--out", str(run), "--data-root", str(root / "data"), *tiny_args())
    return root, run


def test_pretrain_writes_the_run_directory(trained) -> None:
    _, run = trained
    for name in (
        "recipe.yaml",
        "metrics.jsonl",
        "checkpoints/last.pt",
        "model.pt",
        "model.safetensors",
        "training_curves.png",
    ):
        assert (run / name).is_file(), name
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6]
    for key in ("loss", "lr", "logit_scale", "samples_per_s", "data_time"):
        assert all(key in r for r in records)


def test_model_pt_alone_rebuilds_the_model_with_weights_only(trained) -> None:
    _, run = trained
    payload = torch.load(run / "model.pt", weights_only=True)
    assert payload["format"] == "umcl-model" and payload["prompt"]["init"] == "a chest x-ray showing"
    model, _ = load_model(run / "model.pt")
    for key, value in payload["state_dict"].items():
        assert torch.equal(model.state_dict()[key], value), key
    with torch.no_grad():
        features = model.encode_texts(["moderate cardiomegaly"])
    assert features.shape == (1, 16)


def test_zeroshot_picks_multiclass_for_the_5x200_split(trained) -> None:
    root, _ = trained
    out = root / "zs-mc"
    on_model(trained, "zeroshot", "synthetic/5x200", "--out", str(out), "--bootstrap", "50")
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["task"] == "multiclass" and doc["prompts"] == "learned"
    assert 0 <= doc["metrics"]["accuracy"] <= 1 and doc["n"] == 40
    assert doc["ci95"]["accuracy"]["low"] <= doc["metrics"]["accuracy"] <= doc["ci95"]["accuracy"]["high"]
    assert sum(map(sum, doc["confusion_matrix"])) == 40
    assert (out / "confusion_matrix.png").is_file() and (out / "prompts.yaml").is_file()


def test_zeroshot_picks_multilabel_for_the_main_test_split(trained) -> None:
    root, _ = trained
    out = root / "zs-ml"
    on_model(trained, "zeroshot", "synthetic", "--out", str(out), "--prompts", "templates", "--bootstrap", "20")
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["task"] == "multilabel" and doc["prompts"] == "templates"
    assert set(doc["per_class"]) == set(doc["classes"])
    assert doc["metrics"]["mean_auroc"] is not None


def test_prompt_tune_then_zeroshot_with_the_learned_file(trained) -> None:
    root, _ = trained
    out = root / "pt"
    on_model(trained, "prompt-tune", "synthetic", "--shots", "2", "--steps", "4", "--out", str(out))
    assert (out / "prompts.pt").is_file()
    zs = root / "zs-pt"
    on_model(
        trained,
        "zeroshot",
        "synthetic/5x200",
        "--prompts",
        str(out / "prompts.pt"),
        "--out",
        str(zs),
        "--bootstrap",
        "0",
    )
    doc = json.loads((zs / "metrics.json").read_text())
    assert doc["prompts"].startswith("file:")


def test_linear_probe_and_retrieval(trained) -> None:
    root, _ = trained
    lp = root / "lp"
    on_model(trained, "linear-probe", "synthetic", "--fraction", "0.5", "--out", str(lp), "--bootstrap", "20")
    doc = json.loads((lp / "metrics.json").read_text())
    assert doc["fraction"] == 0.5 and doc["metrics"]["mean_auroc"] is not None
    rt = root / "rt"
    on_model(trained, "retrieve", "synthetic", "--out", str(rt))
    doc = json.loads((rt / "metrics.json").read_text())
    for key in ("image_to_text_R@1", "image_to_text_R@5", "text_to_image_R@10", "image_to_text_median_rank"):
        assert key in doc["metrics"]
    output = on_model(
        trained, "retrieve", "synthetic", "--query", "moderate left pleural effusion", "--top", "3", "--out", str(rt)
    )
    assert "top 3 images" in output and (rt / "query_grid.png").is_file()


def test_bad_fraction_is_refused(trained) -> None:
    root, run = trained
    result = runner.invoke(
        app,
        [
            "linear-probe",
            "--ckpt",
            str(run / "model.pt"),
            "--dataset",
            "synthetic",
            "--data-root",
            str(root / "data"),
            "--fraction",
            "1.5",
        ],
        env={"UMCL_DEBUG": ""},
    )
    assert result.exit_code == 2 and "outside (0, 1]" in result.output


def test_existing_run_is_not_overwritten(trained) -> None:
    root, run = trained
    before = (run / "model.pt").read_bytes()
    result = runner.invoke(
        app,
        ["pretrain", str(RECIPES / "demo.yaml"), "--out", str(run), "--data-root", str(root / "data"), *tiny_args()],
        env={"UMCL_DEBUG": ""},
    )
    assert result.exit_code == 2 and "already holds a run" in result.output
    assert (run / "model.pt").read_bytes() == before


def test_resume_after_interruption_reproduces_the_uninterrupted_run(trained, monkeypatch) -> None:
    root, _ = trained
    args = ["pretrain", str(RECIPES / "demo.yaml"), "--data-root", str(root / "data"), *tiny_args()]
    umcl(*args, "--out", str(root / "straight"))

    original = objectives.PretrainObjective.compute_loss
    calls = {"n": 0}

    def interrupt_at_step_five(self, outputs, inputs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(self, outputs, inputs)

    monkeypatch.setattr(objectives.PretrainObjective, "compute_loss", interrupt_at_step_five)
    # Same tokenizer as the straight run (a trained WordPiece vocabulary is not reproducible).
    (root / "cut").mkdir()
    shutil.copy(root / "straight" / "text_encoder.json", root / "cut" / "text_encoder.json")
    result = runner.invoke(app, [*args, "--out", str(root / "cut")], env={"UMCL_DEBUG": ""})
    assert result.exit_code == 130
    assert torch.load(root / "cut" / "checkpoints" / "last.pt", weights_only=True)["step"] == 4
    assert not (root / "cut" / "model.pt").exists()
    monkeypatch.setattr(objectives.PretrainObjective, "compute_loss", original)
    umcl(*args, "--out", str(root / "cut"), "--resume", "latest")

    straight = torch.load(root / "straight" / "model.pt", weights_only=True)["state_dict"]
    resumed = torch.load(root / "cut" / "model.pt", weights_only=True)["state_dict"]
    for key in straight:
        assert torch.allclose(straight[key], resumed[key], atol=1e-6), (
            key,
            (straight[key] - resumed[key]).abs().max().item(),
        )
