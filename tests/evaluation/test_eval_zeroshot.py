"""Zero-shot protocols, prompt sensitivity and prompt-tuning sweeps on a tiny trained model, checked
against sklearn/numpy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from e2e_helpers import RECIPES, TINY, prepare_tiny
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from umcl_cli.cli.app import app
from umcl_cli.data.manifest import CHEXPERT_COMPETITION
from umcl_cli.data.resolve import resolve_dataset
from umcl_cli.evaluation import prompt_tuning
from umcl_cli.evaluation.features import encode_image_files
from umcl_cli.evaluation.prompt_sources import hand_written
from umcl_cli.evaluation.zeroshot import pair_probability
from umcl_cli.model.checkpoint import load_model
from umcl_cli.workflows.pretrain import pretrain

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
    return root, pretrain(RECIPES / "demo.yaml", TINY, root / "run", data_root=str(root / "data")).model_path


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


def test_bootstrap_seed_and_unit_are_recorded_and_change_the_interval(trained) -> None:
    root, ckpt = trained
    docs = []
    for seed in ("1", "2"):
        out = root / f"zs-seed{seed}"
        args = ("--dataset", "synthetic", "--bootstrap", "30", "--bootstrap-seed", seed, "--out", str(out))
        assert zeroshot(root, ckpt, *args).exit_code == 0
        docs.append(json.loads((out / "metrics.json").read_text()))
    assert docs[0]["bootstrap"] == {"resamples": 30, "seed": 1, "unit": "patient", "level": 0.95}
    assert docs[0]["metrics"] == docs[1]["metrics"] and docs[0]["ci95"] != docs[1]["ci95"]
    result = zeroshot(root, ckpt, "--dataset", "synthetic", "--bootstrap-unit", "ward")
    assert_one_line_error(result, "--bootstrap-unit ward is not a unit", "auto, patient, study, image")


def test_sensitivity_scores_every_style_and_places_the_learned_prompts(trained) -> None:
    root, ckpt = trained
    out = root / "zs-sens"
    result = zeroshot(root, ckpt, "--dataset", "synthetic/5x200", "--sensitivity", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "prompt sensitivity" in result.output and "range (max − min)" in result.output
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["mode"] == "sensitivity" and len(doc["styles"]) >= 10
    accuracies = [s["metrics"]["accuracy"] for s in doc["styles"].values()]
    spread = doc["spread"]["accuracy"]
    assert spread["range"] == pytest.approx(max(accuracies) - min(accuracies))
    assert spread["std"] == pytest.approx(np.std(accuracies))
    assert set(doc["compared"]) == {"templates", "learned"}  # the demo checkpoint has a prompt learner
    learned = doc["compared"]["learned"]["standing"]["accuracy"]
    assert learned["beats"] == sum(a < learned["value"] for a in accuracies) and learned["of"] == len(accuracies)
    assert doc["styles"]["synonym"]["prompts"]["Atelectasis"]["positive"] == ["collapsed lung tissue"]
    assert (out / "prompt_sensitivity.png").is_file()


def test_sensitivity_reads_a_styles_file(trained, tmp_path: Path) -> None:
    root, ckpt = trained
    styles = tmp_path / "styles.yaml"
    styles.write_text("terse:\n  positive: '{}'\nreport:\n  positive: 'the study shows {}'\n  wording: synonym\n")
    out = tmp_path / "sens"
    args = ("--dataset", "synthetic/5x200", "--sensitivity", "--styles", str(styles), "--out", str(out))
    assert zeroshot(root, ckpt, *args).exit_code == 0
    doc = json.loads((out / "metrics.json").read_text())
    assert list(doc["styles"]) == ["terse", "report"]
    assert doc["styles"]["report"]["prompts"]["Atelectasis"]["positive"] == ["the study shows collapsed lung tissue"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("broken:\n  positive: 'no placeholder'\n")
    result = zeroshot(root, ckpt, "--dataset", "synthetic/5x200", "--sensitivity", "--styles", str(bad))
    assert_one_line_error(result, "must be a string with exactly one {}")


def test_prompt_tune_coop_protocol_trains_with_sgd_for_coops_epochs(trained, monkeypatch: pytest.MonkeyPatch) -> None:
    root, ckpt = trained
    seen = []
    original = prompt_tuning.fit

    def spy(task, dataset, collate, sampler, cfg, *args, **kwargs):
        seen.append((cfg, task.param_groups()[0]["weight_decay"], task.module.learner.ctx.shape))
        return original(task, dataset, collate, sampler, cfg, *args, **kwargs)

    monkeypatch.setattr(prompt_tuning, "fit", spy)
    args = ("--shots", "1", "--protocol", "coop", "--epochs", "2", "--no-eval", "--out", str(root / "coop"))
    result = invoke(
        "prompt-tune", "--ckpt", str(ckpt), "--dataset", "synthetic", "--data-root", str(root / "data"), *args
    )
    assert result.exit_code == 0, result.output
    (cfg, weight_decay, ctx_shape) = seen[0]
    assert (cfg.optimizer, cfg.lr, cfg.momentum, cfg.warmup_lr, cfg.grad_clip) == ("sgd", 2e-3, 0.9, 1e-5, None)
    assert weight_decay == 5e-4 and ctx_shape[0] == 16  # 16 random context vectors
    assert cfg.max_steps == 2 and cfg.warmup_steps == 1  # 5 images < batch 32: one step per epoch


def test_zeroshot_on_several_draws_reports_mean_and_std_over_them(trained, tmp_path: Path) -> None:
    root, ckpt = trained
    source = root / "data" / "synthetic" / "5x200"
    multi = tmp_path / "multi"
    shutil.copytree(source, multi)
    shutil.copytree(source, multi / "draw-1")
    other = pl.read_parquet(multi / "draw-1" / "manifest.parquet")
    other[::2].write_parquet(multi / "draw-1" / "manifest.parquet")  # a different draw: half the rows
    info = json.loads((multi / "dataset.json").read_text())
    (multi / "dataset.json").write_text(json.dumps({**info, "draw_dirs": ["draw-1"]}))
    out = tmp_path / "zs-draws"
    result = zeroshot(root, ckpt, "--dataset", str(multi), "--bootstrap", "10", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "mean ± std over 2 draws" in result.output
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["draws"] == 2 and [d["n"] for d in doc["by_draw"]] == [other.height, (other.height + 1) // 2]
    for key, value in doc["metrics"].items():
        values = [d["metrics"][key] for d in doc["by_draw"]]
        assert value == pytest.approx(np.mean(values)) and doc["std"][key] == pytest.approx(np.std(values))
    assert doc["by_draw"][1]["ci95"]["accuracy"]["n"] == 10
