"""Pieces several evaluation commands share: loading the model, the dataset, printing tables."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from umcl_cli.data.manifest import PreparedDataset
from umcl_cli.data.resolve import resolve_dataset
from umcl_cli.errors import UsageError
from umcl_cli.evaluation.zeroshot import check_task, default_classes, eval_labels
from umcl_cli.model.checkpoint import load_model
from umcl_cli.model.dual_encoder import DualEncoder

console = Console()
T = TypeVar("T", int, float, str)


def load_for_eval(
    ckpt: Path, dataset: str, data_root: str | None
) -> tuple[DualEncoder, dict[str, Any], PreparedDataset]:
    ds = resolve_dataset(dataset, data_root)  # check the cheap thing first
    model, payload = load_eval_model(ckpt)
    return model, payload, ds


def load_eval_model(ckpt: Path) -> tuple[DualEncoder, dict[str, Any]]:
    model, payload = load_model(ckpt)
    if torch.cuda.is_available():
        model.cuda()
    return model, payload


def choose_classes(ds: PreparedDataset, requested: str | None) -> list[str]:
    if not requested:
        return ds.eval_classes
    classes = [c.strip() for c in requested.split(",") if c.strip()]
    unknown = [c for c in classes if c not in ds.classes]
    if unknown:
        raise UsageError(f"dataset {ds.name} has no classes {unknown}", f"choose from: {', '.join(ds.classes)}")
    return classes


def parse_list(text: str, kind: type[T], option: str) -> list[T]:
    """A comma-separated option value ("0.01,0.1,1.0") as a list of ``kind``; duplicates dropped."""
    try:
        values = [kind(part.strip()) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise UsageError(
            f"{option} {text} is not a comma-separated list of {kind.__name__} values", f"e.g. {option} 1,2,4"
        ) from None
    if not values:
        raise UsageError(f"{option} is empty", f"e.g. {option} 1,2,4")
    return list(dict.fromkeys(values))


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def fmt_ci(interval: dict[str, Any] | None) -> str:
    if not interval or interval.get("low") is None:
        return "-"
    return f"[{fmt(interval['low'])}, {fmt(interval['high'])}]"


def fmt_mean_std(value: Any, std: Any = None) -> str:
    return fmt(value) if std is None else f"{fmt(value)} ± {fmt(std)}"


def metric_table(
    title: str,
    headline: dict[str, Any],
    chance: dict[str, Any],
    ci: dict[str, Any],
    std: dict[str, Any] | None = None,
) -> Table:
    """metric | value (± std over seeds, when given) | 95% CI | chance."""
    table = Table(title=title)
    for column in ("metric", "value", "95% CI", "chance"):
        table.add_column(column, justify="right" if column != "metric" else "left")
    for key, value in headline.items():
        table.add_row(key, fmt_mean_std(value, (std or {}).get(key)), fmt_ci(ci.get(key)), fmt(chance.get(key)))
    return table


def per_class_table(title: str, per_class: dict[str, dict[str, Any]], columns: Sequence[str]) -> Table:
    table = Table(title=title)
    table.add_column("class")
    for c in columns:
        table.add_column(c, justify="right")
    for name, row in per_class.items():
        table.add_row(name, *(fmt(row.get(c)) for c in columns))
    return table


def zeroshot_problem(
    dataset: str, data_root: str | None, classes: str | None, task: str | None, split: str
) -> tuple[PreparedDataset, str, list[str], np.ndarray]:
    """Dataset, task, class names and checked labels of a zero-shot run, before anything is encoded."""
    ds = resolve_dataset(dataset, data_root)
    task = task or ds.task
    class_names = choose_classes(ds, classes) if classes else default_classes(ds, task)
    if ds.split(split).height == 0:
        raise UsageError(f"dataset {ds.name} has no '{split}' rows", "choose another --split")
    labels = eval_labels(ds, split, class_names)
    check_task(ds, task, class_names, labels, split)
    return ds, task, class_names, labels
