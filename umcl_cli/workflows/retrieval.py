"""Image↔text retrieval: Recall@K on a dataset's pairs, or a search by free text or by an image.

Recall@K comes in two families (see ``metrics.retrieval_metrics``): instance-level, exactly open_clip's
(every pair its own item), and report-level, where identical normalised reports and the views of one
study are one item.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import torch

from umcl_cli.data.images import load_gray
from umcl_cli.data.manifest import PreparedDataset
from umcl_cli.data.reports import select_text
from umcl_cli.data.resolve import resolve_dataset
from umcl_cli.errors import UsageError
from umcl_cli.evaluation import metrics as M
from umcl_cli.evaluation.feature_cache import split_features
from umcl_cli.evaluation.features import encode_text_list, eval_transform
from umcl_cli.evaluation.labels import bootstrap_record, bootstrap_units, comparable_rows, label_matrix
from umcl_cli.evaluation.outputs import default_out, write_metrics
from umcl_cli.evaluation.plots import image_grid_png, text_hits_png
from umcl_cli.model.dual_encoder import DualEncoder
from umcl_cli.workflows.loading import image_size, load_eval_model
from umcl_cli.workflows.results import NOT_RECORDED, OPTIONAL, Result

KS = (1, 5, 10)


@dataclass
class RetrievalResult(Result):
    """``metrics.json`` of ``umcl retrieve``: mode ``recall`` (metrics, CIs) or a search (``top`` hits)."""

    checkpoint: str
    dataset: str
    dataset_dir: str
    split: str
    mode: str
    n: int
    metrics: dict[str, Any]
    plots: list[str]
    n_report_items: int | None = field(default=None, metadata=OPTIONAL)
    ci95: dict[str, Any] | None = field(default=None, metadata=OPTIONAL)
    bootstrap: dict[str, Any] | None = field(default=None, metadata=OPTIONAL)
    chance: dict[str, float] | None = field(default=None, metadata=OPTIONAL)
    query: str | None = field(default=None, metadata=OPTIONAL)
    image: str | None = field(default=None, metadata=OPTIONAL)
    top: list[dict[str, Any]] | None = field(default=None, metadata=OPTIONAL)
    out_dir: Path = field(default=None, metadata=NOT_RECORDED)


def retrieve(
    ckpt: str | Path,
    dataset: str,
    split: str = "test",
    query: str | None = None,
    top: int = 5,
    out: Path | None = None,
    data_root: str | None = None,
    image: Path | None = None,
    bootstrap: int = 1000,
    cache_dir: Path | None = None,
    bootstrap_seed: int = 0,
    bootstrap_unit: str = "auto",
) -> RetrievalResult:
    """Recall@K both ways; or the top images for ``query`` text; or the top texts for an ``image`` file."""
    ckpt = Path(ckpt)
    if query is not None and image is not None:
        raise UsageError("--query and --image search in opposite directions", "pass only one of them")
    if image is not None and not Path(image).is_file():
        raise UsageError(f"--image {image}: no such file", "pass the path of a PNG or JPEG image")
    ds = resolve_dataset(dataset, data_root)  # the cheap check first
    model = load_eval_model(ckpt)
    frame = ds.split(split)
    if frame.height == 0:
        raise UsageError(f"dataset {ds.name} has no '{split}' rows", "choose another --split")
    searching = query is not None or image is not None
    out_dir = out or default_out(ckpt, "search" if searching else "retrieve", ds.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    base = {"checkpoint": str(ckpt), "dataset": ds.name, "dataset_dir": str(ds.root), "split": split}
    if query is not None:
        features = split_features(model, ckpt, ds, split, image_size(model), cache_dir=cache_dir)
        found = _text_to_images(model, ds, frame, features, query, top, out_dir)
    elif image is not None:
        found = _image_to_texts(model, ds, frame, Path(image), top, out_dir)
    else:
        bootstrap_units(frame, bootstrap_unit)  # a bad unit fails before any encoding
        settings = (bootstrap, bootstrap_seed, bootstrap_unit)
        found = _recall(model, ckpt, ds, frame, split, settings, cache_dir)
    result = RetrievalResult(**base, **found, out_dir=out_dir)
    write_metrics(out_dir, "retrieve", result.to_record())
    return result


def _recall(
    model: DualEncoder,
    ckpt: str | Path,
    ds: PreparedDataset,
    frame: pl.DataFrame,
    split: str,
    bootstrap_settings: tuple[int, int, str],
    cache_dir: Path | None,
) -> dict[str, Any]:
    bootstrap, bootstrap_seed, bootstrap_unit = bootstrap_settings
    texts = frame["text"].to_list()
    keep = [i for i, t in enumerate(texts) if t is not None]
    if len(keep) < 2:
        raise UsageError(
            f"dataset {ds.name} split '{split}' has no report texts to retrieve", "use a dataset with reports"
        )
    images = split_features(model, ckpt, ds, split, image_size(model), cache_dir=cache_dir)[keep]
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

        ci = M.bootstrap_cis(all_directions, *arrays, n=bootstrap, seed=bootstrap_seed, clusters=clusters)
    n = len(keep)
    return {
        "mode": "recall",
        "n": n,
        "n_report_items": int(report_ids.max()) + 1,
        "metrics": result,
        "ci95": ci,
        "bootstrap": bootstrap_record(bootstrap, bootstrap_seed, unit),
        "chance": {f"{d}_R@{k}": min(k, n) / n for d in ("image_to_text", "text_to_image") for k in KS},
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
    return {"mode": "text-to-image", "query": query, "n": len(paths), "metrics": {}, "top": hits, "plots": [grid.name]}


@torch.no_grad()
def _image_to_texts(
    model: DualEncoder,
    ds: PreparedDataset,
    frame: pl.DataFrame,
    image: Path,
    top: int,
    out_dir: Path,
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
    pixels = eval_transform(model, image_size(model))(load_gray(image)).unsqueeze(0).to(model.logit_scale.device)
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
    return {
        "mode": "image-to-text",
        "image": str(image),
        "n": len(candidates),
        "metrics": {},
        "top": hits,
        "plots": [figure.name],
    }
