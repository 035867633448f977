"""``umcl zeroshot``: zero-shot classification with the protocol the dataset calls for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml

from umcl_cli.cli.common import choose_classes, console, load_eval_model, metric_table, per_class_table
from umcl_cli.cli.errors import handle_errors
from umcl_cli.data.resolve import resolve_dataset
from umcl_cli.errors import UsageError
from umcl_cli.evaluation import prompt_sources
from umcl_cli.evaluation.feature_cache import split_features
from umcl_cli.evaluation.outputs import default_out, write_metrics
from umcl_cli.evaluation.zeroshot import check_task, default_classes, eval_labels, evaluate


def run_zeroshot(
    ckpt: Path,
    dataset: str,
    prompts: str = "auto",
    out: Path | None = None,
    split: str = "test",
    classes: str | None = None,
    bootstrap: int = 1000,
    data_root: str | None = None,
    task: str | None = None,
    quiet: bool = False,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    ds = resolve_dataset(dataset, data_root)
    task = task or ds.task
    class_names = choose_classes(ds, classes) if classes else default_classes(ds, task)
    if ds.split(split).height == 0:
        raise UsageError(f"dataset {ds.name} has no '{split}' rows", "choose another --split")
    check_task(ds, task, class_names, eval_labels(ds, split, class_names), split)  # before any encoding
    model, payload = load_eval_model(ckpt)
    out_dir = out or default_out(ckpt, "zeroshot", ds.name)
    texts = prompt_sources.resolve(model, class_names, prompts)
    features = split_features(model, ckpt, ds, split, payload["image_size"], cache_dir=cache_dir)
    result = evaluate(model, features, texts, ds, split, class_names, out_dir, bootstrap=bootstrap, task=task)
    (out_dir / "prompts.yaml").write_text(yaml.safe_dump(texts.record, sort_keys=False))
    record = {
        "checkpoint": str(ckpt),
        "dataset": ds.name,
        "dataset_dir": str(ds.root),
        "split": split,
        "prompts": texts.source,
        **result,
    }
    write_metrics(out_dir, "zeroshot", record)
    if not quiet:
        console.print(
            metric_table(
                f"zero-shot {ds.name} ({result['task']}, prompts: {texts.source}, n={result['n']})",
                result["metrics"],
                result["chance"],
                result["ci95"],
            )
        )
        columns = (
            ("precision", "recall", "f1", "support") if result["task"] == "multiclass" else ("auroc", "n_pos", "n_neg")
        )
        if result["task"] != "binary":
            console.print(per_class_table("per class", result["per_class"], columns))
        console.print(f"wrote {out_dir / 'metrics.json'}")
    return record


@handle_errors
def zeroshot(
    ckpt: Path = typer.Option(..., "--ckpt", help="model.pt written by `umcl pretrain`"),
    dataset: str = typer.Option(..., "--dataset", help="prepared dataset name (under the data root) or directory"),
    prompts: str = typer.Option("auto", "--prompts", help="auto | templates | learned | prompts.pt | prompts.yaml"),
    out: Path | None = typer.Option(None, "--out", help="output directory (default: beside the checkpoint)"),
    split: str = typer.Option("test", "--split"),
    classes: str | None = typer.Option(
        None, "--classes", help="comma-separated (default: all for multilabel, else the standard ones)"
    ),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="bootstrap resamples for 95% CIs (0 = off)"),
    data_root: str | None = typer.Option(None, "--data-root"),
    task: str | None = typer.Option(
        None, "--task", help="multiclass | multilabel | binary (default: the task in the dataset's dataset.json)"
    ),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="image feature cache (default: beside the ckpt)"),
) -> None:
    """Zero-shot evaluation: multiclass, multilabel or binary, as the dataset's dataset.json says."""
    run_zeroshot(ckpt, dataset, prompts, out, split, classes, bootstrap, data_root, task, cache_dir=cache_dir)
