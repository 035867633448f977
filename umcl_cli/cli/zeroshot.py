"""``umcl zeroshot``: zero-shot classification with the protocol the dataset calls for."""

from __future__ import annotations

from pathlib import Path

import typer

from umcl_cli.cli import sensitivity as sensitivity_view
from umcl_cli.cli.common import console, metric_table, per_class_table
from umcl_cli.cli.errors import handle_errors
from umcl_cli.cli.options import Bootstrap, BootstrapSeed, BootstrapUnit, CacheDir, Ckpt, DataRoot
from umcl_cli.errors import UsageError
from umcl_cli.workflows.sensitivity import sensitivity as run_sensitivity
from umcl_cli.workflows.zeroshot import ZeroShotResult
from umcl_cli.workflows.zeroshot import zeroshot as run_zeroshot


def render(result: ZeroShotResult) -> None:
    draws_note = f", mean ± std over {result.draws} draws" if result.draws else ""
    title = f"zero-shot {result.dataset} ({result.task}, prompts: {result.prompts}, n={result.n}{draws_note})"
    console.print(metric_table(title, result.metrics, result.chance, result.ci95, result.std))
    if result.task != "binary":
        multiclass = result.task == "multiclass"
        columns = ("precision", "recall", "f1", "support") if multiclass else ("auroc", "n_pos", "n_neg")
        console.print(per_class_table("per class", result.per_class, columns))
    console.print(f"wrote {result.out_dir / 'metrics.json'}")


@handle_errors
def zeroshot(
    ckpt: Ckpt,
    dataset: str = typer.Option(..., "--dataset", help="prepared dataset name (under the data root) or directory"),
    prompts: str = typer.Option("auto", "--prompts", help="auto | templates | learned | prompts.pt | prompts.yaml"),
    out: Path | None = typer.Option(None, "--out", help="output directory (default: beside the checkpoint)"),
    split: str = typer.Option("test", "--split"),
    classes: str | None = typer.Option(
        None, "--classes", help="comma-separated (default: all for multilabel, else the standard ones)"
    ),
    bootstrap: Bootstrap = 1000,
    bootstrap_seed: BootstrapSeed = 0,
    bootstrap_unit: BootstrapUnit = "auto",
    data_root: DataRoot = None,
    task: str | None = typer.Option(
        None, "--task", help="multiclass | multilabel | binary (default: the task in the dataset's dataset.json)"
    ),
    cache_dir: CacheDir = None,
    sensitivity: bool = typer.Option(
        False, "--sensitivity", help="score every class under each prompt style and report the spread"
    ),
    styles: Path | None = typer.Option(None, "--styles", help="YAML file of prompt styles for --sensitivity"),
) -> None:
    """Zero-shot evaluation: multiclass, multilabel or binary, as the dataset's dataset.json says."""
    if styles is not None and not sensitivity:
        raise UsageError("--styles only applies to --sensitivity", "add --sensitivity, or drop --styles")
    if sensitivity:
        sensitivity_view.render(
            run_sensitivity(ckpt, dataset, styles, prompts, out, split, classes, data_root, task, cache_dir)
        )
        return
    render(
        run_zeroshot(
            ckpt,
            dataset,
            prompts,
            out,
            split,
            classes,
            bootstrap,
            data_root,
            task,
            cache_dir,
            bootstrap_seed,
            bootstrap_unit,
        )
    )
