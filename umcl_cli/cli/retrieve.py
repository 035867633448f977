"""``umcl retrieve``: image↔text Recall@K on a dataset, or a search over it by free text or by an image.

Recall@K comes in two families (see ``metrics.retrieval_metrics``): instance-level, exactly open_clip's
(every pair its own item), and report-level, where identical normalised reports and the views of one
study are one item.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import torch
import typer
from rich.table import Table

from umcl_cli.cli.common import console, fmt, fmt_ci, load_for_eval
from umcl_cli.cli.errors import handle_errors
from umcl_cli.data.images import load_gray
from umcl_cli.data.manifest import PreparedDataset
from umcl_cli.data.reports import select_text
from umcl_cli.errors import UsageError
from umcl_cli.evaluation import metrics as M
from umcl_cli.evaluation.feature_cache import split_features
from umcl_cli.evaluation.features import encode_text_list, eval_transform
from umcl_cli.evaluation.labels import bootstrap_record, bootstrap_units, comparable_rows, label_matrix
from umcl_cli.evaluation.outputs import default_out, write_metrics
from umcl_cli.evaluation.plots import image_grid_png, text_hits_png
from umcl_cli.model.dual_encoder import DualEncoder

KS = (1, 5, 10)


def run_retrieve(
    ckpt: Path,
    dataset: str,
    split: str = "test",
    query: str | None = None,
    top: int = 5,
    out: Path | None = None,
    data_root: str | None = None,
    quiet: bool = False,
    image: Path | None = None,
    bootstrap: int = 1000,
    cache_dir: Path | None = None,
    bootstrap_seed: int = 0,
    bootstrap_unit: str = "auto",
) -> dict[str, Any]:
    """Recall@K both ways; or the top images for ``query`` text; or the top texts for an ``image`` file."""
    if query is not None and image is not None:
        raise UsageError("--query and --image search in opposite directions", "pass only one of them")
    if image is not None and not Path(image).is_file():
        raise UsageError(f"--image {image}: no such file", "pass the path of a PNG or JPEG image")
    model, payload, ds = load_for_eval(ckpt, dataset, data_root)
    frame = ds.split(split)
    if frame.height == 0:
        raise UsageError(f"dataset {ds.name} has no '{split}' rows", "choose another --split")
    searching = query is not None or image is not None
    out_dir = out or default_out(ckpt, "search" if searching else "retrieve", ds.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    base = {"checkpoint": str(ckpt), "dataset": ds.name, "dataset_dir": str(ds.root), "split": split}
    if query is not None:
        features = split_features(model, ckpt, ds, split, payload["image_size"], cache_dir=cache_dir)
        record = {**base, **_text_to_images(model, ds, frame, features, query, top, out_dir, quiet)}
    elif image is not None:
        record = {**base, **_image_to_texts(model, payload["image_size"], ds, frame, Path(image), top, out_dir, quiet)}
    else:
        bootstrap_units(frame, bootstrap_unit)  # a bad unit fails before any encoding
        settings = (bootstrap, bootstrap_seed, bootstrap_unit)
        record = {**base, **_recall(model, ckpt, payload, ds, frame, split, settings, cache_dir, quiet)}
    write_metrics(out_dir, "retrieve", record)
    if not quiet:
        console.print(f"wrote {out_dir / 'metrics.json'}")
    return record


def _recall(
    model: DualEncoder,
    ckpt: Path,
    payload: dict[str, Any],
    ds: PreparedDataset,
    frame: pl.DataFrame,
    split: str,
    bootstrap_settings: tuple[int, int, str],
    cache_dir: Path | None,
    quiet: bool,
) -> dict[str, Any]:
    bootstrap, bootstrap_seed, bootstrap_unit = bootstrap_settings
    texts = frame["text"].to_list()
    keep = [i for i, t in enumerate(texts) if t is not None]
    if len(keep) < 2:
        raise UsageError(
            f"dataset {ds.name} split '{split}' has no report texts to retrieve", "use a dataset with reports"
        )
    images = split_features(model, ckpt, ds, split, payload["image_size"], cache_dir=cache_dir)[keep]
    reports = [select_text(texts[i], "both") for i in keep]
    captions = encode_text_list(model, reports)
    kept = frame[keep]
    # Blank labels are negatives, as in every command (labels.py); uncertain is a value of its own.
    labels = comparable_rows(label_matrix(kept, ds.classes))
    studies = kept["study_id"].cast(pl.String).to_list() if "study_id" in kept.columns else None
    report_ids = M.report_items(reports, studies)
    ranks: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}
    result = M.retrieval_metrics(
        images,
        captions,
        ks=KS,
        labels=torch.from_numpy(labels),
        ranks_out=ranks,
        report_ids=report_ids,
    )
    ci = {}
    clusters, unit = bootstrap_units(kept, bootstrap_unit)
    if bootstrap:
        # Query-level bootstrap: pairs are resampled, each query keeps its rank against the full gallery.
        arrays: list[torch.Tensor] = []
        layout: list[tuple[str, int, int | None]] = []  # (key prefix, index of ranks, index of hits)
        for prefix, (r, h) in ranks.items():
            layout.append((prefix, len(arrays), None if h is None else len(arrays) + 1))
            arrays += [r] if h is None else [r, h]

        def all_directions(*parts: torch.Tensor) -> dict[str, float]:
            out: dict[str, float] = {}
            for prefix, r, h in layout:
                out.update(M.direction_metrics(prefix, parts[r], None if h is None else parts[h], KS))
            return out

        ci = M.bootstrap_cis(
            all_directions,
            *arrays,
            n=bootstrap,
            seed=bootstrap_seed,
            clusters=clusters,
        )
    n = len(keep)
    chance = {f"{d}_R@{k}": min(k, n) / n for d in ("image_to_text", "text_to_image") for k in KS}
    if not quiet:
        table = Table(title=f"retrieval {ds.name} ({split}, n={n})")
        for column in ("metric", "image→text", "95% CI", "text→image", "95% CI", "chance"):
            table.add_column(column, justify="right")
        report_keys = (*(f"report_R@{k}" for k in KS), "report_median_rank", "report_mean_rank")
        for key in (*(f"R@{k}" for k in KS), "median_rank", "mean_rank", *(f"P@{k}" for k in KS), *report_keys):
            i2t, t2i = f"image_to_text_{key}", f"text_to_image_{key}"
            table.add_row(
                key,
                fmt(result.get(i2t)),
                fmt_ci(ci.get(i2t)),
                fmt(result.get(t2i)),
                fmt_ci(ci.get(t2i)),
                fmt(chance.get(i2t)),
            )
        console.print(table)
    return {
        "mode": "recall",
        "n": n,
        "n_report_items": int(report_ids.max()) + 1,
        "metrics": result,
        "ci95": ci,
        "bootstrap": bootstrap_record(bootstrap, bootstrap_seed, unit),
        "chance": chance,
        "plots": [],
    }


def _findings(ds: PreparedDataset, frame: pl.DataFrame) -> list[str]:
    labels = frame.select(ds.classes).to_numpy()
    return [", ".join(c for c, v in zip(ds.classes, row, strict=True) if v == 1) or "-" for row in labels]


def _text_to_images(
    model: DualEncoder,
    ds: PreparedDataset,
    frame: pl.DataFrame,
    features: torch.Tensor,
    query: str,
    top: int,
    out_dir: Path,
    quiet: bool,
) -> dict[str, Any]:
    paths = [ds.image_file(p) for p in frame["image_path"].to_list()]
    findings = _findings(ds, frame)
    scores = features @ encode_text_list(model, [query])[0]
    best = torch.topk(scores, k=min(top, len(paths)))
    hits = [
        {"rank": r + 1, "score": float(s), "image": str(paths[i]), "findings": findings[i]}
        for r, (s, i) in enumerate(zip(best.values.tolist(), best.indices.tolist(), strict=True))
    ]
    grid = image_grid_png(
        [Path(h["image"]) for h in hits],
        [f"#{h['rank']} {h['score']:.3f}" for h in hits],
        out_dir / "query_grid.png",
        f"query: {query}",
    )
    if not quiet:
        console.print(_hits_table(f"top {len(hits)} images for: {query}", "image", hits))
    return {"mode": "text-to-image", "query": query, "n": len(paths), "metrics": {}, "top": hits, "plots": [grid.name]}


@torch.no_grad()
def _image_to_texts(
    model: DualEncoder,
    image_size: int,
    ds: PreparedDataset,
    frame: pl.DataFrame,
    image: Path,
    top: int,
    out_dir: Path,
    quiet: bool,
) -> dict[str, Any]:
    texts, findings = frame["text"].to_list(), _findings(ds, frame)
    # One entry per distinct report: repeated boilerplate reports would fill the top K with copies.
    first: dict[str, int] = {}
    for i, t in enumerate(texts):
        if t is not None:
            first.setdefault(select_text(t, "both"), i)
    if not first:
        raise UsageError(f"dataset {ds.name} has no report texts to search", "use a dataset with reports")
    candidates = list(first)
    pixels = eval_transform(model, image_size)(load_gray(image)).unsqueeze(0).to(model.logit_scale.device)
    query = model.encode_image(pixels)[0].float().cpu()
    scores = encode_text_list(model, candidates) @ query
    best = torch.topk(scores, k=min(top, len(candidates)))
    hits = [
        {"rank": r + 1, "score": float(s), "text": candidates[i], "findings": findings[first[candidates[i]]]}
        for r, (s, i) in enumerate(zip(best.values.tolist(), best.indices.tolist(), strict=True))
    ]
    figure = text_hits_png(
        image,
        [f"#{h['rank']} {h['score']:.3f}  {h['text']}" for h in hits],
        out_dir / "image_query.png",
        f"texts nearest to {image.name}",
    )
    if not quiet:
        console.print(_hits_table(f"top {len(hits)} texts for image {image}", "text", hits))
    return {
        "mode": "image-to-text",
        "image": str(image),
        "n": len(candidates),
        "metrics": {},
        "top": hits,
        "plots": [figure.name],
    }


@handle_errors
def retrieve(
    ckpt: Path = typer.Option(..., "--ckpt", help="model.pt written by `umcl pretrain`"),
    dataset: str = typer.Option(..., "--dataset", help="prepared dataset name or directory"),
    split: str = typer.Option("test", "--split"),
    query: str | None = typer.Option(None, "--query", help="free text: list the best-matching images"),
    image: Path | None = typer.Option(None, "--image", help="an image file: list the best-matching report texts"),
    top: int = typer.Option(5, "--top", min=1),
    out: Path | None = typer.Option(None, "--out"),
    bootstrap: int = typer.Option(1000, "--bootstrap", min=0, help="bootstrap resamples for 95% CIs (0 = off)"),
    bootstrap_seed: int = typer.Option(0, "--bootstrap-seed", help="seed of the bootstrap resamples"),
    bootstrap_unit: str = typer.Option(
        "auto", "--bootstrap-unit", help="auto (patient, else study, else image) | patient | study | image"
    ),
    data_root: str | None = typer.Option(None, "--data-root"),
    cache_dir: Path | None = typer.Option(None, "--cache-dir", help="image feature cache (default: beside the ckpt)"),
) -> None:
    """Image→text and text→image Recall@1/5/10 and median rank, or --query TEXT / --image FILE --top K."""
    run_retrieve(
        ckpt,
        dataset,
        split,
        query,
        top,
        out,
        data_root,
        image=image,
        bootstrap=bootstrap,
        cache_dir=cache_dir,
        bootstrap_seed=bootstrap_seed,
        bootstrap_unit=bootstrap_unit,
    )


def _hits_table(title: str, item: str, hits: list[dict[str, Any]]) -> Table:
    table = Table(title=title)
    for column in ("rank", "score", item, "labelled findings"):
        table.add_column(column)
    for h in hits:
        table.add_row(str(h["rank"]), f"{h['score']:.4f}", h[item], h["findings"])
    return table
