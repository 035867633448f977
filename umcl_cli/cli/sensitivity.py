"""Rendering of ``umcl zeroshot --sensitivity``: one row per prompt style, the spread, the standings."""

from __future__ import annotations

from rich.table import Table

from umcl_cli.cli.common import console, fmt
from umcl_cli.workflows.sensitivity import SensitivityResult


def render(result: SensitivityResult) -> None:
    keys = result.keys
    table = Table(title=f"prompt sensitivity: zero-shot {result.dataset} ({result.task}, n={result.n})")
    table.add_column("prompt style")
    for key in keys:
        table.add_column(key, justify="right")
    for name, entry in result.styles.items():
        table.add_row(name, *(fmt(entry["metrics"][k]) for k in keys))
    table.add_section()
    table.add_row("range (max − min)", *(fmt(result.spread[k]["range"]) for k in keys))
    table.add_row("std over styles", *(fmt(result.spread[k]["std"]) for k in keys))
    table.add_section()
    for name, entry in result.compared.items():
        cells = []
        for k in keys:
            where = entry["standing"][k]
            rank = f" (beats {where['beats']}/{where['of']})" if where["beats"] is not None else ""
            cells.append(fmt(entry["metrics"][k]) + rank)
        table.add_row(name, *cells)
    console.print(table)
    console.print(f"wrote {result.out_dir / 'metrics.json'}")
