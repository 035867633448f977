"""``umcl linear-probe``: logistic regression on frozen image features (or full fine-tuning), AUROC.

Every (fraction, seed) pair fits on a seeded subsample of the train split and scores the test split;
results are mean ± std over seeds per fraction, with a bootstrap CI of each seed-averaged number, and a
data-efficiency curve when several fractions are given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import typer
from rich.table import Table

from umcl_cli.cli.common import (
    console,
    fmt_ci,
    fmt_mean_std,
    load_eval_model,
    metric_table,
    parse_list,
    per_class_table,
)
from umcl_cli.cli.errors import handle_errors
from umcl_cli.data.manifest import PreparedDataset
from umcl_cli.data.resolve import resolve_dataset
from umcl_cli.errors import UsageError
from umcl_cli.evaluation import metrics as M
from umcl_cli.evaluation.feature_cache import split_features
from umcl_cli.evaluation.finetune import FinetuneConfig, finetune_scores
from umcl_cli.evaluation.linear_probe import check_fractions, probe_scores, subsample
from umcl_cli.evaluation.outputs import default_out, write_metrics
from umcl_cli.evaluation.plots import curve_png
from umcl_cli.evaluation.zeroshot import eval_labels

HEADLINE = ("mean_auroc", "mean_auroc_eval_classes")


def metric_key(name: str, fraction: float, largest: float) -> str:
    """Headline key: plain at the largest fraction, ``name@F`` at each smaller one."""
    return name if fraction == largest else f"{name}@{fraction:g}"


def _as_list(value: float | int | Sequence[Any]) -> list[Any]:
    return list(value) if isinstance(value, Sequence) else [value]


def run_linear_probe(
    ckpt: Path,
    dataset: str,
    fraction: float | Sequence[float] = 1.0,
    seed: int | Sequence[int] = 0,
    out: Path | None = None,
    train_split: str = "train",
    test_split: str = "test",
    bootstrap: int = 1000,
    data_root: str | None = None,
    quiet: bool = False,
    finetune: FinetuneConfig | None = None,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """``fraction`` and ``seed`` take one value or several; ``finetune`` trains the encoder instead."""
    fractions, seeds = sorted(set(_as_list(fraction))), list(dict.fromkeys(_as_list(seed)))
    check_fractions(fractions)
    ds = resolve_dataset(dataset, data_root)
    if ds.split(train_split).height == 0 or ds.split(test_split).height == 0:
        raise UsageError(
            f"dataset {ds.name} needs '{train_split}' and '{test_split}' rows for a linear probe",
            "probe a dataset with both splits (e.g. the main synthetic set, not its 5x200 subset)",
        )
    model, payload = load_eval_model(ckpt)
    out_dir = out or default_out(ckpt, "linear-probe", ds.name)
    classes, size = ds.classes, payload["image_size"]
    standard = [c for c in ds.eval_classes if c in classes]
    y_train, y_test = eval_labels(ds, train_split, classes), torch.from_numpy(eval_labels(ds, test_split, classes))
    train_paths = np.array([ds.image_file(p) for p in ds.split(train_split)["image_path"].to_list()], dtype=object)
    test_paths = [ds.image_file(p) for p in ds.split(test_split)["image_path"].to_list()]
    if finetune is None:  # frozen features: encoded once per split, shared by every fraction and seed
        x_train = split_features(model, ckpt, ds, train_split, size, "backbone", cache_dir)
        x_test = split_features(model, ckpt, ds, test_split, size, "backbone", cache_dir)

    def headline(scores: torch.Tensor, labels: torch.Tensor) -> dict[str, float | None]:
        r = M.multilabel_auroc(scores, labels, classes)
        return {"mean_auroc": r["mean_auroc"], "mean_auroc_eval_classes": M.mean_of(r["per_class"], standard)}

    runs, by_fraction, stacked = [], {}, {}
    for f in fractions:
        per_seed = []
        for s in seeds:
            pick = subsample(len(train_paths), f, s)
            run: dict[str, Any] = {"fraction": f, "seed": s, "n_train": len(pick)}
            if finetune is None:
                scores = probe_scores(x_train[pick], torch.from_numpy(y_train[pick]), x_test)
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
            "ci95": M.bootstrap_cis(M.seed_average(headline), stacked[f], y_test, n=bootstrap) if bootstrap else {},
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
    record = {
        "checkpoint": str(ckpt),
        "dataset": ds.name,
        "dataset_dir": str(ds.root),
        "mode": "finetune" if finetune else "linear",
        "finetune": asdict(finetune) if finetune else None,
        "train_split": train_split,
        "test_split": test_split,
        "fraction": largest,
        "fractions": fractions,
        "seeds": seeds,
        "n_train": by_fraction[f"{largest:g}"]["n_train"],
        "n_test": len(test_paths),
        "classes": classes,
        "eval_classes": standard,
        "metrics": metrics,
        "std": std,
        "ci95": ci,
        "chance": dict.fromkeys(metrics, 0.5),
        "by_fraction": by_fraction,
        "runs": runs,
        "per_class": per_class,
        "plots": plots,
    }
    write_metrics(out_dir, "linear-probe", record)
    if not quiet:
        _print(record, ds)
        console.print(f"wrote {out_dir / 'metrics.json'}")
    return record


def _print(record: dict[str, Any], ds: PreparedDataset) -> None:
    what = "fine-tuning" if record["mode"] == "finetune" else "linear probe"
    if len(record["fractions"]) == 1:
        console.print(
            metric_table(
                f"{what} {ds.name} (fraction {record['fraction']:g}, n_train={record['n_train']}, "
                f"seeds {record['seeds']})",
                record["metrics"],
                record["chance"],
                record["ci95"],
                record["std"],
            )
        )
    else:
        table = Table(title=f"{what} {ds.name}: mean AUROC, mean ± std over seeds {record['seeds']}")
        for column in ("fraction", "n_train", "all classes", "95% CI", "standard classes", "95% CI"):
            table.add_column(column, justify="right")
        for key, entry in record["by_fraction"].items():
            all_, std_ = entry["mean_auroc"], entry["mean_auroc_eval_classes"]
            table.add_row(
                key,
                str(entry["n_train"]),
                fmt_mean_std(all_["mean"], all_["std"] if all_["n"] > 1 else None),
                fmt_ci(entry["ci95"].get("mean_auroc")),
                fmt_mean_std(std_["mean"], std_["std"] if std_["n"] > 1 else None),
                fmt_ci(entry["ci95"].get("mean_auroc_eval_classes")),
            )
        console.print(table)
    several = len(record["seeds"]) > 1
    per_class = {
        c: {**v, "auroc": fmt_mean_std(v["auroc"], v["auroc_std"] if several else None)}
        for c, v in record["per_class"].items()
    }
    title = f"per class (fraction {record['fraction']:g})"
    console.print(per_class_table(title, per_class, ("auroc", "n_pos", "n_neg")))


@handle_errors
def linear_probe(
    ckpt: Path = typer.Option(..., "--ckpt", help="model.pt written by `umcl pretrain`"),
    dataset: str = typer.Option(..., "--dataset", help="prepared dataset name or directory"),
    fraction: str = typer.Option("1.0", "--fraction", help="fraction(s) of the train split, in (0, 1]: 0.01,0.1,1.0"),
    seeds: str = typer.Option("0", "--seeds", "--seed", help="subsampling / training seeds: 0,1,2"),
    out: Path | None = typer.Option(None, "--out"),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="bootstrap resamples for 95% CIs (0 = off)"),
    data_root: str | None = typer.Option(None, "--data-root"),
    finetune: bool = typer.Option(False, "--finetune", help="train the whole image encoder with the linear head"),
    finetune_steps: int = typer.Option(200, "--finetune-steps", min=1),
    finetune_lr: float = typer.Option(1e-4, "--finetune-lr", help="encoder learning rate (the head gets 10x)"),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="image feature cache (default: beside the ckpt)"),
) -> None:
    """Linear probe (or --finetune) on fractions of the train split, over seeds; AUROC on the test split."""
    config = FinetuneConfig(steps=finetune_steps, lr=finetune_lr, head_lr=10 * finetune_lr) if finetune else None
    run_linear_probe(
        ckpt,
        dataset,
        parse_list(fraction, float, "--fraction"),
        parse_list(seeds, int, "--seeds"),
        out,
        bootstrap=bootstrap,
        data_root=data_root,
        finetune=config,
        cache_dir=cache_dir,
    )
