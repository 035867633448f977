"""``umcl zeroshot --sensitivity``: zero-shot under every prompt style, the spread, and where the
hand-written ensemble and the learned (or ``--prompts``) prompts stand in it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from rich.table import Table

from umcl_cli.cli.common import console, fmt, load_eval_model, zeroshot_problem
from umcl_cli.errors import UsageError
from umcl_cli.evaluation import prompt_sources
from umcl_cli.evaluation.feature_cache import split_features
from umcl_cli.evaluation.outputs import default_out, write_metrics
from umcl_cli.evaluation.plots import sensitivity_png
from umcl_cli.evaluation.sensitivity import BUILTIN_STYLES, load_styles, run_styles, spread, standing, style_table
from umcl_cli.evaluation.zeroshot import headline_metrics, task_scores


def run_sensitivity(
    ckpt: Path,
    dataset: str,
    styles: Path | None = None,
    prompts: str = "auto",
    out: Path | None = None,
    split: str = "test",
    classes: str | None = None,
    data_root: str | None = None,
    task: str | None = None,
    quiet: bool = False,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """Headline zero-shot metrics per prompt style (built-in, or a ``styles`` YAML file) and their spread."""
    ds, task, class_names, labels = zeroshot_problem(dataset, data_root, classes, task, split)
    if styles is not None and not Path(styles).is_file():
        raise UsageError(f"--styles {styles}: no such file", "pass a YAML file of prompt styles (see README)")
    tables = (
        load_styles(Path(styles), class_names)
        if styles is not None
        else {s.name: style_table(s, class_names) for s in BUILTIN_STYLES}
    )
    model, payload = load_eval_model(ckpt)
    out_dir = out or default_out(ckpt, "sensitivity", ds.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    features = split_features(model, ckpt, ds, split, payload["image_size"], cache_dir=cache_dir)
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
    record: dict[str, Any] = {
        "checkpoint": str(ckpt),
        "dataset": ds.name,
        "dataset_dir": str(ds.root),
        "split": split,
        "mode": "sensitivity",
        "task": task,
        "classes": class_names,
        "n": len(labels),
        "styles_source": str(styles) if styles is not None else "built-in",
        "metrics": {
            **{f"{k}@style:{s}": m[k] for s, m in per_style.items() for k in keys},
            **{f"{k}@{name}": m[k] for name, m in references.items() for k in keys},
        },
        "styles": {
            name: {"metrics": per_style[name], "prompts": {c: table[c] for c in class_names[:1]}}
            for name, table in tables.items()
        },
        "spread": spread(per_style),
        "compared": {
            name: {
                "metrics": metrics,
                "standing": {k: standing(metrics[k], [m[k] for m in per_style.values()]) for k in keys},
            }
            for name, metrics in references.items()
        },
        "ci95": {},
    }
    plot = sensitivity_png(
        {s: m[keys[0]] for s, m in per_style.items()},
        {name: m[keys[0]] for name, m in references.items()},
        out_dir / "prompt_sensitivity.png",
        f"prompt sensitivity, zero-shot {ds.name} ({task}, {len(tables)} styles)",
        keys[0],
    )
    record["plots"] = [plot.name]
    write_metrics(out_dir, "zeroshot", record)
    if not quiet:
        console.print(_table(record, keys))
        console.print(f"wrote {out_dir / 'metrics.json'}")
    return record


def _table(record: dict[str, Any], keys: list[str]) -> Table:
    table = Table(title=f"prompt sensitivity: zero-shot {record['dataset']} ({record['task']}, n={record['n']})")
    table.add_column("prompt style")
    for key in keys:
        table.add_column(key, justify="right")
    for name, entry in record["styles"].items():
        table.add_row(name, *(fmt(entry["metrics"][k]) for k in keys))
    table.add_section()
    table.add_row("range (max − min)", *(fmt(record["spread"][k]["range"]) for k in keys))
    table.add_row("std over styles", *(fmt(record["spread"][k]["std"]) for k in keys))
    table.add_section()
    for name, entry in record["compared"].items():
        cells = []
        for k in keys:
            where = entry["standing"][k]
            rank = f" (beats {where['beats']}/{where['of']})" if where["beats"] is not None else ""
            cells.append(fmt(entry["metrics"][k]) + rank)
        table.add_row(name, *cells)
    return table
