"""Zero-shot classification of a prepared dataset with the protocol its task calls for."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from umcl_cli.data.manifest import PreparedDataset
from umcl_cli.evaluation import metrics as M
from umcl_cli.evaluation import prompt_sources
from umcl_cli.evaluation.feature_cache import split_features
from umcl_cli.evaluation.labels import bootstrap_units
from umcl_cli.evaluation.outputs import default_out, write_metrics
from umcl_cli.evaluation.zeroshot import evaluate
from umcl_cli.workflows.loading import image_size, load_eval_model, zeroshot_problem
from umcl_cli.workflows.results import NOT_RECORDED, OPTIONAL, Result


@dataclass
class ZeroShotResult(Result):
    """``metrics.json`` of ``umcl zeroshot`` (schema in ``evaluation/outputs.py``)."""

    checkpoint: str
    dataset: str
    dataset_dir: str
    split: str
    prompts: str
    task: str
    classes: list[str]
    n: int
    metrics: dict[str, Any]
    ci95: dict[str, Any]
    bootstrap: dict[str, Any]
    chance: dict[str, float]
    per_class: dict[str, Any]
    plots: list[str]
    confusion_matrix: list[list[int]] | None = field(default=None, metadata=OPTIONAL)
    threshold: float | None = field(default=None, metadata=OPTIONAL)
    eval_classes: list[str] | None = field(default=None, metadata=OPTIONAL)
    draws: int | None = field(default=None, metadata=OPTIONAL)
    std: dict[str, float] | None = field(default=None, metadata=OPTIONAL)
    by_draw: list[dict[str, Any]] | None = field(default=None, metadata=OPTIONAL)
    out_dir: Path = field(default=None, metadata=NOT_RECORDED)


def zeroshot(
    ckpt: str | Path,
    dataset: str,
    prompts: str = "auto",
    out: Path | None = None,
    split: str = "test",
    classes: str | list[str] | None = None,
    bootstrap: int = 1000,
    data_root: str | None = None,
    task: str | None = None,
    cache_dir: Path | None = None,
    bootstrap_seed: int = 0,
    bootstrap_unit: str = "auto",
) -> ZeroShotResult:
    """Score ``split`` of ``dataset`` against class prompts (``auto``: learned if the checkpoint has
    them, else hand-written templates; or ``templates``, ``learned``, a ``prompts.pt`` / ``.yaml``)."""
    ckpt = Path(ckpt)
    ds, task, class_names, _ = zeroshot_problem(dataset, data_root, classes, task, split)  # before any encoding
    bootstrap_units(ds.split(split), bootstrap_unit)
    # A multi-draw test set (prepare chexpert-5x200 --draws K) is scored on every draw.
    draws = [ds, *(PreparedDataset(ds.root / d) for d in ds.info.get("draw_dirs", []))]
    model = load_eval_model(ckpt)
    out_dir = out or default_out(ckpt, "zeroshot", ds.name)
    texts = prompt_sources.resolve(model, class_names, prompts)
    results = []
    for k, draw in enumerate(draws):
        features = split_features(model, ckpt, draw, split, image_size(model), cache_dir=cache_dir)
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
    (out_dir / "prompts.yaml").write_text(yaml.safe_dump(texts.record, sort_keys=False))
    fields = {**results[0], **(over_draws(draws, results) if len(draws) > 1 else {})}
    result = ZeroShotResult(
        checkpoint=str(ckpt),
        dataset=ds.name,
        dataset_dir=str(ds.root),
        split=split,
        prompts=texts.source,
        out_dir=out_dir,
        **fields,
    )
    write_metrics(out_dir, "zeroshot", result.to_record())
    return result


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
