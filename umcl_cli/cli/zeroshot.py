"""``umcl zeroshot``: zero-shot classification with the protocol the dataset calls for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml

from umcl_cli.cli.common import console, load_eval_model, metric_table, per_class_table, zeroshot_problem
from umcl_cli.cli.errors import handle_errors
from umcl_cli.data.manifest import PreparedDataset
from umcl_cli.errors import UsageError
from umcl_cli.evaluation import metrics as M
from umcl_cli.evaluation import prompt_sources
from umcl_cli.evaluation.feature_cache import split_features
from umcl_cli.evaluation.labels import bootstrap_units
from umcl_cli.evaluation.outputs import default_out, write_metrics
from umcl_cli.evaluation.zeroshot import evaluate


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
    bootstrap_seed: int = 0,
    bootstrap_unit: str = "auto",
) -> dict[str, Any]:
    ds, task, class_names, _ = zeroshot_problem(dataset, data_root, classes, task, split)  # before any encoding
    bootstrap_units(ds.split(split), bootstrap_unit)
    # A multi-draw test set (prepare chexpert-5x200 --draws K) is scored on every draw.
    draws = [ds, *(PreparedDataset(ds.root / d) for d in ds.info.get("draw_dirs", []))]
    model, payload = load_eval_model(ckpt)
    out_dir = out or default_out(ckpt, "zeroshot", ds.name)
    texts = prompt_sources.resolve(model, class_names, prompts)
    results = []
    for k, draw in enumerate(draws):
        features = split_features(model, ckpt, draw, split, payload["image_size"], cache_dir=cache_dir)
        results.append(
            evaluate(
                model,
                features,
                texts,
                draw,
                split,
                class_names,
                out_dir if k == 0 else out_dir / draw.root.name,
                bootstrap=bootstrap,
                task=task,
                bootstrap_seed=bootstrap_seed,
                bootstrap_unit=bootstrap_unit,
            )
        )
    result = results[0]
    (out_dir / "prompts.yaml").write_text(yaml.safe_dump(texts.record, sort_keys=False))
    record = {
        "checkpoint": str(ckpt),
        "dataset": ds.name,
        "dataset_dir": str(ds.root),
        "split": split,
        "prompts": texts.source,
        **result,
    }
    if len(draws) > 1:
        record.update(over_draws(draws, results))
    write_metrics(out_dir, "zeroshot", record)
    if not quiet:
        draws_note = f", mean ± std over {len(draws)} draws" if len(draws) > 1 else ""
        console.print(
            metric_table(
                f"zero-shot {ds.name} ({result['task']}, prompts: {texts.source}, n={result['n']}{draws_note})",
                record["metrics"],
                record["chance"],
                record["ci95"],
                record.get("std"),
            )
        )
        columns = (
            ("precision", "recall", "f1", "support") if result["task"] == "multiclass" else ("auroc", "n_pos", "n_neg")
        )
        if result["task"] != "binary":
            console.print(per_class_table("per class", result["per_class"], columns))
        console.print(f"wrote {out_dir / 'metrics.json'}")
    return record


def over_draws(draws: list[PreparedDataset], results: list[dict[str, Any]]) -> dict[str, Any]:
    """Headline metrics as mean ± std (ddof=0) over draws; each draw's own numbers and CIs in ``by_draw``."""
    spread = {key: M.mean_std([r["metrics"][key] for r in results]) for key in results[0]["metrics"]}
    return {
        "draws": len(draws),
        "metrics": {key: entry["mean"] for key, entry in spread.items()},
        "std": {key: entry["std"] for key, entry in spread.items()},
        # The spread over draws is the uncertainty reported; per-draw intervals stay in by_draw.
        "ci95": {},
        "by_draw": [
            {"dir": str(d.root), "seed": d.info.get("seed"), "n": r["n"], "metrics": r["metrics"], "ci95": r["ci95"]}
            for d, r in zip(draws, results, strict=True)
        ],
    }


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
    bootstrap_seed: int = typer.Option(0, "--bootstrap-seed", help="seed of the bootstrap resamples"),
    bootstrap_unit: str = typer.Option(
        "auto", "--bootstrap-unit", help="auto (patient, else study, else image) | patient | study | image"
    ),
    data_root: str | None = typer.Option(None, "--data-root"),
    task: str | None = typer.Option(
        None, "--task", help="multiclass | multilabel | binary (default: the task in the dataset's dataset.json)"
    ),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="image feature cache (default: beside the ckpt)"),
    sensitivity: bool = typer.Option(
        False, "--sensitivity", help="score every class under each prompt style and report the spread"
    ),
    styles: Path | None = typer.Option(None, "--styles", help="YAML file of prompt styles for --sensitivity"),
) -> None:
    """Zero-shot evaluation: multiclass, multilabel or binary, as the dataset's dataset.json says."""
    if styles is not None and not sensitivity:
        raise UsageError("--styles only applies to --sensitivity", "add --sensitivity, or drop --styles")
    if sensitivity:
        from umcl_cli.cli.sensitivity import run_sensitivity

        run_sensitivity(ckpt, dataset, styles, prompts, out, split, classes, data_root, task, cache_dir=cache_dir)
        return
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
        cache_dir=cache_dir,
        bootstrap_seed=bootstrap_seed,
        bootstrap_unit=bootstrap_unit,
    )
