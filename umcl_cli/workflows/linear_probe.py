"""Linear probe (or full fine-tuning) on frozen image features, over fractions and seeds; AUROC.

Every (fraction, seed) pair fits on a nested, stratified subsample of the train split (see
``evaluation/linear_probe.py``) and scores the test split; protocol ``clip`` chooses the L2 strength
on the validation split from a log-spaced sweep, ``gloria`` trains with Adam and early stopping on
validation AUROC. Results are mean ± std over seeds per fraction, with a bootstrap CI of each
seed-averaged number (resampling patients when the manifest has them), and a data-efficiency curve
when several fractions are given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from umcl_cli.data.resolve import resolve_dataset
from umcl_cli.errors import UsageError
from umcl_cli.evaluation import metrics as M
from umcl_cli.evaluation.feature_cache import split_features
from umcl_cli.evaluation.finetune import FinetuneConfig, finetune_scores
from umcl_cli.evaluation.labels import bootstrap_record, bootstrap_units
from umcl_cli.evaluation.linear_probe import (
    L2_GRID,
    PROTOCOLS,
    check_fractions,
    clip_probe,
    gloria_probe,
    nested_subsets,
)
from umcl_cli.evaluation.outputs import default_out, write_metrics
from umcl_cli.evaluation.plots import curve_png
from umcl_cli.evaluation.zeroshot import eval_labels
from umcl_cli.workflows.loading import image_size, load_eval_model
from umcl_cli.workflows.results import NOT_RECORDED, Result


@dataclass
class LinearProbeResult(Result):
    """``metrics.json`` of ``umcl linear-probe`` (schema in ``evaluation/outputs.py``)."""

    checkpoint: str
    dataset: str
    dataset_dir: str
    mode: str
    finetune: dict[str, Any] | None
    protocol: str | None
    l2: dict[str, Any] | None
    val_split: str | None
    subsets: str
    train_split: str
    test_split: str
    fraction: float
    fractions: list[float]
    seeds: list[int]
    n_train: int
    n_test: int
    classes: list[str]
    eval_classes: list[str]
    metrics: dict[str, Any]
    std: dict[str, float]
    ci95: dict[str, Any]
    chance: dict[str, float]
    bootstrap: dict[str, Any]
    by_fraction: dict[str, Any]
    runs: list[dict[str, Any]]
    per_class: dict[str, Any]
    plots: list[str]
    out_dir: Path = field(default=None, metadata=NOT_RECORDED)


HEADLINE = ("mean_auroc", "mean_auroc_eval_classes")


def metric_key(name: str, fraction: float, largest: float) -> str:
    """Headline key: plain at the largest fraction, ``name@F`` at each smaller one."""
    return name if fraction == largest else f"{name}@{fraction:g}"


def _as_list(value: float | int | Sequence[Any]) -> list[Any]:
    return list(value) if isinstance(value, Sequence) else [value]


def linear_probe(
    ckpt: str | Path,
    dataset: str,
    fraction: float | Sequence[float] = 1.0,
    seed: int | Sequence[int] = 0,
    out: Path | None = None,
    train_split: str = "train",
    test_split: str = "test",
    bootstrap: int = 1000,
    data_root: str | None = None,
    finetune: FinetuneConfig | None = None,
    cache_dir: Path | None = None,
    protocol: str = "clip",
    l2: float | None = None,
    val_split: str = "validate",
    bootstrap_seed: int = 0,
    bootstrap_unit: str = "auto",
) -> LinearProbeResult:
    """``fraction`` and ``seed`` take one value or several; ``finetune`` trains the encoder instead.

    ``protocol`` ``clip`` fits with ``l2`` when given, else sweeps ``L2_GRID`` on ``val_split``;
    ``gloria`` always uses ``val_split`` for early stopping.
    """
    ckpt = Path(ckpt)
    fractions, seeds = sorted(set(_as_list(fraction))), list(dict.fromkeys(_as_list(seed)))
    check_fractions(fractions)
    if protocol not in PROTOCOLS:
        raise UsageError(f"--protocol {protocol} is not a linear-probe protocol", f"use one of: {', '.join(PROTOCOLS)}")
    if l2 is not None and (protocol != "clip" or not l2 > 0):
        raise UsageError(f"--l2 {l2} needs --protocol clip and a positive value", "e.g. --protocol clip --l2 1e-3")
    ds = resolve_dataset(dataset, data_root)
    if ds.split(train_split).height == 0 or ds.split(test_split).height == 0:
        raise UsageError(
            f"dataset {ds.name} needs '{train_split}' and '{test_split}' rows for a linear probe",
            "probe a dataset with both splits (e.g. the main synthetic set, not its 5x200 subset)",
        )
    uses_val = finetune is None and (protocol == "gloria" or l2 is None)
    if uses_val and ds.split(val_split).height == 0:
        raise UsageError(
            f"dataset {ds.name} has no '{val_split}' rows to choose the probe on",
            "pass --val-split NAME, or --l2 VALUE (a fixed strength, protocol clip)",
        )
    test_frame = ds.split(test_split)
    clusters, unit = bootstrap_units(test_frame, bootstrap_unit)
    model = load_eval_model(ckpt)
    out_dir = out or default_out(ckpt, "linear-probe", ds.name)
    classes, size = ds.classes, image_size(model)
    standard = [c for c in ds.eval_classes if c in classes]
    y_train, y_test = eval_labels(ds, train_split, classes), torch.from_numpy(eval_labels(ds, test_split, classes))
    train_paths = np.array([ds.image_file(p) for p in ds.split(train_split)["image_path"].to_list()], dtype=object)
    test_paths = [ds.image_file(p) for p in test_frame["image_path"].to_list()]
    if finetune is None:  # frozen features: encoded once per split, shared by every fraction and seed
        x_train = split_features(model, ckpt, ds, train_split, size, "backbone", cache_dir)
        x_test = split_features(model, ckpt, ds, test_split, size, "backbone", cache_dir)
        if uses_val:
            x_val = split_features(model, ckpt, ds, val_split, size, "backbone", cache_dir)
            y_val = torch.from_numpy(eval_labels(ds, val_split, classes))
    # Means over exactly the classes scorable on the full test set (a resample losing one is skipped).
    scorable = M.scorable_classes(y_test, classes)
    scorable_standard = [c for c in standard if c in scorable]

    def headline(scores: torch.Tensor, labels: torch.Tensor) -> dict[str, float | None]:
        per_class = M.multilabel_auroc(scores, labels, classes)["per_class"]
        return {
            "mean_auroc": M.mean_auroc_over(per_class, scorable),
            "mean_auroc_eval_classes": M.mean_auroc_over(per_class, scorable_standard),
        }

    subsets = {s: nested_subsets(y_train, fractions, s) for s in seeds}
    runs, by_fraction, stacked = [], {}, {}
    for f in fractions:
        per_seed = []
        for s in seeds:
            pick = subsets[s][f]
            run: dict[str, Any] = {"fraction": f, "seed": s, "n_train": len(pick)}
            if finetune is None:
                train_x, train_y = x_train[pick], torch.from_numpy(y_train[pick])
                if protocol == "gloria":
                    fitted = gloria_probe(train_x, train_y, x_test, x_val, y_val, seed=s)
                else:
                    fitted = clip_probe(train_x, train_y, x_test, *((x_val, y_val) if uses_val else ()), l2=l2)
                scores = fitted.scores
                run.update(
                    l2=fitted.l2,
                    val_mean_auroc=fitted.val_mean_auroc,
                    l2_sweep=fitted.sweep,
                    best_epoch=fitted.best_epoch,
                )
            else:
                scores, fitted = finetune_scores(model, train_paths[pick], y_train[pick], test_paths, size, finetune, s)
                run.update(steps=fitted.steps, final_loss=fitted.final_loss)
            result = M.multilabel_auroc(scores, y_test, classes)
            run.update(headline(scores, y_test), per_class={c: v["auroc"] for c, v in result["per_class"].items()})
            runs.append(run)
            per_seed.append(scores)
        stacked[f] = torch.stack(per_seed, dim=1)  # [N_test, seeds, classes]
        mine = [r for r in runs if r["fraction"] == f]
        by_fraction[f"{f:g}"] = {
            "fraction": f,
            "n_train": mine[0]["n_train"],
            **{k: M.mean_std([r[k] for r in mine]) for k in HEADLINE},
            "ci95": (
                M.bootstrap_cis(
                    M.seed_average(headline), stacked[f], y_test, n=bootstrap, seed=bootstrap_seed, clusters=clusters
                )
                if bootstrap
                else {}
            ),
        }

    largest = fractions[-1]
    metrics, std, ci = {}, {}, {}
    for f in fractions:
        entry = by_fraction[f"{f:g}"]
        for name in HEADLINE:
            key = metric_key(name, f, largest)
            metrics[key] = entry[name]["mean"]
            if len(seeds) > 1:
                std[key] = entry[name]["std"]
            if name in entry["ci95"]:
                ci[key] = entry["ci95"][name]
    top = M.multilabel_auroc(stacked[largest].mean(dim=1), y_test, classes)["per_class"]
    per_class = {}
    for c in classes:
        spread = M.mean_std([r["per_class"][c] for r in runs if r["fraction"] == largest])
        per_class[c] = {
            "auroc": spread["mean"],
            "auroc_std": spread["std"],
            **{k: top[c][k] for k in ("n_pos", "n_neg")},
        }
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = []
    if len(fractions) > 1:
        series = {
            label: (
                [by_fraction[f"{f:g}"][k]["mean"] for f in fractions],
                [by_fraction[f"{f:g}"][k]["std"] for f in fractions],
            )
            for label, k in (("all classes", "mean_auroc"), ("standard classes", "mean_auroc_eval_classes"))
        }
        title = f"{'fine-tuning' if finetune else 'linear probe'} {ds.name} (mean ± std over {len(seeds)} seeds)"
        curve = curve_png(fractions, series, out_dir / "data_efficiency.png", title, "labelled fraction", "mean AUROC")
        plots.append(curve.name)
    result = LinearProbeResult(
        checkpoint=str(ckpt),
        dataset=ds.name,
        dataset_dir=str(ds.root),
        mode="finetune" if finetune else "linear",
        finetune=asdict(finetune) if finetune else None,
        protocol=None if finetune else protocol,
        l2=None
        if finetune or protocol != "clip"
        else {
            "selection": "fixed" if l2 is not None else "validation sweep",
            "value": l2,
            "grid": None if l2 is not None else list(L2_GRID),
        },
        val_split=val_split if uses_val else None,
        subsets="nested, stratified (one positive per class first)",
        train_split=train_split,
        test_split=test_split,
        fraction=largest,
        fractions=fractions,
        seeds=seeds,
        n_train=by_fraction[f"{largest:g}"]["n_train"],
        n_test=len(test_paths),
        classes=classes,
        eval_classes=standard,
        metrics=metrics,
        std=std,
        ci95=ci,
        chance=dict.fromkeys(metrics, 0.5),
        bootstrap=bootstrap_record(bootstrap, bootstrap_seed, unit),
        by_fraction=by_fraction,
        runs=runs,
        per_class=per_class,
        plots=plots,
        out_dir=out_dir,
    )
    write_metrics(out_dir, "linear-probe", result.to_record())
    return result
