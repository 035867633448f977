"""What several commands share: parsing list options and rendering numbers and tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table

from umcl_cli.errors import UsageError

console = Console()
T = TypeVar("T", int, float, str)


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
