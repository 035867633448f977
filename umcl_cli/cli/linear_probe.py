"""``umcl linear-probe``: a linear head on frozen image features (or full fine-tuning), AUROC.

The protocol lives in ``workflows/linear_probe.py``; this module is the command line and the tables.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from umcl_cli.cli.common import console, fmt_ci, fmt_mean_std, metric_table, parse_list, per_class_table
from umcl_cli.cli.errors import handle_errors
from umcl_cli.cli.options import Bootstrap, BootstrapSeed, BootstrapUnit, CacheDir, Ckpt, DataRoot
from umcl_cli.evaluation.finetune import FinetuneConfig
from umcl_cli.workflows.linear_probe import LinearProbeResult
from umcl_cli.workflows.linear_probe import linear_probe as run_linear_probe


def render(result: LinearProbeResult) -> None:
    what = "fine-tuning" if result.mode == "finetune" else "linear probe"
    if len(result.fractions) == 1:
        console.print(
            metric_table(
                f"{what} {result.dataset} (fraction {result.fraction:g}, n_train={result.n_train}, "
                f"seeds {result.seeds})",
                result.metrics,
                result.chance,
                result.ci95,
                result.std,
            )
        )
    else:
        table = Table(title=f"{what} {result.dataset}: mean AUROC, mean ± std over seeds {result.seeds}")
        for column in ("fraction", "n_train", "all classes", "95% CI", "standard classes", "95% CI"):
            table.add_column(column, justify="right")
        for key, entry in result.by_fraction.items():
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
    several = len(result.seeds) > 1
    per_class = {
        c: {**v, "auroc": fmt_mean_std(v["auroc"], v["auroc_std"] if several else None)}
        for c, v in result.per_class.items()
    }
    title = f"per class (fraction {result.fraction:g})"
    console.print(per_class_table(title, per_class, ("auroc", "n_pos", "n_neg")))
    console.print(f"wrote {result.out_dir / 'metrics.json'}")


@handle_errors
def linear_probe(
    ckpt: Ckpt,
    dataset: str = typer.Option(..., "--dataset", help="prepared dataset name or directory"),
    fraction: str = typer.Option("1.0", "--fraction", help="fraction(s) of the train split, in (0, 1]: 0.01,0.1,1.0"),
    seeds: str = typer.Option("0", "--seeds", "--seed", help="subsampling / training seeds: 0,1,2"),
    out: Path | None = typer.Option(None, "--out"),
    bootstrap: Bootstrap = 1000,
    data_root: DataRoot = None,
    finetune: bool = typer.Option(False, "--finetune", help="train the whole image encoder with the linear head"),
    finetune_steps: int = typer.Option(200, "--finetune-steps", min=1),
    finetune_lr: float = typer.Option(1e-4, "--finetune-lr", help="encoder learning rate (the head gets 10x)"),
    protocol: str = typer.Option(
        "clip", "--protocol", help="clip (L-BFGS logistic, L2 swept on --val-split) | gloria (Adam, early stopping)"
    ),
    l2: float | None = typer.Option(None, "--l2", help="fixed L2 strength for --protocol clip (default: sweep)"),
    val_split: str = typer.Option("validate", "--val-split", help="split that chooses the L2 strength / best epoch"),
    bootstrap_seed: BootstrapSeed = 0,
    bootstrap_unit: BootstrapUnit = "auto",
    cache_dir: CacheDir = None,
) -> None:
    """Linear probe (or --finetune) on fractions of the train split, over seeds; AUROC on the test split."""
    config = FinetuneConfig(steps=finetune_steps, lr=finetune_lr, head_lr=10 * finetune_lr) if finetune else None
    result = run_linear_probe(
        ckpt,
        dataset,
        parse_list(fraction, float, "--fraction"),
        parse_list(seeds, int, "--seeds"),
        out,
        bootstrap=bootstrap,
        data_root=data_root,
        finetune=config,
        cache_dir=cache_dir,
        protocol=protocol,
        l2=l2,
        val_split=val_split,
        bootstrap_seed=bootstrap_seed,
        bootstrap_unit=bootstrap_unit,
    )
    render(result)
