"""Prompt tuning: CoOp-style context vectors learned from K images per class on frozen encoders.

``prompt_sweep`` runs every (shots, seed) pair and, unless told not to, evaluates each zero-shot on an
evaluation set beside the hand-written templates and the checkpoint's own learned prompts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl
import torch

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
from umcl_cli.evaluation.shot_sweep import summarise_sweep
from umcl_cli.evaluation.zeroshot import (
    check_task,
    eval_labels,
    evaluate,
    headline_metrics,
    scored_rows,
    task_scores,
)
from umcl_cli.workflows.loading import choose_classes, image_size, load_eval_model
from umcl_cli.workflows.results import NOT_RECORDED, OPTIONAL, Result


@dataclass
class PromptTuneResult(Result):
    """One (shots, seed) run: where its ``prompts.pt`` went and how training ended."""

    prompts: Path
    shots: int
    seed: int
    steps: int
    final_loss: float


@dataclass
class PromptSweepResult(Result):
    """``metrics.json`` of ``umcl prompt-tune`` (schema in ``evaluation/outputs.py``); the evaluation
    keys are absent with ``evaluate_prompts=False``."""

    checkpoint: str
    dataset: str
    dataset_dir: str
    tuned_classes: list[str]
    shots: list[int]
    seeds: list[int]
    settings: dict[str, Any]
    runs: list[dict[str, Any]]
    metrics: dict[str, Any]
    eval_dataset: str | None = field(default=None, metadata=OPTIONAL)
    eval_dataset_dir: str | None = field(default=None, metadata=OPTIONAL)
    split: str | None = field(default=None, metadata=OPTIONAL)
    task: str | None = field(default=None, metadata=OPTIONAL)
    classes: list[str] | None = field(default=None, metadata=OPTIONAL)
    std: dict[str, float] | None = field(default=None, metadata=OPTIONAL)
    ci95: dict[str, Any] | None = field(default=None, metadata=OPTIONAL)
    chance: dict[str, float] | None = field(default=None, metadata=OPTIONAL)
    by_shots: dict[str, Any] | None = field(default=None, metadata=OPTIONAL)
    baselines: dict[str, Any] | None = field(default=None, metadata=OPTIONAL)
    bootstrap: dict[str, Any] | None = field(default=None, metadata=OPTIONAL)
    plots: list[str] | None = field(default=None, metadata=OPTIONAL)
    out_dir: Path = field(default=None, metadata=NOT_RECORDED)


EVAL_SPLIT = "test"


def prompt_tune(
    ckpt: str | Path,
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
) -> PromptTuneResult:
    """One (shots, seed) run, no evaluation: the learned ``prompts.pt`` and how training ended."""
    ckpt = Path(ckpt)
    check_shots([shots])
    ds = resolve_dataset(dataset, data_root)  # the cheap check first
    model = load_eval_model(ckpt)
    names = choose_classes(ds, classes)
    out_dir = out or default_run_dir(ckpt, ds, shots, seed)
    check_free([out_dir], force)
    settings = TuneSettings(steps, lr, batch_size, init, n_ctx, csc, split)
    path, _, result = tune_prompts(
        model, ds, names, shots, seed, settings, out_dir, image_size(model), {"checkpoint": str(ckpt)}
    )
    return PromptTuneResult(prompts=path, shots=shots, seed=seed, steps=result.steps, final_loss=result.final_loss)


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


def prompt_sweep(
    ckpt: str | Path,
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
    bootstrap_seed: int = 0,
    bootstrap_unit: str = "auto",
    on_run: Callable[[dict[str, Any]], None] | None = None,
) -> PromptSweepResult:
    """Every (shots, seed) pair; with ``evaluate_prompts``, zero-shot of each and of both baselines."""
    ckpt = Path(ckpt)
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
    model = load_eval_model(ckpt)
    size = image_size(model)

    runs: list[dict[str, Any]] = []
    learners = {}
    for (k, s), run_dir in run_dirs.items():
        path, learners[k, s], fitted = tune_prompts(
            model, ds, names, k, s, settings, run_dir, size, {"checkpoint": str(ckpt)}
        )
        runs.append(
            {"shots": k, "seed": s, "prompts": str(path), "steps": fitted.steps, "final_loss": fitted.final_loss}
        )
        if on_run is not None:  # lets a caller report each run as it finishes
            on_run(runs[-1])
    result = PromptSweepResult(
        checkpoint=str(ckpt),
        dataset=ds.name,
        dataset_dir=str(ds.root),
        tuned_classes=names,
        shots=shots,
        seeds=seeds,
        settings=asdict(settings),
        runs=runs,
        metrics={},
        out_dir=out_dir,
    )
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
            scored = zeroshot(texts, run_dirs[k, s])
            run.update(metrics=scored["metrics"], ci95=scored["ci95"])
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
        result = replace(
            result,
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
    write_metrics(out_dir, "prompt-tune", result.to_record())
    return result


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
