"""Pure metric functions: classification, AUROC, retrieval, bootstrap intervals and seed averages.

Every public function takes torch tensors (numpy arrays are accepted too) and returns plain Python
floats, lists and dicts, so results can be written straight to JSON.

Conventions shared by the AUROC functions: only the *order* of scores matters, so scores are mapped
to [0, 1] by their dense rank before they reach torchmetrics. torchmetrics otherwise applies a sigmoid
to any input outside [0, 1], which saturates large logits into artificial ties and changes the AUROC.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torchmetrics.functional.classification import (
    binary_auroc,
    binary_confusion_matrix,
    binary_roc,
    multiclass_confusion_matrix,
)

Array = torch.Tensor | np.ndarray

# Bootstrap index blocks are capped at this many int64 entries (~64 MB) so large N stays bounded.
_MAX_BOOTSTRAP_BLOCK = 1 << 23


def _as_tensor(x: Array) -> torch.Tensor:
    return torch.as_tensor(x).detach().cpu()


def _unit_interval(scores: torch.Tensor) -> torch.Tensor:
    """Order- and tie-preserving map of scores onto [0, 1] (dense rank / max rank)."""
    _, inverse = torch.unique(scores, return_inverse=True)
    return inverse.double() / max(int(inverse.max()), 1)


def _auroc(scores: torch.Tensor, labels: torch.Tensor) -> float | None:
    """AUROC of 1-D scores against 0/1 labels; None when only one label value is present."""
    n_pos = int(labels.sum())
    if n_pos == 0 or n_pos == labels.numel():
        return None
    return float(binary_auroc(_unit_interval(scores), labels.long(), validate_args=False))


def _safe_ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


# --------------------------------------------------------------------------- classification


def multiclass_metrics(logits: Array, targets: Array, class_names: Sequence[str]) -> dict[str, Any]:
    """Argmax classification metrics.

    Returns ``accuracy``, ``macro_f1`` (averaged over classes that occur in the targets or the
    predictions, as sklearn's ``f1_score(average="macro")`` does), ``per_class``
    (``{name: {precision, recall, f1, support}}``, 0.0 where a ratio is undefined) and
    ``confusion_matrix`` (list of lists, rows = true class, columns = predicted class).
    """
    logits, targets = _as_tensor(logits), _as_tensor(targets).long()
    num_classes = len(class_names)
    if logits.ndim != 2 or logits.shape[1] != num_classes or targets.shape != logits.shape[:1]:
        shapes = f"{tuple(logits.shape)} and {tuple(targets.shape)}"
        raise ValueError(f"expected logits [N, {num_classes}] and targets [N], got {shapes}")
    confusion = multiclass_confusion_matrix(logits.argmax(dim=1), targets, num_classes=num_classes)
    # Ratios from the integer counts in float64, so reported values carry no float32 noise.
    counts = confusion.double()
    true_pos, support, predicted = counts.diagonal(), counts.sum(dim=1), counts.sum(dim=0)
    precision = true_pos / predicted.clamp(min=1)
    recall = true_pos / support.clamp(min=1)
    f1 = 2 * true_pos / (support + predicted).clamp(min=1)
    occurring = (support + predicted) > 0
    return {
        "accuracy": float(true_pos.sum() / counts.sum()),
        "macro_f1": float(f1[occurring].mean()),
        "per_class": {
            name: {"precision": p, "recall": r, "f1": f, "support": int(s)}
            for name, p, r, f, s in zip(
                class_names, precision.tolist(), recall.tolist(), f1.tolist(), support.tolist(), strict=True
            )
        },
        "confusion_matrix": confusion.tolist(),
    }


def multilabel_auroc(scores: Array, labels: Array, class_names: Sequence[str]) -> dict[str, Any]:
    """Per-class AUROC where each class only uses the rows labelled 0 or 1 for that class.

    Any other label value (NaN, -1 for "uncertain", ...) excludes that row for that class only.
    A class whose valid rows carry a single label value gets ``auroc = None`` and is left out of
    ``mean_auroc`` (None if no class is scorable). Returns ``per_class``
    (``{name: {auroc, n_pos, n_neg}}``), ``mean_auroc`` and ``n_scored`` (classes in the mean).
    """
    scores, labels = _as_tensor(scores), _as_tensor(labels)
    if scores.shape != labels.shape or scores.ndim != 2 or scores.shape[1] != len(class_names):
        shapes = f"{tuple(scores.shape)} and {tuple(labels.shape)}"
        raise ValueError(f"expected scores and labels [N, {len(class_names)}], got {shapes}")
    per_class = {}
    for c, name in enumerate(class_names):
        valid = (labels[:, c] == 0) | (labels[:, c] == 1)
        class_labels = labels[valid, c]
        n_pos = int(class_labels.sum())
        per_class[name] = {
            "auroc": _auroc(scores[valid, c], class_labels),
            "n_pos": n_pos,
            "n_neg": class_labels.numel() - n_pos,
        }
    scored = [entry["auroc"] for entry in per_class.values() if entry["auroc"] is not None]
    return {
        "per_class": per_class,
        "mean_auroc": sum(scored) / len(scored) if scored else None,
        "n_scored": len(scored),
    }


def _binary_inputs(scores: Array, labels: Array) -> tuple[torch.Tensor, torch.Tensor]:
    scores, labels = _as_tensor(scores).flatten(), _as_tensor(labels).flatten()
    if scores.shape != labels.shape:
        raise ValueError(f"scores and labels differ in size: {scores.numel()} vs {labels.numel()}")
    if not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError("binary labels must be 0 or 1")
    return scores, labels.long()


def binary_metrics(scores: Array, labels: Array, threshold: float = 0.5) -> dict[str, float | None]:
    """AUROC plus thresholded accuracy / sensitivity / specificity (positive means score >= threshold).

    Returns ``auroc``, ``accuracy``, ``sensitivity``, ``specificity`` and ``threshold``; a ratio with
    an empty denominator (e.g. sensitivity without positives) is None.
    """
    scores, labels = _binary_inputs(scores, labels)
    # Thresholding here, not in torchmetrics: it would sigmoid scores outside [0, 1] and uses ">".
    preds = (scores >= threshold).long()
    (tn, fp), (fn, tp) = binary_confusion_matrix(preds, labels, validate_args=False).tolist()
    return {
        "auroc": _auroc(scores, labels),
        "accuracy": _safe_ratio(tp + tn, labels.numel()),
        "sensitivity": _safe_ratio(tp, tp + fn),
        "specificity": _safe_ratio(tn, tn + fp),
        "threshold": float(threshold),
    }


def roc_curve_points(scores: Array, labels: Array) -> tuple[list[float], list[float]]:
    """(fpr, tpr) at every distinct score, starting at (0, 0); both label values must be present."""
    scores, labels = _binary_inputs(scores, labels)
    n_pos = int(labels.sum())
    if n_pos in (0, labels.numel()):
        raise ValueError("an ROC curve needs both positive and negative samples")
    fpr, tpr, _ = binary_roc(_unit_interval(scores), labels, validate_args=False)
    return fpr.tolist(), tpr.tolist()


# --------------------------------------------------------------------------- retrieval


def _chunked_ranks(
    queries: torch.Tensor,
    items: torch.Tensor,
    chunk_size: int,
    groups: torch.Tensor | None,
    max_k: int,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Rank of item i for query i, plus (if groups given) whether each top-k item shares the query's group.

    The rank is the number of items scored strictly higher than the ground truth, read from the
    same score block as the competitors so rounding cannot make the match outrank itself.
    One [chunk_size, N] score buffer is allocated once and reused: no other temporary of that size
    is created (a bool ``.sum()`` would silently upcast to an int64 copy 2x the buffer's size).
    """
    n = queries.shape[0]
    rows_per_block = min(chunk_size, n)
    block_buffer = torch.empty(rows_per_block, n, dtype=queries.dtype, device=queries.device)
    # 0/1 partial sums stay exact in float32 up to 2**24; beyond that count in float64.
    count_dtype = torch.float64 if n > 2**24 else None
    ranks = torch.empty(n, dtype=torch.long, device=queries.device)
    hits = None if groups is None else torch.empty(n, max_k, dtype=torch.bool, device=queries.device)
    for start in range(0, n, rows_per_block):
        stop = min(start + rows_per_block, n)
        block = torch.mm(queries[start:stop], items.T, out=block_buffer[: stop - start])
        rows = torch.arange(stop - start, device=queries.device)
        truth = block[rows, rows + start].unsqueeze(1)
        if hits is not None:
            top = block.topk(max_k, dim=1).indices
            hits[start:stop] = groups[top] == groups[start:stop].unsqueeze(1)
        # In place: the block becomes 1.0 where an item beats the match, then count per row.
        ranks[start:stop] = block.gt_(truth).sum(dim=1, dtype=count_dtype).long()
    return ranks, hits


def direction_metrics(
    prefix: str, ranks: Array, hits: Array | None, ks: Sequence[int] = (1, 5, 10)
) -> dict[str, float]:
    """R@k, median and mean rank (and P@k with ``hits``) of one direction from 0-based ranks ``[N]``."""
    ranks_np = np.asarray(_as_tensor(ranks))
    out = {f"{prefix}_R@{k}": float(np.mean(ranks_np < k)) for k in ks}
    # np.median averages the two middle ranks for even N; open_clip floors that, so do we.
    out[f"{prefix}_median_rank"] = float(np.floor(np.median(ranks_np)) + 1)
    out[f"{prefix}_mean_rank"] = float(ranks_np.mean() + 1)
    if hits is not None:
        hits_np = np.asarray(_as_tensor(hits), dtype=np.float64)
        out.update({f"{prefix}_P@{k}": float(hits_np[:, :k].mean()) for k in ks})
    return out


def retrieval_metrics(
    image_features: Array,
    text_features: Array,
    ks: Sequence[int] = (1, 5, 10),
    chunk_size: int = 1024,
    labels: Array | None = None,
    ranks_out: dict[str, tuple[torch.Tensor, torch.Tensor | None]] | None = None,
) -> dict[str, float]:
    """open_clip-style retrieval metrics for paired features (image i matches text i), in both directions.

    Scores are dot products (pass L2-normalised features for cosine). For each query the 0-based
    rank of its match is the number of items with a strictly greater score; ``R@k = mean(rank < k)``,
    ``median_rank = floor(median(rank)) + 1``, ``mean_rank = mean(rank) + 1`` as in open_clip's
    ``get_clip_metrics``. Ties: open_clip orders tied scores by an unstable ``argsort``, so a tied
    match lands anywhere among its ties; here it always goes first (optimistic). Without exact ties
    the two agree.

    With ``labels`` ([N, C]; row i belongs to pair i), ``P@k`` is the mean fraction of the top-k
    retrieved items whose label row equals the query's label row exactly (the ground-truth item
    counts when retrieved; order among tied scores at the k-th place follows ``torch.topk``; k is
    capped at N). Memory is O(chunk_size x N): the N x N score matrix is never built. Work runs on
    the features' device (text features and labels are moved there), so CUDA tensors stay on GPU.

    Keys: ``{image_to_text,text_to_image}_{R@k,median_rank,mean_rank[,P@k]}``. Pass a dict as
    ``ranks_out`` to receive each direction's ``(ranks, top-k hits)``, e.g. to bootstrap the metrics
    over queries with ``direction_metrics``.
    """
    images = torch.as_tensor(image_features).detach()
    texts = torch.as_tensor(text_features).detach().to(images.device)
    if images.ndim != 2 or images.shape != texts.shape:
        shapes = f"{tuple(images.shape)} and {tuple(texts.shape)}"
        raise ValueError(f"expected two [N, D] feature tensors, got {shapes}")
    if chunk_size < 1 or not ks or min(ks) < 1:
        raise ValueError("chunk_size and every k must be positive")
    dtype = torch.promote_types(images.dtype, texts.dtype)
    images, texts = images.to(dtype), texts.to(dtype)
    groups = None
    if labels is not None:
        labels = torch.as_tensor(labels).to(images.device)
        if labels.shape[0] != images.shape[0]:
            raise ValueError(f"labels have {labels.shape[0]} rows, features have {images.shape[0]}")
        # One integer id per distinct label row turns row equality into a cheap id comparison.
        groups = torch.unique(labels.reshape(labels.shape[0], -1), dim=0, return_inverse=True)[1]
    max_k = min(max(ks), images.shape[0])
    out: dict[str, float] = {}
    for prefix, queries, items in (("image_to_text", images, texts), ("text_to_image", texts, images)):
        ranks, hits = _chunked_ranks(queries, items, chunk_size, groups, max_k)
        out.update(direction_metrics(prefix, ranks, hits, ks))
        if ranks_out is not None:
            ranks_out[prefix] = (ranks.cpu(), None if hits is None else hits.cpu())
    return out


# --------------------------------------------------------------------------- bootstrap


def _take(array: Array, index: np.ndarray) -> Array:
    if isinstance(array, torch.Tensor):
        # index_select is a few times cheaper than advanced indexing for small row gathers.
        return array.index_select(0, torch.from_numpy(index).to(array.device))
    return array[index]


def _resample_indices(rng: np.random.Generator, size: int, n: int) -> Iterator[np.ndarray]:
    """Yield n index vectors drawn with replacement, generated in memory-bounded blocks."""
    block = max(1, _MAX_BOOTSTRAP_BLOCK // size)
    for start in range(0, n, block):
        yield from rng.integers(0, size, size=(min(block, n - start), size))


def _defined(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _interval(estimate: Any, values: list[float], n: int, alpha: float) -> dict[str, float | int | None]:
    low, high = np.percentile(values, [100 * alpha / 2, 100 * (1 - alpha / 2)]) if values else (None, None)
    return {
        "estimate": _defined(estimate),
        "low": None if low is None else float(low),
        "high": None if high is None else float(high),
        "n": n,
        "skipped": n - len(values),
    }


def bootstrap_cis(
    metric_fn: Callable[..., Mapping[str, Any]],
    *arrays: Array,
    n: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, dict[str, float | int | None]]:
    """Percentile bootstrap intervals of every value of a dict-valued ``metric_fn(*arrays)``.

    One set of resamples serves all metrics (consistent intervals, one metric computation per
    resample). Every resample uses the same row indices for all arrays. Resamples where a metric is
    undefined (None or NaN, e.g. an AUROC drawn with one class only) are skipped for that metric and
    counted. Per key: ``estimate`` (metric on the full data), ``low``, ``high`` (None if every
    resample was skipped), ``n`` (resamples drawn) and ``skipped``.
    """
    if not arrays:
        raise ValueError("bootstrap needs at least one array")
    size = len(arrays[0])
    if any(len(a) != size for a in arrays):
        raise ValueError("all arrays must have the same number of rows")
    if n < 1 or not 0 < alpha < 1:
        raise ValueError("n must be positive and alpha in (0, 1)")
    estimate = metric_fn(*arrays)
    samples: dict[str, list[float]] = {key: [] for key in estimate}
    rng = np.random.default_rng(seed)
    for index in _resample_indices(rng, size, n):
        values = metric_fn(*(_take(a, index) for a in arrays))
        for key, kept in samples.items():
            value = _defined(values.get(key))
            if value is not None:
                kept.append(value)
    return {key: _interval(estimate[key], kept, n, alpha) for key, kept in samples.items()}


def bootstrap_ci(
    metric_fn: Callable[..., Any],
    *arrays: Array,
    n: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, float | int | None]:
    """Percentile bootstrap interval of a scalar ``metric_fn(*arrays)``; see ``bootstrap_cis``."""
    return bootstrap_cis(lambda *a: {"value": metric_fn(*a)}, *arrays, n=n, seed=seed, alpha=alpha)["value"]


# --------------------------------------------------------------------------- seeds


def seed_average(metric_fn: Callable[..., Mapping[str, Any]]) -> Callable[..., dict[str, float | None]]:
    """Turn ``metric_fn(scores, *rest)`` into a function of scores stacked over seeds ``[N, S, ...]``.

    The result is the mean over seeds of each metric (None where a seed's value is undefined), so a
    bootstrap of it resamples test rows jointly for all seeds: the interval of a seed-averaged number.
    """

    def averaged(stacked: Array, *rest: Array) -> dict[str, float | None]:
        per_seed = [metric_fn(stacked[:, s], *rest) for s in range(stacked.shape[1])]
        out: dict[str, float | None] = {}
        for key in per_seed[0]:
            values = [_defined(p[key]) for p in per_seed]
            out[key] = None if any(v is None for v in values) else float(np.mean(values))
        return out

    return averaged


def mean_std(values: Sequence[float | None]) -> dict[str, Any]:
    """Mean and population standard deviation (ddof=0, numpy's default) of the defined values."""
    kept = [float(v) for v in values if _defined(v) is not None]
    return {
        "mean": float(np.mean(kept)) if kept else None,
        "std": float(np.std(kept)) if kept else None,
        "n": len(kept),
        "values": [_defined(v) for v in values],
    }


def mean_of(per_class: Mapping[str, Mapping[str, Any]], names: Sequence[str], key: str = "auroc") -> float | None:
    """Mean of ``per_class[name][key]`` over ``names`` where it is defined; None if none is."""
    kept = [per_class[c][key] for c in names if c in per_class and per_class[c][key] is not None]
    return float(np.mean(kept)) if kept else None
