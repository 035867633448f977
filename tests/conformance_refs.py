"""Reference implementations and fixed inputs for the conformance suite (and benchmarks/conformance.py).

References, written here from their published definitions (not imported, so they cannot drift):

- scikit-learn: ``roc_auc_score``, ``roc_curve``, ``accuracy_score``, ``f1_score``,
  ``precision_recall_fscore_support``, ``confusion_matrix``, ``recall_score``;
- open_clip's ``get_clip_metrics`` (``src/training/train.py``): rank = position of the match in
  ``argsort(logit_scale · image @ textᵀ, descending)``; mean rank + 1, floor(median) + 1, mean(rank < k).
  open_clip calls the default (unstable) sort, so the order among exact ties is unspecified there;
  the transcription uses ``stable=True``, the rule umcl states;
- CheXzero's pos/neg zero-shot (``zero_shot.py``, ``run_softmax_eval``): cosine similarity of the
  normalised image feature with the positive and the negative prompt embedding, then
  ``exp(pos) / (exp(pos) + exp(neg))`` per class, scored with sklearn's AUROC.

Every case is a fixed random input with the hard parts in it: tied scores, duplicate texts, NaN and
uncertain labels, a class with two positives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from umcl_cli.evaluation import metrics as M
from umcl_cli.evaluation.prompt_sources import ClassTexts
from umcl_cli.evaluation.zeroshot import headline_metrics, pair_log_odds, pair_probability

CLASSES = ["atelectasis", "cardiomegaly", "edema", "effusion", "rare"]


@dataclass
class Case:
    """One metric family: umcl's values and the reference's, in the same order."""

    metric: str
    reference: str
    umcl: list[float]
    expected: list[float]

    @property
    def max_abs_diff(self) -> float:
        return float(np.max(np.abs(np.asarray(self.umcl, float) - np.asarray(self.expected, float))))


# --------------------------------------------------------------------------- fixed inputs


def multilabel_inputs(seed: int = 0, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Scores rounded to 2 decimals (many ties), NaN and -1 labels, a class with 2 positives."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, len(CLASSES))) < 0.3).astype(np.float64)
    labels[:, 4] = 0.0
    labels[rng.choice(n, 2, replace=False), 4] = 1.0
    scores = np.round(labels * 0.3 + rng.random(labels.shape), 2)
    labels[rng.random(n) < 0.1, 0] = np.nan
    labels[rng.random(n) < 0.1, 1] = -1.0
    return scores, labels


def multiclass_inputs(seed: int = 1, n: int = 300, c: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Logits on a coarse grid (ties inside a row), a class never predicted by construction."""
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, c, n)
    logits = np.round(rng.random((n, c)) * 3, 0)
    logits[np.arange(n), targets] += rng.random(n) < 0.5
    logits[:, c - 1] = -1.0  # never the argmax
    return logits, targets


def retrieval_inputs(seed: int = 2, n: int = 150, dim: int = 12) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Paired features where 30 texts are copies of one boilerplate report (exact ties)."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    texts = images + 0.9 * torch.randn(n, dim, generator=gen, dtype=torch.float64)
    texts[::5] = texts[0]  # duplicates: every fifth report is the same text
    labels = torch.randint(0, 2, (n, 3), generator=gen).double()
    return torch.nn.functional.normalize(images, dim=1), torch.nn.functional.normalize(texts, dim=1), labels


def zeroshot_inputs(seed: int = 3, n: int = 300, dim: int = 16) -> tuple[torch.Tensor, ClassTexts, np.ndarray]:
    gen = torch.Generator().manual_seed(seed)
    pos = torch.nn.functional.normalize(torch.randn(len(CLASSES), dim, generator=gen), dim=1)
    neg = torch.nn.functional.normalize(torch.randn(len(CLASSES), dim, generator=gen), dim=1)
    labels = (torch.rand(n, len(CLASSES), generator=gen) < 0.3).float()
    labels[:, 4] = 0.0
    labels[:2, 4] = 1.0
    features = torch.nn.functional.normalize(torch.randn(n, dim, generator=gen) + labels @ (pos - neg), dim=1)
    y = labels.numpy().astype(np.float64)
    y[::7, 2] = np.nan
    return features, ClassTexts(pos, neg, "conformance", {}), y


# --------------------------------------------------------------------------- references


def open_clip_metrics(images: torch.Tensor, texts: torch.Tensor, logit_scale: float = 100.0) -> dict[str, float]:
    """Transcription of open_clip's ``get_clip_metrics`` (stable sort among ties, see the module doc)."""
    per_image = logit_scale * images @ texts.T
    truth = torch.arange(len(texts)).view(-1, 1)
    out = {}
    for name, logit in (("image_to_text", per_image), ("text_to_image", per_image.T)):
        order = torch.argsort(logit, descending=True, stable=True)
        position = torch.where(order == truth)[1].numpy()
        out[f"{name}_mean_rank"] = float(position.mean() + 1)
        out[f"{name}_median_rank"] = float(np.floor(np.median(position)) + 1)
        for k in (1, 5, 10):
            out[f"{name}_R@{k}"] = float(np.mean(position < k))
    return out


def precision_at_k(images: torch.Tensor, texts: torch.Tensor, labels: torch.Tensor, k: int) -> dict[str, float]:
    """Brute-force label-aware P@k: share of the top-k whose label row equals the query's."""
    scores = images @ texts.T
    out = {}
    for name, logit in (("image_to_text", scores), ("text_to_image", scores.T)):
        top = torch.topk(logit, k, dim=1).indices
        out[f"{name}_P@{k}"] = float((labels[top] == labels[:, None, :]).all(dim=2).double().mean())
    return out


def report_level_metrics(images: torch.Tensor, texts: torch.Tensor, ids: np.ndarray) -> dict[str, float]:
    """Brute force over merged items: each id scores its best member; stable order among tied ids."""
    scores = images @ texts.T
    ids_t = torch.from_numpy(ids)
    n_items = int(ids.max()) + 1
    out = {}
    for name, logit in (("image_to_text", scores), ("text_to_image", scores.T)):
        positions = []
        for i in range(len(ids)):
            best = torch.stack([logit[i, ids_t == g].max() for g in range(n_items)])
            order = torch.argsort(best, descending=True, stable=True)
            positions.append(int(torch.where(order == int(ids[i]))[0]))
        position = np.asarray(positions)
        out[f"{name}_report_mean_rank"] = float(position.mean() + 1)
        out[f"{name}_report_median_rank"] = float(np.floor(np.median(position)) + 1)
        for k in (1, 5, 10):
            out[f"{name}_report_R@{k}"] = float(np.mean(position < k))
    return out


def chexzero_probability(features: torch.Tensor, texts: ClassTexts) -> np.ndarray:
    """CheXzero's ``run_softmax_eval``: exp(pos) / (exp(pos) + exp(neg)) of unscaled cosines."""
    f = features.double().numpy()
    pos_pred = f @ texts.positive.double().numpy().T
    neg_pred = f @ texts.negative.double().numpy().T
    return np.exp(pos_pred) / (np.exp(pos_pred) + np.exp(neg_pred))


def sklearn_auroc(scores: np.ndarray, labels: np.ndarray) -> list[float | None]:
    """sklearn AUROC per class over rows labelled 0/1; None where a class has one label value."""
    out: list[float | None] = []
    for c in range(labels.shape[1]):
        valid = np.isin(labels[:, c], [0, 1])
        y = labels[valid, c]
        out.append(roc_auc_score(y, scores[valid, c]) if 0 < y.sum() < len(y) else None)
    return out


# --------------------------------------------------------------------------- cases


def _auroc_case() -> Case:
    scores, labels = multilabel_inputs()
    result = M.multilabel_auroc(scores, labels, CLASSES)
    expected = sklearn_auroc(scores, labels)
    mine = [result["per_class"][c]["auroc"] for c in CLASSES] + [result["mean_auroc"]]
    return Case(
        "AUROC per class + mean (ties, NaN/-1 labels, 2-positive class)",
        "scikit-learn",
        mine,
        [*expected, float(np.mean(expected))],
    )


def _roc_case() -> Case:
    scores, labels = multilabel_inputs()
    valid = np.isin(labels[:, 0], [0, 1])
    fpr, tpr = M.roc_curve_points(scores[valid, 0], labels[valid, 0])
    ref_fpr, ref_tpr, _ = roc_curve(labels[valid, 0], scores[valid, 0], drop_intermediate=False)
    return Case("ROC curve points (fpr, tpr)", "scikit-learn", fpr + tpr, list(ref_fpr) + list(ref_tpr))


def _binary_case() -> Case:
    scores, labels = multilabel_inputs()
    y, s = labels[:, 2], scores[:, 2]
    mine = M.binary_metrics(s, y, threshold=0.6)
    pred = (s >= 0.6).astype(int)
    expected = [roc_auc_score(y, s), accuracy_score(y, pred), recall_score(y, pred), recall_score(y, pred, pos_label=0)]
    keys = ("auroc", "accuracy", "sensitivity", "specificity")
    return Case("binary AUROC, accuracy, sensitivity, specificity", "scikit-learn", [mine[k] for k in keys], expected)


def _multiclass_case() -> Case:
    logits, targets = multiclass_inputs()
    names = [f"c{i}" for i in range(logits.shape[1])]
    mine = M.multiclass_metrics(torch.from_numpy(logits), torch.from_numpy(targets), names)
    pred = logits.argmax(axis=1)  # first maximum on ties, as torch.argmax
    p, r, f, _ = precision_recall_fscore_support(targets, pred, labels=range(len(names)), zero_division=0)
    umcl = [mine["accuracy"], mine["macro_f1"]]
    umcl += [mine["per_class"][n][k] for n in names for k in ("precision", "recall", "f1")]
    umcl += [float(v) for row in mine["confusion_matrix"] for v in row]
    expected = [accuracy_score(targets, pred), f1_score(targets, pred, average="macro")]
    expected += [v for i in range(len(names)) for v in (p[i], r[i], f[i])]
    expected += [float(v) for v in confusion_matrix(targets, pred, labels=range(len(names))).ravel()]
    return Case("accuracy, macro-F1, per-class P/R/F1, confusion matrix (tied logits)", "scikit-learn", umcl, expected)


def _retrieval_case() -> Case:
    images, texts, _ = retrieval_inputs()
    mine = M.retrieval_metrics(images, texts, chunk_size=16)
    expected = open_clip_metrics(images, texts)
    return Case(
        "instance Recall@1/5/10, median and mean rank (30 duplicate reports)",
        "open_clip get_clip_metrics",
        [mine[k] for k in expected],
        list(expected.values()),
    )


def _report_level_case() -> Case:
    images, texts, _ = retrieval_inputs()
    reports = ["boilerplate" if i % 5 == 0 else f"report {i}" for i in range(len(texts))]
    studies = [f"study {i // 2}" for i in range(len(texts))]  # two views per study
    ids = M.report_items(reports, studies)
    mine = M.retrieval_metrics(images, texts, chunk_size=16, report_ids=ids)
    expected = report_level_metrics(images, texts, ids)
    return Case(
        "report-level Recall@1/5/10, median and mean rank (merged copies and views)",
        "brute force over merged items",
        [mine[k] for k in expected],
        list(expected.values()),
    )


def _precision_case() -> Case:
    images, texts, labels = retrieval_inputs(seed=4)  # no exact score ties at the k-th place here
    texts = torch.nn.functional.normalize(texts + 1e-3 * torch.arange(len(texts))[:, None], dim=1)
    mine = M.retrieval_metrics(images, texts, ks=(1, 5, 10), labels=labels, chunk_size=16)
    expected: dict[str, float] = {}
    for k in (1, 5, 10):
        expected.update(precision_at_k(images, texts, labels, k))
    return Case(
        "label-aware P@1/5/10", "brute force (full N x N)", [mine[k] for k in expected], list(expected.values())
    )


def _chexzero_case() -> Case:
    features, texts, labels = zeroshot_inputs()
    reference = chexzero_probability(features, texts)
    expected = sklearn_auroc(reference, labels)
    umcl = []
    for scale in (1.0, 14.3, 100.0, 1000.0):
        scores = pair_log_odds(features, texts, scale).numpy()
        result = M.multilabel_auroc(scores, labels, CLASSES)
        umcl += [result["per_class"][c]["auroc"] for c in CLASSES]
    return Case(
        "zero-shot pos/neg AUROC per class at logit scale 1, 14.3, 100, 1000",
        "CheXzero run_softmax_eval",
        umcl,
        expected * 4,
    )


def _chexzero_probability_case() -> Case:
    features, texts, _ = zeroshot_inputs()
    mine = pair_probability(features, texts, 1.0).numpy().ravel()
    return Case(
        "zero-shot pos/neg probability (scale 1)",
        "CheXzero run_softmax_eval",
        list(mine),
        list(chexzero_probability(features, texts).ravel()),
    )


def _bootstrap_case() -> Case:
    scores, labels = multilabel_inputs(n=120)
    headline = headline_metrics("multilabel", CLASSES, CLASSES[:4], labels)
    ci = M.bootstrap_cis(headline, torch.from_numpy(scores), torch.from_numpy(labels), n=200, seed=5)
    kept = []
    scorable = sklearn_auroc(scores, labels)
    for index in np.random.default_rng(5).integers(0, len(labels), size=(200, len(labels))):
        values = sklearn_auroc(scores[index], labels[index])
        needed = [v for v, full in zip(values, scorable, strict=True) if full is not None]
        if all(v is not None for v in needed):
            kept.append(np.mean(needed))
    entry = ci["mean_auroc"]
    return Case(
        "bootstrap 95% CI of mean AUROC (low, high, skipped)",
        "numpy percentile over sklearn",
        [entry["low"], entry["high"], entry["skipped"]],
        [np.percentile(kept, 2.5), np.percentile(kept, 97.5), 200 - len(kept)],
    )


CASES: list[Callable[[], Case]] = [
    _auroc_case,
    _roc_case,
    _binary_case,
    _multiclass_case,
    _retrieval_case,
    _report_level_case,
    _precision_case,
    _chexzero_case,
    _chexzero_probability_case,
    _bootstrap_case,
]


def all_cases() -> list[Case]:
    return [make() for make in CASES]
