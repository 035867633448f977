"""Zero-shot under every prompt style, the spread, and where the hand-written ensemble and the
learned (or given) prompts stand in it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from umcl_cli.errors import UsageError
from umcl_cli.evaluation import prompt_sources
from umcl_cli.evaluation.feature_cache import split_features
from umcl_cli.evaluation.outputs import default_out, write_metrics
from umcl_cli.evaluation.plots import sensitivity_png
from umcl_cli.evaluation.sensitivity import BUILTIN_STYLES, load_styles, run_styles, spread, standing, style_table
from umcl_cli.evaluation.zeroshot import headline_metrics, task_scores
from umcl_cli.workflows.loading import image_size, load_eval_model, zeroshot_problem
from umcl_cli.workflows.results import NOT_RECORDED, Result


@dataclass
class SensitivityResult(Result):
    """``metrics.json`` of ``umcl zeroshot --sensitivity`` (mode ``sensitivity``)."""

    checkpoint: str
    dataset: str
    dataset_dir: str
    split: str
    mode: str
    task: str
    classes: list[str]
    n: int
    styles_source: str
    metrics: dict[str, Any]
    styles: dict[str, Any]
    spread: dict[str, Any]
    compared: dict[str, Any]
    ci95: dict[str, Any]
    plots: list[str]
    keys: list[str] = field(default=None, metadata=NOT_RECORDED)
    out_dir: Path = field(default=None, metadata=NOT_RECORDED)


def sensitivity(
    ckpt: str | Path,
    dataset: str,
    styles: Path | None = None,
    prompts: str = "auto",
    out: Path | None = None,
    split: str = "test",
    classes: str | list[str] | None = None,
    data_root: str | None = None,
    task: str | None = None,
    cache_dir: Path | None = None,
) -> SensitivityResult:
    """Headline zero-shot metrics per prompt style (built-in, or a ``styles`` YAML file) and their spread."""
    ckpt = Path(ckpt)
    ds, task, class_names, labels = zeroshot_problem(dataset, data_root, classes, task, split)
    if styles is not None and not Path(styles).is_file():
        raise UsageError(f"--styles {styles}: no such file", "pass a YAML file of prompt styles (see README)")
    tables = (
        load_styles(Path(styles), class_names)
        if styles is not None
        else {s.name: style_table(s, class_names) for s in BUILTIN_STYLES}
    )
    model = load_eval_model(ckpt)
    out_dir = out or default_out(ckpt, "sensitivity", ds.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    features = split_features(model, ckpt, ds, split, image_size(model), cache_dir=cache_dir)
    standard = [c for c in ds.eval_classes if c in class_names]
    headline = headline_metrics(task, class_names, standard, labels)
    y = torch.from_numpy(labels)

    def score(texts: prompt_sources.ClassTexts) -> dict[str, float | None]:
        return headline(task_scores(model, features, texts, task), y)

    per_style = run_styles(model, tables, score)
    # The hand-written ensemble always; the learned (or --prompts) source when it is something else.
    compared = {"templates": prompt_sources.hand_written(model, class_names)}
    chosen = "learned" if prompts == "auto" and model.prompt_learner is not None else prompts
    if chosen not in ("auto", "templates"):
        texts = prompt_sources.resolve(model, class_names, chosen)
        compared[texts.source] = texts
    references = {name: score(texts) for name, texts in compared.items()}
    keys = list(next(iter(per_style.values())))
    plot = sensitivity_png(
        {s: m[keys[0]] for s, m in per_style.items()},
        {name: m[keys[0]] for name, m in references.items()},
        out_dir / "prompt_sensitivity.png",
        f"prompt sensitivity, zero-shot {ds.name} ({task}, {len(tables)} styles)",
        keys[0],
    )
    result = SensitivityResult(
        checkpoint=str(ckpt),
        dataset=ds.name,
        dataset_dir=str(ds.root),
        split=split,
        mode="sensitivity",
        task=task,
        classes=class_names,
        n=len(labels),
        styles_source=str(styles) if styles is not None else "built-in",
        metrics={
            **{f"{k}@style:{s}": m[k] for s, m in per_style.items() for k in keys},
            **{f"{k}@{name}": m[k] for name, m in references.items() for k in keys},
        },
        styles={
            name: {"metrics": per_style[name], "prompts": {c: table[c] for c in class_names[:1]}}
            for name, table in tables.items()
        },
        spread=spread(per_style),
        compared={
            name: {
                "metrics": metrics,
                "standing": {k: standing(metrics[k], [m[k] for m in per_style.values()]) for k in keys},
            }
            for name, metrics in references.items()
        },
        ci95={},
        plots=[plot.name],
        keys=keys,
        out_dir=out_dir,
    )
    write_metrics(out_dir, "zeroshot", result.to_record())
    return result
