"""Linear probe over fractions and seeds, its protocols, nested stratified fractions, the feature cache,
and fine-tuning through the engine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from e2e_helpers import RECIPES, TINY, prepare_tiny
from typer.testing import CliRunner

from umcl_cli.cli.app import app
from umcl_cli.evaluation import feature_cache, finetune
from umcl_cli.evaluation.finetune import FinetuneConfig, FinetuneObjective
from umcl_cli.evaluation.linear_probe import L2_GRID, clip_probe, nested_subsets
from umcl_cli.workflows.linear_probe import linear_probe
from umcl_cli.workflows.pretrain import pretrain

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("eval-lp")
    prepare_tiny(root / "data")
    return root, pretrain(RECIPES / "demo.yaml", TINY, root / "run", data_root=str(root / "data")).model_path


def probe(root: Path, ckpt: Path, *args: str):
    return runner.invoke(
        app,
        ["linear-probe", "--ckpt", str(ckpt), "--dataset", "synthetic", "--data-root", str(root / "data"), *args],
        terminal_width=200,
        env={"UMCL_DEBUG": ""},
    )


def test_mean_and_std_over_seeds_per_fraction(trained) -> None:
    root, ckpt = trained
    out = root / "lp"
    # A fixed L2 keeps this aggregation test fast; the validation sweep has its own test below.
    args = ("--fraction", "1.0,0.25", "--seeds", "0,1,2", "--bootstrap", "20", "--l2", "1e-3", "--out", str(out))
    result = probe(root, ckpt, *args)
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["fractions"] == [0.25, 1.0] and doc["seeds"] == [0, 1, 2] and doc["fraction"] == 1.0
    assert len(doc["runs"]) == 6
    for fraction in doc["fractions"]:
        for name in ("mean_auroc", "mean_auroc_eval_classes"):
            values = np.array([r[name] for r in doc["runs"] if r["fraction"] == fraction])
            key = name if fraction == 1.0 else f"{name}@{fraction:g}"
            assert doc["metrics"][key] == pytest.approx(values.mean(), abs=1e-12)
            assert doc["std"][key] == pytest.approx(values.std(), abs=1e-12)
            assert doc["ci95"][key]["estimate"] == pytest.approx(values.mean(), abs=1e-9)
            entry = doc["by_fraction"][f"{fraction:g}"][name]
            assert entry["values"] == pytest.approx(list(values)) and entry["std"] == pytest.approx(values.std())
    # A seeded subsample differs per seed below 100%, so the seeds disagree there.
    assert doc["std"]["mean_auroc@0.25"] > 0
    for run in doc["runs"]:
        per_class = [v for v in run["per_class"].values() if v is not None]
        assert run["mean_auroc"] == pytest.approx(np.mean(per_class))
    assert doc["plots"] == ["data_efficiency.png"] and (out / "data_efficiency.png").is_file()


def test_feature_cache_hit_avoids_re_encoding(trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, ckpt = trained
    encoded: list[int] = []
    original = feature_cache.encode_image_files

    def counting(model, paths, *args, **kwargs):
        encoded.append(len(paths))
        return original(model, paths, *args, **kwargs)

    monkeypatch.setattr(feature_cache, "encode_image_files", counting)
    kwargs = {
        "bootstrap": 0,
        "data_root": str(root / "data"),
        "cache_dir": tmp_path / "cache",
        "l2": 1e-3,  # the cache is under test, not the L2 sweep
    }
    first = linear_probe(ckpt, "synthetic", [0.5, 1.0], 0, out=tmp_path / "a", **kwargs)
    assert len(encoded) == 2  # train and test split once each for both fractions (a fixed L2 needs no validation)
    second = linear_probe(ckpt, "synthetic", [0.5, 1.0], 0, out=tmp_path / "b", **kwargs)
    assert len(encoded) == 2  # all from the cache
    assert second.metrics == first.metrics
    # Another checkpoint file (other bytes) must not read the first one's features.
    other = tmp_path / "other.pt"
    payload = torch.load(ckpt, weights_only=True)
    payload["recipe_hash"] = "changed"
    torch.save(payload, other)
    linear_probe(other, "synthetic", 1.0, 0, out=tmp_path / "c", **kwargs)
    assert len(encoded) == 4


@pytest.mark.parametrize("fractions", ["0.1,0", "0.5,1.5", "-0.2"])
def test_a_fraction_outside_the_unit_interval_is_refused(trained, fractions: str) -> None:
    root, ckpt = trained
    result = probe(root, ckpt, "--fraction", fractions)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "outside (0, 1]" in lines[0]


def test_a_fraction_that_is_not_a_number_is_refused(trained) -> None:
    root, ckpt = trained
    result = probe(root, ckpt, "--fraction", "0.1,ten")
    assert result.exit_code == 2 and "not a comma-separated list of float" in result.output


def test_finetune_trains_the_encoder_through_the_engine(trained, monkeypatch: pytest.MonkeyPatch) -> None:
    root, ckpt = trained
    calls = []
    original = finetune.fit

    def spy(task, *args, **kwargs):
        before = [p.detach().clone() for p in task.module.encoder.parameters()]
        result = original(task, *args, **kwargs)
        changed = any(not torch.equal(b, p) for b, p in zip(before, task.module.encoder.parameters(), strict=True))
        calls.append((type(task), changed, result.steps))
        return result

    monkeypatch.setattr(finetune, "fit", spy)
    doc = linear_probe(
        ckpt,
        "synthetic",
        1.0,
        [0, 1],
        out=root / "ft",
        bootstrap=10,
        data_root=str(root / "data"),
        finetune=FinetuneConfig(steps=2, batch_size=8),
    ).to_record()
    assert calls == [(FinetuneObjective, True, 2), (FinetuneObjective, True, 2)]
    assert doc["mode"] == "finetune" and doc["finetune"]["steps"] == 2
    assert doc["metrics"]["mean_auroc"] is not None and set(doc["ci95"]) == set(doc["metrics"])
    assert all(r["steps"] == 2 for r in doc["runs"])


def test_probe_records_the_protocol_and_the_chosen_l2(trained) -> None:
    root, ckpt = trained
    kwargs = {"bootstrap": 5, "data_root": str(root / "data")}
    doc = linear_probe(ckpt, "synthetic", [0.5, 1.0], 0, out=root / "lp-clip", bootstrap_seed=3, **kwargs).to_record()
    assert doc["protocol"] == "clip" and doc["l2"]["selection"] == "validation sweep"
    assert doc["val_split"] == "validate" and doc["bootstrap"] == {
        "resamples": 5,
        "seed": 3,
        "unit": "patient",
        "level": 0.95,
    }
    for run in doc["runs"]:
        assert len(run["l2_sweep"]) == len(L2_GRID) and run["l2"] in L2_GRID
        best = max(v for v in run["l2_sweep"].values() if v is not None)
        assert run["val_mean_auroc"] == best
    fixed = linear_probe(ckpt, "synthetic", 1.0, 0, out=root / "lp-fixed", l2=1e-3, **kwargs).to_record()
    assert fixed["l2"] == {"selection": "fixed", "value": 1e-3, "grid": None} and fixed["runs"][0]["l2"] == 1e-3
    gloria = linear_probe(ckpt, "synthetic", 1.0, 0, out=root / "lp-gloria", protocol="gloria", **kwargs).to_record()
    assert gloria["protocol"] == "gloria" and gloria["runs"][0]["best_epoch"] >= 1
    assert gloria["metrics"]["mean_auroc"] is not None


def test_an_unknown_protocol_is_refused(trained) -> None:
    root, ckpt = trained
    result = probe(root, ckpt, "--protocol", "simclr")
    assert result.exit_code == 2 and "use one of: clip, gloria" in result.output
    result = probe(root, ckpt, "--protocol", "gloria", "--l2", "1e-3")
    assert result.exit_code == 2 and "--l2 0.001 needs --protocol clip" in result.output


def test_fractions_are_nested_and_keep_a_positive_of_every_class() -> None:
    rng = np.random.default_rng(0)
    labels = (rng.random((2000, 4)) < [0.3, 0.1, 0.02, 0.005]).astype(np.float32)
    labels[rng.random(2000) < 0.1, 0] = np.nan
    for seed in range(10):
        subsets = nested_subsets(labels, [0.01, 0.1, 1.0], seed)
        small, mid, full = subsets[0.01], subsets[0.1], subsets[1.0]
        assert set(small) <= set(mid) <= set(full) and len(full) == 2000
        assert len(small) == 20 and len(mid) == 200
        assert (np.nansum(labels[small] == 1, axis=0) >= 1).all()  # the 0.5 % class too
        # Stratified: the 10 % subset's prevalence of the 30 % class stays close to it.
        assert abs(np.nanmean(labels[mid, 0]) - np.nanmean(labels[:, 0])) < 0.03
    assert not np.array_equal(nested_subsets(labels, [0.1], 0)[0.1], nested_subsets(labels, [0.1], 1)[0.1])


def test_the_l2_sweep_picks_the_best_validation_auroc() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(300, 20, generator=gen)
    y = (x[:, :2] + 0.5 * torch.randn(300, 2, generator=gen) > 0).double()
    fit = clip_probe(x[:150], y[:150], x[250:], x[150:250], y[150:250], grid=(1e-4, 1e-1, 1e2))
    assert set(fit.sweep) == {"0.0001", "0.1", "100"}
    assert fit.val_mean_auroc == max(fit.sweep.values()) and fit.sweep[f"{fit.l2:g}"] == fit.val_mean_auroc
    assert fit.scores.shape == (50, 2)
