"""``umcl report DIR...``: every metrics.json under the given runs, side by side; markdown + HTML."""

from __future__ import annotations

from pathlib import Path

import typer
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from umcl_cli.cli.common import console
from umcl_cli.cli.errors import handle_errors
from umcl_cli.evaluation.report import Report, build_report, cell_text, html_page, markdown


def report_table(report: Report) -> Table:
    table = Table(box=box.MARKDOWN, title="umcl report")
    table.add_column("metric")
    for column in report.columns:
        table.add_column(column, justify="right")
    for label, cells in report.rows:
        table.add_row(label, *(cell_text(cells.get(c)) for c in report.columns))
    return table


def run_report(dirs: list[Path], out: Path, quiet: bool = False) -> Report:
    report = build_report(dirs)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(markdown(report, out))
    (out / "report.html").write_text(html_page(report))
    if not quiet:
        table = report_table(report)
        # A markdown table is for copying: never wrap it to the terminal; let long lines run on.
        width = max(console.width, Measurement.get(console, console.options.update_width(10_000), table).maximum)
        Console(width=width).print(table)
        console.print(f"wrote {out / 'report.html'} and {out / 'report.md'}")
    return report


@handle_errors
def report(
    dirs: list[Path] = typer.Argument(..., help="run or evaluation directories: one column each"),
    out: Path = typer.Option(Path("report"), "--out", help="where report.html and report.md go"),
) -> None:
    """Put the metrics.json files found under each DIR side by side (one column per DIR, one row per metric)."""
    run_report(dirs, out)
