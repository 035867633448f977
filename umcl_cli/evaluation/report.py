"""``umcl report``: metrics.json files of several runs side by side, as markdown and one HTML page.

Each directory given is one column (a run, or one evaluation). Each row is one headline metric of one
evaluation, identified by its command, dataset and its path inside the run directory, so the same
evaluation of two runs lines up. A cell reads ``value ± std [low, high]`` with whatever of the seed
spread and the 95% CI the file records. The HTML page embeds its plots as base64 PNG: it is one file
with no external assets.
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from umcl_cli.errors import UsageError
from umcl_cli.evaluation.outputs import SCHEMA_VERSION

METRICS_FILE = "metrics.json"
Cell = tuple[Any, Any, Any]  # (value, std over seeds or None, 95% CI dict or None)


@dataclass
class Evaluation:
    run: str  # column label
    group: str  # row group: command, dataset, path inside the run
    path: Path
    doc: dict[str, Any]
    plots: list[Path] = field(default_factory=list)


@dataclass
class Report:
    columns: list[str]
    rows: list[tuple[str, dict[str, Cell]]]  # (row label, {column: cell})
    evaluations: list[Evaluation]
    run_plots: dict[str, list[Path]]


def column_labels(dirs: Sequence[Path]) -> list[str]:
    """Directory names, or the paths as given where two names collide."""
    names = [Path(d).resolve().name for d in dirs]
    return [n if names.count(n) == 1 else str(d) for n, d in zip(names, dirs, strict=True)]


def _read(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path} is not readable JSON ({type(exc).__name__})", "re-run the evaluation") from exc
    if not isinstance(doc, dict) or "schema_version" not in doc or not isinstance(doc.get("metrics"), dict):
        raise UsageError(f"{path} is not a umcl metrics.json", "pass run or evaluation directories written by umcl")
    if doc["schema_version"] > SCHEMA_VERSION:
        raise UsageError(
            f"{path} has schema_version {doc['schema_version']}, newer than this umcl reads ({SCHEMA_VERSION})",
            "upgrade umcl",
        )
    return doc


def find_evaluations(dirs: Sequence[Path]) -> list[Evaluation]:
    out = []
    for directory, label in zip(dirs, column_labels(dirs), strict=True):
        directory = Path(directory)
        if not directory.is_dir():
            raise UsageError(f"{directory} is not a directory", "pass run or evaluation directories")
        files = sorted(directory.rglob(METRICS_FILE))
        if not files:
            raise UsageError(f"no {METRICS_FILE} under {directory}", "run an evaluation with --out inside it first")
        for path in files:
            doc = _read(path)
            where = path.parent.relative_to(directory).as_posix()
            group = " ".join(str(p) for p in (doc.get("command", "?"), doc.get("dataset", "")) if p)
            if where != ".":
                group += f" ({where})"
            plots = [path.parent / name for name in doc.get("plots", []) if (path.parent / name).is_file()]
            out.append(Evaluation(label, group, path, doc, plots))
    return out


def build_report(dirs: Sequence[Path]) -> Report:
    evaluations = find_evaluations(dirs)
    columns = column_labels(dirs)
    rows: dict[str, dict[str, Cell]] = {}
    for ev in evaluations:
        for key, value in ev.doc["metrics"].items():
            cell = (value, ev.doc.get("std", {}).get(key), ev.doc.get("ci95", {}).get(key))
            rows.setdefault(f"{ev.group} · {key}", {})[ev.run] = cell
    # Plots at the top of a run directory (training_curves.png) belong to the run, not an evaluation.
    run_plots = {label: sorted(Path(d).glob("*.png")) for d, label in zip(dirs, columns, strict=True)}
    return Report(columns, list(rows.items()), evaluations, run_plots)


def cell_text(cell: Cell | None) -> str:
    if cell is None:
        return ""
    value, std, ci = cell
    if value is None:
        return "-"
    text = f"{value:.4f}" if isinstance(value, float) else str(value)
    if std is not None:
        text += f" ± {std:.4f}"
    if ci and ci.get("low") is not None:
        text += f" [{ci['low']:.4f}, {ci['high']:.4f}]"
    return text


def markdown(report: Report, out_dir: Path) -> str:
    """The table as GitHub markdown, then links to the plots (relative to ``out_dir``)."""
    lines = ["# umcl report", "", "| metric | " + " | ".join(report.columns) + " |"]
    lines.append("|---|" + "---:|" * len(report.columns))
    for label, cells in report.rows:
        lines.append(f"| {label} | " + " | ".join(cell_text(cells.get(c)) for c in report.columns) + " |")
    lines += ["", "## Plots", ""]
    for ev in report.evaluations:
        for plot in ev.plots:
            lines.append(f"- {ev.run}, {ev.group}: [{plot.name}]({os.path.relpath(plot, out_dir)})")
    for run, plots in report.run_plots.items():
        lines += [f"- {run}: [{p.name}]({os.path.relpath(p, out_dir)})" for p in plots]
    return "\n".join(lines) + "\n"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
th { background: #f3f3f3; }
figure { display: inline-block; margin: 0.5em; }
figure img { max-width: 560px; border: 1px solid #ddd; }
figcaption { font-size: 0.8em; color: #555; }
"""


def _img(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def html_page(report: Report) -> str:
    """One self-contained page: the table (each cell also carries its raw value) and every plot."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in report.columns)
    body = []
    for label, cells in report.rows:
        tds = []
        for c in report.columns:
            cell = cells.get(c)
            raw = "" if cell is None or cell[0] is None else f' data-value="{cell[0]!r}"'
            tds.append(f'<td class="num" data-run="{html.escape(c)}"{raw}>{html.escape(cell_text(cell))}</td>')
        body.append(f"<tr><th scope='row'>{html.escape(label)}</th>{''.join(tds)}</tr>")
    sections = []
    for run in report.columns:
        figures = [_img(p, p.name) for p in report.run_plots.get(run, [])]
        figures += [_img(p, f"{ev.group}: {p.name}") for ev in report.evaluations if ev.run == run for p in ev.plots]
        sources = "".join(f"<li>{html.escape(str(ev.path))}</li>" for ev in report.evaluations if ev.run == run)
        sections.append(f"<h2>{html.escape(run)}</h2><ul>{sources}</ul>{''.join(figures)}")
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>umcl report</title>"
        f"<style>{_STYLE}</style></head><body><h1>umcl report</h1>"
        f"<table><thead><tr><th>metric</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        f"{''.join(sections)}</body></html>\n"
    )
