"""``umcl retrieve``: image↔text Recall@K on a dataset, or a free-text search over its images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import typer
from rich.table import Table

from umcl_cli.cli.common import console, fmt, load_for_eval
from umcl_cli.cli.errors import handle_errors
from umcl_cli.data.reports import select_text
from umcl_cli.errors import UsageError
from umcl_cli.evaluation import metrics as M
from umcl_cli.evaluation.features import encode_image_files, encode_text_list
from umcl_cli.evaluation.outputs import default_out, write_metrics
from umcl_cli.evaluation.plots import image_grid_png


def run_retrieve(
    ckpt: Path,
    dataset: str,
    split: str = "test",
    query: str | None = None,
    top: int = 5,
    out: Path | None = None,
    data_root: str | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    model, payload, ds = load_for_eval(ckpt, dataset, data_root)
    frame = ds.split(split)
    out_dir = out or default_out(ckpt, "retrieve", ds.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [ds.image_file(p) for p in frame["image_path"].to_list()]
    if not paths:
        raise UsageError(f"dataset {ds.name} has no '{split}' rows", "choose another --split")
    if query is not None:
        return _search(model, payload, ds, frame, paths, query, top, out_dir, quiet)
    texts = frame["text"].to_list()
    keep = [i for i, t in enumerate(texts) if t is not None]
    if len(keep) < 2:
        raise UsageError(
            f"dataset {ds.name} split '{split}' has no report texts to retrieve", "use a dataset with reports"
        )
    images = encode_image_files(model, [paths[i] for i in keep], payload["image_size"])
    captions = encode_text_list(model, [select_text(texts[i], "both") for i in keep])
    labels = frame.select(ds.classes).to_numpy().astype(np.float32)[keep]
    result = M.retrieval_metrics(images, captions, labels=torch.from_numpy(np.nan_to_num(labels, nan=-9.0)))
    n = len(keep)
    chance = {f"{d}_R@{k}": min(k, n) / n for d in ("image_to_text", "text_to_image") for k in (1, 5, 10)}
    record = {"checkpoint": str(ckpt), "dataset": ds.name, "split": split, "n": n, "metrics": result, "chance": chance}
    write_metrics(out_dir, "retrieve", record)
    if not quiet:
        table = Table(title=f"retrieval {ds.name} ({split}, n={n})")
        for column in ("metric", "image→text", "text→image", "chance"):
            table.add_column(column, justify="right")
        for key in ("R@1", "R@5", "R@10", "median_rank", "mean_rank", "P@1", "P@5", "P@10"):
            chance_value = chance.get(f"image_to_text_{key}")
            table.add_row(
                key, fmt(result.get(f"image_to_text_{key}")), fmt(result.get(f"text_to_image_{key}")), fmt(chance_value)
            )
        console.print(table)
        console.print(f"wrote {out_dir / 'metrics.json'}")
    return record


def _search(model, payload, ds, frame, paths, query, top, out_dir, quiet) -> dict[str, Any]:
    labels = frame.select(ds.classes).to_numpy()
    findings = [", ".join(c for c, v in zip(ds.classes, row, strict=True) if v == 1) or "-" for row in labels]
    images = encode_image_files(model, paths, payload["image_size"])
    scores = images @ encode_text_list(model, [query])[0]
    best = torch.topk(scores, k=min(top, len(paths)))
    hits = [
        {"rank": r + 1, "image": str(paths[i]), "score": float(s), "findings": findings[i]}
        for r, (s, i) in enumerate(zip(best.values.tolist(), best.indices.tolist(), strict=True))
    ]
    grid = image_grid_png(
        [Path(h["image"]) for h in hits],
        [f"#{h['rank']} {h['score']:.3f}" for h in hits],
        out_dir / "query_grid.png",
        f"query: {query}",
    )
    record = {"dataset": ds.name, "query": query, "top": hits, "grid": grid.name}
    if not quiet:
        table = Table(title=f"top {len(hits)} images for: {query}")
        for column in ("rank", "score", "image", "labelled findings"):
            table.add_column(column)
        for h in hits:
            table.add_row(str(h["rank"]), f"{h['score']:.4f}", h["image"], h["findings"])
        console.print(table)
        console.print(f"wrote {grid}")
    return record


@handle_errors
def retrieve(
    ckpt: Path = typer.Option(..., "--ckpt", help="model.pt written by `umcl pretrain`"),
    dataset: str = typer.Option(..., "--dataset", help="prepared dataset name or directory"),
    split: str = typer.Option("test", "--split"),
    query: str | None = typer.Option(None, "--query", help="free text: list the best-matching images"),
    top: int = typer.Option(5, "--top", min=1),
    out: Path | None = typer.Option(None, "--out"),
    data_root: str | None = typer.Option(None, "--data-root"),
) -> None:
    """Image→text and text→image Recall@1/5/10 and median rank, or --query TEXT --top K."""
    run_retrieve(ckpt, dataset, split, query, top, out, data_root)
