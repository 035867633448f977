"""``umcl linear-probe``: logistic regression on frozen image features, per-class AUROC."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import typer

from umcl_cli.cli.common import console, load_for_eval, metric_table, per_class_table
from umcl_cli.cli.errors import handle_errors
from umcl_cli.errors import UsageError
from umcl_cli.evaluation import metrics as M
from umcl_cli.evaluation.features import encode_image_files
from umcl_cli.evaluation.linear_probe import fit_logistic, standardize, subsample
from umcl_cli.evaluation.outputs import default_out, write_metrics
from umcl_cli.evaluation.zeroshot import eval_labels


def run_linear_probe(
    ckpt: Path,
    dataset: str,
    fraction: float = 1.0,
    seed: int = 0,
    out: Path | None = None,
    train_split: str = "train",
    test_split: str = "test",
    bootstrap: int = 1000,
    data_root: str | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    if not 0 < fraction <= 1:
        raise UsageError(f"--fraction {fraction} is outside (0, 1]", "pass a fraction such as 0.01, 0.1 or 1.0")
    model, payload, ds = load_for_eval(ckpt, dataset, data_root)
    if ds.split(train_split).height == 0 or ds.split(test_split).height == 0:
        raise UsageError(
            f"dataset {ds.name} needs '{train_split}' and '{test_split}' rows for a linear probe",
            "probe a dataset with both splits (e.g. the main synthetic set, not its 5x200 subset)",
        )
    classes = ds.classes
    out_dir = out or default_out(ckpt, "linear-probe", ds.name)
    train_frame = ds.split(train_split)
    pick = subsample(train_frame.height, fraction, seed)
    train_paths = [ds.image_file(p) for p in np.array(train_frame["image_path"].to_list())[pick]]
    test_paths = [ds.image_file(p) for p in ds.split(test_split)["image_path"].to_list()]
    size = payload["image_size"]
    x_train = encode_image_files(model, train_paths, size, what="backbone")
    x_test = encode_image_files(model, test_paths, size, what="backbone")
    y_train = torch.from_numpy(eval_labels(ds, train_split, classes)[pick])
    y_test = torch.from_numpy(eval_labels(ds, test_split, classes))
    x_train, x_test = standardize(x_train, x_test)
    head = fit_logistic(x_train, y_train)
    with torch.no_grad():
        scores = torch.sigmoid(head(x_test))
    result = M.multilabel_auroc(scores, y_test, classes)
    eval_classes = [c for c in ds.eval_classes if result["per_class"][c]["auroc"] is not None]
    eval_mean = float(np.mean([result["per_class"][c]["auroc"] for c in eval_classes])) if eval_classes else None
    headline = {"mean_auroc": result["mean_auroc"], "mean_auroc_eval_classes": eval_mean}
    ci = {}
    if bootstrap:
        ci["mean_auroc"] = M.bootstrap_ci(
            lambda s, y: M.multilabel_auroc(s, y, classes)["mean_auroc"],
            scores,
            y_test,
            n=min(bootstrap, 300),
            seed=seed,
        )
    record = {
        "checkpoint": str(ckpt),
        "dataset": ds.name,
        "dataset_dir": str(ds.root),
        "train_split": train_split,
        "test_split": test_split,
        "fraction": fraction,
        "seed": seed,
        "n_train": len(pick),
        "n_test": len(test_paths),
        "classes": classes,
        "eval_classes": eval_classes,
        "metrics": headline,
        "ci95": ci,
        "chance": {"mean_auroc": 0.5, "mean_auroc_eval_classes": 0.5},
        "per_class": result["per_class"],
    }
    write_metrics(out_dir, "linear-probe", record)
    if not quiet:
        console.print(
            metric_table(
                f"linear probe {ds.name} (fraction {fraction}, n_train={len(pick)})", headline, record["chance"], ci
            )
        )
        console.print(per_class_table("per class", result["per_class"], ("auroc", "n_pos", "n_neg")))
        console.print(f"wrote {out_dir / 'metrics.json'}")
    return record


@handle_errors
def linear_probe(
    ckpt: Path = typer.Option(..., "--ckpt", help="model.pt written by `umcl pretrain`"),
    dataset: str = typer.Option(..., "--dataset", help="prepared dataset name or directory"),
    fraction: float = typer.Option(1.0, "--fraction", help="fraction of the training split to fit on, in (0, 1]"),
    seed: int = typer.Option(0, "--seed"),
    out: Path | None = typer.Option(None, "--out"),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0),
    data_root: str | None = typer.Option(None, "--data-root"),
) -> None:
    """Fit a linear classifier on frozen image features of the train split; AUROC on the test split."""
    run_linear_probe(ckpt, dataset, fraction, seed, out, bootstrap=bootstrap, data_root=data_root)
