"""``umcl prompt-tune``: CoOp-style context vectors learned from K images per class, encoders frozen.

With several ``--shots`` and ``--seeds`` it runs every pair, evaluates each zero-shot on
``--eval-dataset`` and prints one table: hand-written templates, the checkpoint's learned prompts and
each shot count as mean ± std over seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import polars as pl
import torch
import typer
from rich.table import Table

from umcl_cli.cli.common import (
    choose_classes,
    console,
    fmt,
    fmt_ci,
    fmt_mean_std,
    load_eval_model,
    load_for_eval,
    parse_list,
)
from umcl_cli.cli.errors import handle_errors
from umcl_cli.data.manifest import PreparedDataset
from umcl_cli.data.resolve import resolve_dataset
from umcl_cli.engine.schedule import OPTIMIZERS
from umcl_cli.errors import UsageError
from umcl_cli.evaluation.feature_cache import split_features
from umcl_cli.evaluation.labels import bootstrap_record, bootstrap_units
from umcl_cli.evaluation.outputs import write_metrics
from umcl_cli.evaluation.plots import curve_png
from umcl_cli.evaluation.prompt_sources import ClassTexts, from_learner, hand_written
from umcl_cli.evaluation.prompt_tuning import PROTOCOLS, TuneSettings, coop_settings, tune_prompts
from umcl_cli.evaluation.shot_sweep import shot_label, summarise_sweep
from umcl_cli.evaluation.zeroshot import (
    check_task,
    eval_labels,
    evaluate,
    headline_metrics,
    scored_rows,
    task_scores,
)

EVAL_SPLIT = "test"


def run_prompt_tune(
    ckpt: Path,
    dataset: str,
    shots: int,
    classes: str | None = None,
    seed: int = 0,
    steps: int = 200,
    lr: float = 2e-3,
    batch_size: int = 32,
    init: str = "checkpoint",
    n_ctx: int | None = None,
    csc: bool = False,
    out: Path | None = None,
    force: bool = False,
    split: str = "train",
    data_root: str | None = None,
    quiet: bool = False,
) -> Path:
    """One (shots, seed) run, no evaluation; returns the path of the learned ``prompts.pt``."""
    check_shots([shots])
    model, payload, ds = load_for_eval(ckpt, dataset, data_root)
    names = choose_classes(ds, classes)
    out_dir = out or default_run_dir(ckpt, ds, shots, seed)
    check_free([out_dir], force)
    settings = TuneSettings(steps, lr, batch_size, init, n_ctx, csc, split)
    path, _, result = tune_prompts(
        model, ds, names, shots, seed, settings, out_dir, payload["image_size"], {"checkpoint": str(ckpt)}
    )
    if not quiet:
        console.print(f"prompt-tune: {result.steps} steps, final loss {result.final_loss:.4f} → {path}")
    return path


def tune_settings(protocol: str, **given: Any) -> TuneSettings:
    """The protocol's defaults with every option the user gave (not None) on top."""
    if protocol not in PROTOCOLS:
        raise UsageError(
            f"--protocol {protocol} is not a prompt-tuning protocol", f"use one of: {', '.join(PROTOCOLS)}"
        )
    if given.get("optimizer") not in (None, *OPTIMIZERS):
        raise UsageError(f"--optimizer {given['optimizer']} is not supported", f"use one of: {', '.join(OPTIMIZERS)}")
    chosen = {k: v for k, v in given.items() if v is not None}
    return coop_settings(**chosen) if protocol == "coop" else replace(TuneSettings(), **chosen)


def check_shots(shots: Sequence[int]) -> None:
    for k in shots:
        if k < 1:
            raise UsageError(f"--shots {k} must be at least 1", "pass --shots 1,2,4,8,16")


def check_free(run_dirs: Sequence[Path], force: bool) -> None:
    """Refuse before any training if a run would replace learned prompts."""
    for run_dir in run_dirs:
        if (run_dir / "prompts.pt").exists() and not force:
            raise UsageError(
                f"{run_dir} already holds learned prompts", "pass --force to replace them, or another --out"
            )


def default_run_dir(ckpt: Path, ds: PreparedDataset, shots: int, seed: int) -> Path:
    return Path(ckpt).parent / f"prompt-tune-{ds.name.replace('/', '_')}-{shots}shot-seed{seed}"


def eval_dataset_for(ds: PreparedDataset, requested: str | None, data_root: str | None) -> PreparedDataset:
    """``--eval-dataset``, else the dataset itself if multiclass, else its ``5x200`` subset directory."""
    if requested:
        return resolve_dataset(requested, data_root)
    if ds.task == "multiclass":
        return ds
    if (ds.root / "5x200" / "dataset.json").is_file():
        return PreparedDataset(ds.root / "5x200")
    raise UsageError(
        f"dataset {ds.name} is {ds.task} and has no 5x200 subset to evaluate learned prompts on",
        "pass --eval-dataset NAME|DIR (a multiclass set), or --no-eval",
    )


def run_prompt_sweep(
    ckpt: Path,
    dataset: str,
    shots: Sequence[int],
    seeds: Sequence[int],
    eval_dataset: str | None = None,
    classes: str | None = None,
    settings: TuneSettings | None = None,
    out: Path | None = None,
    force: bool = False,
    bootstrap: int = 1000,
    data_root: str | None = None,
    cache_dir: Path | None = None,
    evaluate_prompts: bool = True,
    quiet: bool = False,
    bootstrap_seed: int = 0,
    bootstrap_unit: str = "auto",
) -> dict[str, Any]:
    """Every (shots, seed) pair; with ``evaluate_prompts``, zero-shot of each and of both baselines."""
    shots, seeds = list(dict.fromkeys(shots)), list(dict.fromkeys(seeds))
    check_shots(shots)
    settings = settings or TuneSettings()
    ds = resolve_dataset(dataset, data_root)
    names = choose_classes(ds, classes)
    eval_ds = eval_dataset_for(ds, eval_dataset, data_root) if evaluate_prompts else None
    single = len(shots) == 1 and len(seeds) == 1
    out_dir = out or (
        default_run_dir(ckpt, ds, shots[0], seeds[0]) if single else Path(ckpt).parent / f"prompt-tune-{ds.name}"
    )
    run_dirs = {(k, s): out_dir if single else out_dir / f"{k}shot-seed{s}" for k in shots for s in seeds}
    check_free(list(run_dirs.values()), force)
    if eval_ds is not None:
        eval_classes, task = eval_ds.eval_classes, eval_ds.task
        labels = eval_labels(eval_ds, EVAL_SPLIT, eval_classes)
        check_task(eval_ds, task, eval_classes, labels, EVAL_SPLIT)  # before any training
        test_frame = eval_ds.split(EVAL_SPLIT)
        clusters, unit = bootstrap_units(test_frame.filter(pl.Series(scored_rows(labels).numpy())), bootstrap_unit)
        untuned = [c for c in eval_classes if c not in names]
        if settings.csc and untuned:
            raise UsageError(
                f"class-specific prompts would have no context for {untuned} of {eval_ds.name}",
                "tune on those classes too (--classes), or drop --csc",
            )
    model, payload = load_eval_model(ckpt)
    size = payload["image_size"]

    runs: list[dict[str, Any]] = []
    learners = {}
    for (k, s), run_dir in run_dirs.items():
        path, learners[k, s], fitted = tune_prompts(
            model, ds, names, k, s, settings, run_dir, size, {"checkpoint": str(ckpt)}
        )
        runs.append(
            {"shots": k, "seed": s, "prompts": str(path), "steps": fitted.steps, "final_loss": fitted.final_loss}
        )
        if not quiet:
            console.print(f"prompt-tune {k}-shot seed {s}: final loss {fitted.final_loss:.4f} → {path}")
    record: dict[str, Any] = {
        "checkpoint": str(ckpt),
        "dataset": ds.name,
        "dataset_dir": str(ds.root),
        "tuned_classes": names,
        "shots": shots,
        "seeds": seeds,
        "settings": asdict(settings),
        "runs": runs,
        "metrics": {},
    }
    if eval_ds is not None:
        features = split_features(model, ckpt, eval_ds, EVAL_SPLIT, size, cache_dir=cache_dir)

        def zeroshot(texts: ClassTexts, where: Path) -> dict[str, Any]:
            return evaluate(
                model,
                features,
                texts,
                eval_ds,
                EVAL_SPLIT,
                eval_classes,
                where,
                bootstrap,
                task,
                bootstrap_seed=bootstrap_seed,
                bootstrap_unit=bootstrap_unit,
            )

        baselines = {"templates": zeroshot(hand_written(model, eval_classes), out_dir / "zeroshot-templates")}
        if model.prompt_learner is not None:
            learned = from_learner(model, model.prompt_learner, eval_classes, "learned")
            baselines["learned"] = zeroshot(learned, out_dir / "zeroshot-learned")
        stacked: dict[int, list[torch.Tensor]] = {k: [] for k in shots}
        for run in runs:
            k, s = run["shots"], run["seed"]
            texts = from_learner(model, learners[k, s], eval_classes, f"{k}-shot seed {s}")
            result = zeroshot(texts, run_dirs[k, s])
            run.update(metrics=result["metrics"], ci95=result["ci95"])
            stacked[k].append(task_scores(model, features, texts, task))
        standard = [c for c in eval_ds.eval_classes if c in eval_classes]
        baseline_records = {name: {"metrics": b["metrics"], "ci95": b["ci95"]} for name, b in baselines.items()}
        summary = summarise_sweep(
            baseline_records,
            runs,
            {k: torch.stack(v, dim=1) for k, v in stacked.items()},  # [N, seeds, C]
            headline_metrics(task, eval_classes, standard, labels),
            labels,
            baselines["templates"]["chance"],
            bootstrap,
            bootstrap_seed,
            clusters,
        )
        record.update(
            eval_dataset=eval_ds.name,
            eval_dataset_dir=str(eval_ds.root),
            split=EVAL_SPLIT,
            task=task,
            classes=eval_classes,
            **summary,
            baselines=baseline_records,
            bootstrap=bootstrap_record(bootstrap, bootstrap_seed, unit),
            plots=_plot(summary, shots, seeds, baselines, eval_ds, out_dir),
        )
    write_metrics(out_dir, "prompt-tune", record)
    if not quiet and eval_ds is not None:
        console.print(sweep_table(record))
        console.print(f"wrote {out_dir / 'metrics.json'}")
    return record


def _plot(
    summary: dict[str, Any],
    shots: list[int],
    seeds: list[int],
    baselines: dict[str, dict[str, Any]],
    eval_ds: PreparedDataset,
    out_dir: Path,
) -> list[str]:
    if len(shots) < 2:
        return []
    key = next(iter(baselines["templates"]["metrics"]))
    means = [summary["by_shots"][str(k)][key]["mean"] for k in shots]
    stds = [summary["by_shots"][str(k)][key]["std"] for k in shots]
    curve = curve_png(
        shots,
        {"learned by prompt tuning": (means, stds)},
        out_dir / "shots_curve.png",
        f"prompt tuning, zero-shot on {eval_ds.name} (mean ± std over {len(seeds)} seeds)",
        "shots per class",
        key,
        baselines={name: b["metrics"][key] for name, b in baselines.items()},
    )
    return [curve.name]


def sweep_table(record: dict[str, Any]) -> Table:
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
    ckpt: Path = typer.Option(..., "--ckpt", help="model.pt written by `umcl pretrain`"),
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
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="bootstrap resamples for 95% CIs (0 = off)"),
    bootstrap_seed: int = typer.Option(0, "--bootstrap-seed", help="seed of the bootstrap resamples"),
    bootstrap_unit: str = typer.Option(
        "auto", "--bootstrap-unit", help="auto (patient, else study, else image) | patient | study | image"
    ),
    data_root: str | None = typer.Option(None, "--data-root"),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="image feature cache (default: beside the ckpt)"),
) -> None:
    """Learn prompt context vectors on frozen encoders and compare them zero-shot with hand-written prompts.

    Use one set later with `umcl zeroshot --prompts OUT/prompts.pt`.
    """
    run_prompt_sweep(
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
    )
