"""Pure metric functions: classification, AUROC, retrieval, bootstrap intervals and seed averages.

Every public function takes torch tensors (numpy arrays are accepted too) and returns plain Python
floats, lists and dicts, so results can be written straight to JSON.

Conventions shared by the AUROC functions: only the *order* of scores matters, so scores are mapped
to [0, 1] by their dense rank before they reach torchmetrics. torchmetrics otherwise applies a sigmoid
to any input outside [0, 1], which saturates large logits into artificial ties and changes the AUROC.
Scores (and retrieval features) must be finite: a NaN would otherwise compare as "not greater" and rank
above everything, so every metric refuses NaN / inf with ``NonFiniteScores``, naming how many there are.
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

from umcl_cli.errors import RuntimeFailure

Array = torch.Tensor | np.ndarray

# Bootstrap index blocks are capped at this many int64 entries (~64 MB) so large N stays bounded.
_MAX_BOOTSTRAP_BLOCK = 1 << 23
# Query rows per step of the report-level ranking (its temporaries are [rows, report items]).
_REPORT_ROWS = 128


class NonFiniteScores(RuntimeFailure):
    """Scores or features with NaN / inf values: no ranking metric is defined on them."""


def check_finite(values: Array, what: str = "scores") -> None:
    """Raise ``NonFiniteScores`` naming how many entries of ``values`` are NaN or infinite."""
    values = torch.as_tensor(values)
    if not values.is_floating_point():
        return
    finite = torch.isfinite(values)
    if bool(finite.all()):
        return
    n_nan = int(torch.isnan(values).sum())
    n_inf = int((~finite).sum()) - n_nan
    raise NonFiniteScores(
        f"{what} hold {n_nan} NaN and {n_inf} infinite values out of {values.numel()}; ranking metrics need finite "
        "values",
        "the model produced non-finite outputs: evaluate an earlier checkpoint or retrain with a lower learning rate",
    )


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
    check_finite(logits, "class scores")
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
    check_finite(scores)
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


def scorable_classes(labels: Array, class_names: Sequence[str]) -> list[str]:
    """Classes whose rows labelled 0 or 1 include both values, i.e. whose AUROC is defined."""
    labels = _as_tensor(labels)
    n_pos = (labels == 1).sum(dim=0)
    n_neg = (labels == 0).sum(dim=0)
    return [name for c, name in enumerate(class_names) if n_pos[c] > 0 and n_neg[c] > 0]


def mean_auroc_over(per_class: Mapping[str, Mapping[str, Any]], names: Sequence[str]) -> float | None:
    """Mean AUROC over exactly ``names``; None if any of them is undefined (or ``names`` is empty).

    Used with the classes scorable on the full test set, a bootstrap resample in which one of them
    lost all its positives becomes a counted skip instead of a mean over fewer classes.
    """
    values = [per_class[c]["auroc"] for c in names]
    if not values or any(v is None for v in values):
        return None
    return float(np.mean(values))


def _binary_inputs(scores: Array, labels: Array) -> tuple[torch.Tensor, torch.Tensor]:
    scores, labels = _as_tensor(scores).flatten(), _as_tensor(labels).flatten()
    if scores.shape != labels.shape:
        raise ValueError(f"scores and labels differ in size: {scores.numel()} vs {labels.numel()}")
    if not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError("binary labels must be 0 or 1")
    check_finite(scores)
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
    report_ids: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Instance rank of item i for query i, top-k group hits (with ``groups``) and report-level ranks.

    Instance rank (open_clip's, with a stable sort): the items scored strictly higher than the match
    plus the tied items that come before it in the gallery. Read from the same score block as the
    competitors so rounding cannot make the match outrank itself. Report-level rank (with
    ``report_ids``, one id per pair): the same rule applied to items merged by id, each scored by its
    best member. One [chunk_size, N] score buffer is allocated once and reused; the instance ranks
    are counted in place (a bool ``.sum()`` would silently upcast to an int64 copy 2x its size).
    """
    n = queries.shape[0]
    device = queries.device
    rows_per_block = min(chunk_size, n)
    block_buffer = torch.empty(rows_per_block, n, dtype=queries.dtype, device=device)
    # 0/1 partial sums stay exact in float32 up to 2**24; beyond that count in float64.
    count_dtype = torch.float64 if n > 2**24 else None
    ranks = torch.empty(n, dtype=torch.long, device=device)
    hits = None if groups is None else torch.empty(n, max_k, dtype=torch.bool, device=device)
    report_ranks = None if report_ids is None else torch.empty(n, dtype=torch.long, device=device)
    n_reports = 0 if report_ids is None else int(report_ids.max()) + 1
    for start in range(0, n, rows_per_block):
        stop = min(start + rows_per_block, n)
        block = torch.mm(queries[start:stop], items.T, out=block_buffer[: stop - start])
        rows = torch.arange(stop - start, device=device)
        truth = block[rows, rows + start].unsqueeze(1)
        if hits is not None:
            top = block.topk(max_k, dim=1).indices
            hits[start:stop] = groups[top] == groups[start:stop].unsqueeze(1)
        if report_ids is not None:
            report_ranks[start:stop] = _report_ranks(block, report_ids, report_ids[start:stop], n_reports)
        # In place: the block becomes 1.0 where an item outranks the match, then count per row.
        # Items before the block's rows precede every query of the block, items after it follow.
        block[:, :start].ge_(truth)
        block[:, stop:].gt_(truth)
        square = block[:, start:stop]
        earlier = torch.ones(stop - start, stop - start, dtype=torch.bool, device=device).tril_(-1)
        square.copy_(torch.where(earlier, square >= truth, square > truth))
        ranks[start:stop] = block.sum(dim=1, dtype=count_dtype).long()
    return ranks, hits, report_ranks


def _report_ranks(block: torch.Tensor, report_ids: torch.Tensor, own: torch.Tensor, n_reports: int) -> torch.Tensor:
    """Ranks among merged items: each id scores its best member; ties go to the smaller id.

    Works through the block 128 query rows at a time, so its [rows, n_reports] temporaries stay a
    fraction of the score block however many queries the block holds.
    """
    ranks = torch.empty(block.shape[0], dtype=torch.long, device=block.device)
    ids = torch.arange(n_reports, device=block.device)
    for start in range(0, block.shape[0], _REPORT_ROWS):
        rows = block[start : start + _REPORT_ROWS]
        mine = own[start : start + _REPORT_ROWS].unsqueeze(1)
        best = torch.full((rows.shape[0], n_reports), -math.inf, dtype=rows.dtype, device=rows.device)
        best.scatter_reduce_(1, report_ids.expand_as(rows), rows, reduce="amax")
        truth = best.gather(1, mine)
        ranks[start : start + _REPORT_ROWS] = ((best > truth) | ((best == truth) & (ids < mine))).sum(dim=1)
    return ranks


def normalise_report(text: str) -> str:
    """The form in which two reports count as the same report: lower case, single spaces."""
    return " ".join(str(text).lower().split())


def report_items(texts: Sequence[str], studies: Sequence[Any] | None = None) -> np.ndarray:
    """One report-level item id per pair: pairs sharing a normalised report or a study are one item.

    The merge is transitive (connected components), so two views of a study with boilerplate text
    join every other pair that has that text. A ``None`` study joins nothing.
    """
    n = len(texts)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    keys: list[Sequence[Any]] = [[normalise_report(t) for t in texts]]
    if studies is not None:
        if len(studies) != n:
            raise ValueError(f"{len(studies)} study ids for {n} reports")
        keys.append(studies)
    for column in keys:
        first: dict[Any, int] = {}
        for i, key in enumerate(column):
            if key is None:
                continue
            if key in first:
                parent[root(i)] = root(first[key])
            else:
                first[key] = i
    return np.unique([root(i) for i in range(n)], return_inverse=True)[1].astype(np.int64)


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
    report_ids: Array | None = None,
) -> dict[str, float]:
    """Retrieval metrics for paired features (image i matches text i), in both directions.

    Two families. **Instance-level** (open_clip's ``get_clip_metrics``): each pair is its own item;
    the 0-based rank of a query's match is the number of items scored strictly higher plus the tied
    items earlier in the gallery (what open_clip's ``argsort`` gives with a stable sort; open_clip's
    default sort leaves the order among ties unspecified). ``R@k = mean(rank < k)``,
    ``median_rank = floor(median(rank)) + 1``, ``mean_rank = mean(rank) + 1``. The rule is the same
    in both directions, so an identical report of another pair is never credited as the match.
    **Report-level** (with ``report_ids``, see ``report_items``): pairs with the same id are one item
    in the gallery, scored by its best member, and a query is answered by any member of its own
    item; same tie rule over item ids. Keys ``{direction}_report_{R@k,median_rank,mean_rank}``.

    Scores are dot products (pass L2-normalised features for cosine). With ``labels`` ([N, C]; row i
    belongs to pair i), ``P@k`` is the mean fraction of the top-k retrieved items whose label row
    equals the query's label row exactly (the ground-truth item counts when retrieved; order among
    tied scores at the k-th place follows ``torch.topk``; k is capped at N; NaN labels must be
    encoded as a value first). Memory is O(chunk_size x N): the N x N score matrix is never built.
    Work runs on the features' device, so CUDA tensors stay on GPU.

    Keys: ``{image_to_text,text_to_image}_{R@k,median_rank,mean_rank[,P@k]}``. Pass a dict as
    ``ranks_out`` to receive each direction's ``(ranks, top-k hits)`` (report-level ranks under
    ``{direction}_report``), e.g. to bootstrap the metrics over queries with ``direction_metrics``.
    """
    images = torch.as_tensor(image_features).detach()
    texts = torch.as_tensor(text_features).detach().to(images.device)
    if images.ndim != 2 or images.shape != texts.shape:
        shapes = f"{tuple(images.shape)} and {tuple(texts.shape)}"
        raise ValueError(f"expected two [N, D] feature tensors, got {shapes}")
    if chunk_size < 1 or not ks or min(ks) < 1:
        raise ValueError("chunk_size and every k must be positive")
    check_finite(images, "image features")
    check_finite(texts, "text features")
    dtype = torch.promote_types(images.dtype, texts.dtype)
    images, texts = images.to(dtype), texts.to(dtype)
    groups = None
    if labels is not None:
        labels = torch.as_tensor(labels).to(images.device)
        if labels.shape[0] != images.shape[0]:
            raise ValueError(f"labels have {labels.shape[0]} rows, features have {images.shape[0]}")
        # One integer id per distinct label row turns row equality into a cheap id comparison.
        groups = torch.unique(labels.reshape(labels.shape[0], -1), dim=0, return_inverse=True)[1]
    items = None
    if report_ids is not None:
        items = torch.as_tensor(report_ids).to(device=images.device, dtype=torch.long)
        if items.shape != images.shape[:1]:
            raise ValueError(f"{items.numel()} report ids for {images.shape[0]} pairs")
    max_k = min(max(ks), images.shape[0])
    out: dict[str, float] = {}
    for prefix, queries, gallery in (("image_to_text", images, texts), ("text_to_image", texts, images)):
        ranks, hits, report_ranks = _chunked_ranks(queries, gallery, chunk_size, groups, max_k, items)
        out.update(direction_metrics(prefix, ranks, hits, ks))
        if report_ranks is not None:
            out.update(direction_metrics(f"{prefix}_report", report_ranks, None, ks))
        if ranks_out is not None:
            ranks_out[prefix] = (ranks.cpu(), None if hits is None else hits.cpu())
            if report_ranks is not None:
                ranks_out[f"{prefix}_report"] = (report_ranks.cpu(), None)
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


def _resample_clusters(rng: np.random.Generator, clusters: Array, n: int) -> Iterator[np.ndarray]:
    """Yield n row-index vectors, each the rows of as many clusters drawn with replacement as there are.

    Rows of one cluster (a patient, a study) are correlated, so a cluster is the resampled unit.
    """
    ids = np.unique(np.asarray(_as_tensor(clusters)), return_inverse=True)[1].reshape(-1)
    order = np.argsort(ids, kind="stable")
    counts = np.bincount(ids)
    offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
    for _ in range(n):
        picked = rng.integers(0, len(counts), size=len(counts))
        lengths = counts[picked]
        # Row p of the resample is member (p - first position of its cluster) of that cluster.
        shift = np.repeat(offsets[picked] - np.cumsum(lengths) + lengths, lengths)
        yield order[shift + np.arange(int(lengths.sum()))]


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
    clusters: Array | None = None,
) -> dict[str, dict[str, float | int | None]]:
    """Percentile bootstrap intervals of every value of a dict-valued ``metric_fn(*arrays)``.

    One set of resamples serves all metrics (consistent intervals, one metric computation per
    resample). Every resample uses the same row indices for all arrays. With ``clusters`` (one id
    per row, e.g. the patient), whole clusters are resampled instead of rows. Resamples where a
    metric is undefined (None or NaN, e.g. an AUROC drawn with one class only) are skipped for that
    metric and counted. Per key: ``estimate`` (metric on the full data), ``low``, ``high`` (None if
    every resample was skipped), ``n`` (resamples drawn) and ``skipped``.
    """
    if not arrays:
        raise ValueError("bootstrap needs at least one array")
    size = len(arrays[0])
    if any(len(a) != size for a in arrays):
        raise ValueError("all arrays must have the same number of rows")
    if n < 1 or not 0 < alpha < 1:
        raise ValueError("n must be positive and alpha in (0, 1)")
    if clusters is not None and len(clusters) != size:
        raise ValueError(f"{len(clusters)} cluster ids for {size} rows")
    estimate = metric_fn(*arrays)
    samples: dict[str, list[float]] = {key: [] for key in estimate}
    rng = np.random.default_rng(seed)
    indices = _resample_indices(rng, size, n) if clusters is None else _resample_clusters(rng, clusters, n)
    for index in indices:
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
    clusters: Array | None = None,
) -> dict[str, float | int | None]:
    """Percentile bootstrap interval of a scalar ``metric_fn(*arrays)``; see ``bootstrap_cis``."""
    scalar = bootstrap_cis(lambda *a: {"value": metric_fn(*a)}, *arrays, n=n, seed=seed, alpha=alpha, clusters=clusters)
    return scalar["value"]


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
