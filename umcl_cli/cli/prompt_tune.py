"""``umcl prompt-tune``: CoOp-style context vectors learned from K images per class, encoders frozen.

With several ``--shots`` and ``--seeds`` it runs every pair, evaluates each zero-shot on
``--eval-dataset`` and prints one table: hand-written templates, the checkpoint's learned prompts and
each shot count as mean ± std over seeds. The work is ``workflows/prompt_tuning.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from umcl_cli.cli.common import console, fmt, fmt_ci, fmt_mean_std, parse_list
from umcl_cli.cli.errors import handle_errors
from umcl_cli.cli.options import Bootstrap, BootstrapSeed, BootstrapUnit, CacheDir, Ckpt, DataRoot
from umcl_cli.evaluation.shot_sweep import shot_label
from umcl_cli.workflows.prompt_tuning import PromptSweepResult, tune_settings
from umcl_cli.workflows.prompt_tuning import prompt_sweep as run_prompt_sweep


def report_run(run: dict[str, Any]) -> None:
    console.print(
        f"prompt-tune {run['shots']}-shot seed {run['seed']}: final loss {run['final_loss']:.4f} → {run['prompts']}"
    )


def sweep_table(result: PromptSweepResult) -> Table:
    record = result.to_record()
    keys = list(record["baselines"]["templates"]["metrics"])
    table = Table(
        title=f"prompt tuning → zero-shot {record['eval_dataset']} ({record['task']}); "
        f"K-shot rows: mean ± std over seeds {record['seeds']}"
    )
    table.add_column("prompts")
    for key in keys:
        table.add_column(key, justify="right")
        table.add_column("95% CI", justify="right")
    rows = [("hand-written", "templates"), ("checkpoint", "learned")]
    rows += [(shot_label(k), shot_label(k)) for k in record["shots"]]
    for title, suffix in rows:
        if f"{keys[0]}@{suffix}" not in record["metrics"]:
            continue
        cells = []
        for key in keys:
            flat = f"{key}@{suffix}"
            cells += [fmt_mean_std(record["metrics"][flat], record["std"].get(flat)), fmt_ci(record["ci95"].get(flat))]
        table.add_row(title, *cells)
    table.add_row("chance", *(c for key in keys for c in (fmt(record["chance"].get(f"{key}@templates")), "")))
    return table


@handle_errors
def prompt_tune(
    ckpt: Ckpt,
    dataset: str = typer.Option(..., "--dataset", help="prepared dataset whose train split gives the shots"),
    shots: str = typer.Option("16", "--shots", help="images per class (K), one or a list: 1,2,4,8,16"),
    seeds: str = typer.Option("0", "--seeds", "--seed", help="one seed or a list: 0,1,2"),
    classes: str | None = typer.Option(
        None, "--classes", help="comma-separated (default: the dataset's evaluation classes)"
    ),
    eval_dataset: str | None = typer.Option(
        None,
        "--eval-dataset",
        help="multiclass set to evaluate on (default: DATASET if multiclass, else DATASET/5x200)",
    ),
    no_eval: bool = typer.Option(False, "--no-eval", help="only learn the prompts"),
    protocol: str = typer.Option(
        "umcl",
        "--protocol",
        help="umcl (checkpoint context, AdamW, 200 steps) | coop (CoOp's defaults: 16 random vectors, SGD "
        "lr 0.002, cosine, 50/100/200 epochs by shots, batch 32); the options below override single values",
    ),
    steps: int | None = typer.Option(None, "--steps", min=1, help="training steps (umcl default: 200)"),
    epochs: float | None = typer.Option(
        None, "--epochs", min=0.001, help="budget in epochs as CoOp counts them (overrides --steps)"
    ),
    lr: float | None = typer.Option(None, "--lr", help="learning rate (default 0.002)"),
    optimizer: str | None = typer.Option(None, "--optimizer", help="adamw | sgd (default: adamw; coop: sgd)"),
    init: str | None = typer.Option(
        None, "--init", help="checkpoint | phrase | random | 'your own words' (default: checkpoint; coop: random)"
    ),
    n_ctx: int | None = typer.Option(
        None,
        "--n-ctx",
        min=1,
        help="context vectors (default: as many as the init words, 4 for random; coop 16); pads or trims init words",
    ),
    csc: bool = typer.Option(False, "--csc", help="class-specific contexts"),
    out: Path | None = typer.Option(None, "--out", help="output directory (prompts.pt, metrics.json)"),
    force: bool = typer.Option(False, "--force", help="replace prompts already in --out"),
    bootstrap: Bootstrap = 1000,
    bootstrap_seed: BootstrapSeed = 0,
    bootstrap_unit: BootstrapUnit = "auto",
    data_root: DataRoot = None,
    cache_dir: CacheDir = None,
) -> None:
    """Learn prompt context vectors on frozen encoders and compare them zero-shot with hand-written prompts.

    Use one set later with `umcl zeroshot --prompts OUT/prompts.pt`.
    """
    result = run_prompt_sweep(
        ckpt,
        dataset,
        parse_list(shots, int, "--shots"),
        parse_list(seeds, int, "--seeds"),
        eval_dataset,
        classes,
        tune_settings(
            protocol, csc=csc, steps=steps, epochs=epochs, lr=lr, optimizer=optimizer, init=init, n_ctx=n_ctx
        ),
        out,
        force,
        bootstrap,
        data_root,
        cache_dir,
        evaluate_prompts=not no_eval,
        bootstrap_seed=bootstrap_seed,
        bootstrap_unit=bootstrap_unit,
        on_run=report_run,
    )
    if result.eval_dataset is not None:
        console.print(sweep_table(result))
        console.print(f"wrote {result.out_dir / 'metrics.json'}")
