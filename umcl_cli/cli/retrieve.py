"""``umcl retrieve``: image↔text Recall@K on a dataset, or a search over it by free text or by an image.

The work is ``workflows/retrieval.py``; this module is the command line and the tables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from umcl_cli.cli.common import console, fmt, fmt_ci
from umcl_cli.cli.errors import handle_errors
from umcl_cli.cli.options import Bootstrap, BootstrapSeed, BootstrapUnit, CacheDir, Ckpt, DataRoot
from umcl_cli.workflows.retrieval import KS, RetrievalResult
from umcl_cli.workflows.retrieval import retrieve as run_retrieve


def render(result: RetrievalResult) -> None:
    if result.mode == "recall":
        console.print(recall_table(result))
    elif result.mode == "text-to-image":
        console.print(hits_table(f"top {len(result.top)} images for: {result.query}", "image", result.top))
    else:
        console.print(hits_table(f"top {len(result.top)} texts for image {result.image}", "text", result.top))
    console.print(f"wrote {result.out_dir / 'metrics.json'}")


def recall_table(result: RetrievalResult) -> Table:
    metrics, ci, chance = result.metrics, result.ci95 or {}, result.chance or {}
    table = Table(title=f"retrieval {result.dataset} ({result.split}, n={result.n})")
    for column in ("metric", "image→text", "95% CI", "text→image", "95% CI", "chance"):
        table.add_column(column, justify="right")
    report_keys = (*(f"report_R@{k}" for k in KS), "report_median_rank", "report_mean_rank")
    for key in (*(f"R@{k}" for k in KS), "median_rank", "mean_rank", *(f"P@{k}" for k in KS), *report_keys):
        i2t, t2i = f"image_to_text_{key}", f"text_to_image_{key}"
        table.add_row(
            key,
            fmt(metrics.get(i2t)),
            fmt_ci(ci.get(i2t)),
            fmt(metrics.get(t2i)),
            fmt_ci(ci.get(t2i)),
            fmt(chance.get(i2t)),
        )
    return table


def hits_table(title: str, item: str, hits: list[dict[str, Any]]) -> Table:
    table = Table(title=title)
    for column in ("rank", "score", item, "labelled findings"):
        table.add_column(column)
    for h in hits:
        table.add_row(str(h["rank"]), f"{h['score']:.4f}", h[item], h["findings"])
    return table


@handle_errors
def retrieve(
    ckpt: Ckpt,
    dataset: str = typer.Option(..., "--dataset", help="prepared dataset name or directory"),
    split: str = typer.Option("test", "--split"),
    query: str | None = typer.Option(None, "--query", help="free text: list the best-matching images"),
    image: Path | None = typer.Option(None, "--image", help="an image file: list the best-matching report texts"),
    top: int = typer.Option(5, "--top", min=1),
    out: Path | None = typer.Option(None, "--out"),
    bootstrap: Bootstrap = 1000,
    bootstrap_seed: BootstrapSeed = 0,
    bootstrap_unit: BootstrapUnit = "auto",
    data_root: DataRoot = None,
    cache_dir: CacheDir = None,
) -> None:
    """Image→text and text→image Recall@1/5/10 and median rank, or --query TEXT / --image FILE --top K."""
    render(
        run_retrieve(
            ckpt,
            dataset,
            split,
            query,
            top,
            out,
            data_root,
            image,
            bootstrap,
            cache_dir,
            bootstrap_seed,
            bootstrap_unit,
        )
    )
