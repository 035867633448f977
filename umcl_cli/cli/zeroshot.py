"""``umcl zeroshot``: zero-shot classification with the protocol the dataset calls for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml

from umcl_cli.cli.common import choose_classes, console, load_for_eval, metric_table, per_class_table
from umcl_cli.cli.errors import handle_errors
from umcl_cli.evaluation import prompt_sources
from umcl_cli.evaluation.outputs import default_out, write_metrics
from umcl_cli.evaluation.zeroshot import evaluate, zeroshot_scores


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
) -> dict[str, Any]:
    model, payload, ds = load_for_eval(ckpt, dataset, data_root)
    class_names = choose_classes(ds, classes)
    out_dir = out or default_out(ckpt, "zeroshot", ds.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    texts = prompt_sources.resolve(model, class_names, prompts)
    features, _ = zeroshot_scores(model, ds, split, payload["image_size"])
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
                f"zero-shot {ds.name} [{result['task']}, prompts: {texts.source}, n={result['n']}]",
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
    classes: str | None = typer.Option(None, "--classes", help="comma-separated classes (default: the dataset's)"),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="bootstrap resamples for 95% CIs (0 = off)"),
    data_root: str | None = typer.Option(None, "--data-root"),
) -> None:
    """Zero-shot evaluation: multiclass, multilabel or binary, as the dataset's dataset.json says."""
    run_zeroshot(ckpt, dataset, prompts, out, split, classes, bootstrap, data_root)
