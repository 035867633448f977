"""Zero-shot classification, with the protocol chosen by the dataset's recorded task type.

- multiclass (5x200-style): argmax over class prompts → accuracy, macro-F1, confusion matrix;
- multilabel: CheXzero's softmax over a positive and a negative prompt per class → per-class AUROC,
  averaged over all classes (``mean_auroc``) and over the dataset's standard classes
  (``mean_auroc_eval_classes``; CheXpert: its five competition tasks);
- binary: the same pair for the one class → AUROC, accuracy, sensitivity, specificity.

The pair is scored by its log-odds ``scale·(pos − neg)``, the logit of CheXzero's probability: the
same ranking, but a float32 softmax rounds large gaps to exactly 1.0, so at the logit scales trained
models reach (100) it would tie scores and change the AUROC. Labels follow ``labels.py``.

``--task`` may ask for another protocol when the data fits it (``check_task``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from umcl_cli.data.manifest import PreparedDataset
from umcl_cli.errors import UsageError
from umcl_cli.evaluation import metrics as M
from umcl_cli.evaluation.features import encode_image_files
from umcl_cli.evaluation.labels import bootstrap_record, bootstrap_units, label_matrix, multiclass_targets
from umcl_cli.evaluation.plots import confusion_matrix_png, roc_curves_png
from umcl_cli.evaluation.prompt_sources import ClassTexts
from umcl_cli.model.dual_encoder import DualEncoder

TASKS = ("multiclass", "multilabel", "binary")


def eval_labels(ds: PreparedDataset, split: str, classes: list[str]) -> np.ndarray:
    """Labels of ``split``: blank → 0 (not mentioned), uncertain (-1) → NaN; see ``labels.py``."""
    return label_matrix(ds.split(split), classes)


def default_classes(ds: PreparedDataset, task: str) -> list[str]:
    """Multilabel scores every class (both means are reported); the others use the standard classes."""
    return list(ds.classes) if task == "multilabel" else ds.eval_classes


def check_task(ds: PreparedDataset, task: str, classes: list[str], labels: np.ndarray, split: str) -> None:
    """Refuse a protocol the data does not fit, before any image is encoded."""
    if task not in TASKS:
        raise UsageError(f"--task {task} is not a zero-shot task", f"use one of: {', '.join(TASKS)}")
    if task == "binary" and len(classes) != 1:
        raise UsageError(
            f"binary zero-shot needs one class, {ds.name} would score {len(classes)}", "pass --classes NAME"
        )
    if task == "multiclass":
        bad = int(((labels == 1).sum(axis=1) != 1).sum())
        if bad:
            raise UsageError(
                f"multiclass zero-shot does not fit dataset {ds.name} (task: {ds.task}): {bad} of {len(labels)} "
                f"'{split}' rows do not have exactly one positive among {classes}",
                "use --task multilabel, or a single-positive set such as a 5x200 subset",
            )


def pair_log_odds(image_features: torch.Tensor, texts: ClassTexts, scale: float) -> torch.Tensor:
    """``[N, C]`` float64 log-odds of the positive prompt against the negative one, ``scale·(pos − neg)``."""
    features = image_features.double()
    return scale * (features @ texts.positive.double().T - features @ texts.negative.double().T)


def pair_probability(image_features: torch.Tensor, texts: ClassTexts, scale: float) -> torch.Tensor:
    """``[N, C]`` probability of the positive prompt in a softmax over (positive, negative), CheXzero's score.

    It rounds to 1.0 for large gaps even in float64, so metrics rank by ``pair_log_odds`` instead.
    """
    return torch.sigmoid(pair_log_odds(image_features, texts, scale))


def zeroshot_scores(
    model: DualEncoder, ds: PreparedDataset, split: str, image_size: int
) -> tuple[torch.Tensor, list[Path]]:
    frame = ds.split(split)
    if frame.height == 0:
        raise UsageError(f"dataset {ds.name} has no '{split}' rows", "choose another --split")
    paths = [ds.image_file(p) for p in frame["image_path"].to_list()]
    return encode_image_files(model, paths, image_size), paths


def task_scores(model: DualEncoder, image_features: torch.Tensor, texts: ClassTexts, task: str) -> torch.Tensor:
    """``[N, C]`` class logits (multiclass) or positive-vs-negative prompt log-odds (the others)."""
    if task == "multiclass":
        return image_features @ texts.positive.T
    return pair_log_odds(image_features, texts, float(model.scale().detach()))


def binary_on_log_odds(log_odds: torch.Tensor, labels: torch.Tensor, threshold: float) -> dict[str, float | None]:
    """``binary_metrics`` of log-odds scores at a *probability* threshold (positive: p >= threshold)."""
    if not 0 < threshold < 1:
        raise UsageError(f"threshold {threshold} is not a probability in (0, 1)", "pass a threshold such as 0.5")
    result = M.binary_metrics(log_odds, labels, threshold=float(np.log(threshold / (1 - threshold))))
    return {**result, "threshold": threshold}


def headline_metrics(
    task: str, classes: list[str], standard: list[str], labels: np.ndarray, threshold: float = 0.5
) -> Callable[[torch.Tensor, torch.Tensor], dict[str, float | None]]:
    """The task's headline metrics as one function of (scores ``[N, C]``, labels ``[N, C]``), for bootstraps.

    ``labels`` are the full test labels: the multilabel means average exactly the classes scorable
    on them, so a resample that loses a class's positives is skipped, not averaged over fewer classes.
    """
    scorable = M.scorable_classes(labels, classes)
    scorable_standard = [c for c in standard if c in scorable]

    def multiclass(scores: torch.Tensor, labels: torch.Tensor) -> dict[str, float | None]:
        r = M.multiclass_metrics(scores, multiclass_targets(labels), classes)
        return {"accuracy": r["accuracy"], "macro_f1": r["macro_f1"]}

    def multilabel(scores: torch.Tensor, labels: torch.Tensor) -> dict[str, float | None]:
        per_class = M.multilabel_auroc(scores, labels, classes)["per_class"]
        return {
            "mean_auroc": M.mean_auroc_over(per_class, scorable),
            "mean_auroc_eval_classes": M.mean_auroc_over(per_class, scorable_standard),
        }

    def binary(scores: torch.Tensor, labels: torch.Tensor) -> dict[str, float | None]:
        valid = ~torch.isnan(labels[:, 0])
        r = binary_on_log_odds(scores[valid, 0], labels[valid, 0], threshold)
        return {k: r[k] for k in ("auroc", "accuracy", "sensitivity", "specificity")}

    return {"multiclass": multiclass, "multilabel": multilabel, "binary": binary}[task]


def scored_rows(labels: np.ndarray) -> torch.Tensor:
    """Rows labelled for at least one class: the others add nothing but noise to a bootstrap."""
    return torch.from_numpy(~np.isnan(labels).all(axis=1))


def evaluate(
    model: DualEncoder,
    image_features: torch.Tensor,
    texts: ClassTexts,
    ds: PreparedDataset,
    split: str,
    classes: list[str],
    out_dir: Path,
    bootstrap: int = 1000,
    task: str | None = None,
    threshold: float = 0.5,
    bootstrap_seed: int = 0,
    bootstrap_unit: str = "auto",
) -> dict[str, Any]:
    """Score ``image_features`` (rows of ``split``) against ``texts``; every headline metric gets a CI."""
    task = task or ds.task
    labels = eval_labels(ds, split, classes)
    check_task(ds, task, classes, labels, split)
    out_dir.mkdir(parents=True, exist_ok=True)
    standard = [c for c in ds.eval_classes if c in classes]
    scores, y = task_scores(model, image_features, texts, task), torch.from_numpy(labels)
    headline = headline_metrics(task, classes, standard, labels, threshold)
    rows = scored_rows(labels)
    clusters, unit = bootstrap_units(ds.split(split).filter(pl.Series(rows.numpy())), bootstrap_unit)
    result: dict[str, Any] = {
        "task": task,
        "classes": classes,
        "n": len(labels),
        "metrics": headline(scores, y),
        "ci95": (
            M.bootstrap_cis(headline, scores[rows], y[rows], n=bootstrap, seed=bootstrap_seed, clusters=clusters)
            if bootstrap
            else {}
        ),
        "bootstrap": bootstrap_record(bootstrap, bootstrap_seed, unit),
    }
    title = f"zero-shot {ds.name} ({texts.source})"
    if task == "multiclass":
        full = M.multiclass_metrics(scores, multiclass_targets(y), classes)
        plot = confusion_matrix_png(full["confusion_matrix"], classes, out_dir / "confusion_matrix.png", title)
        result.update(
            chance={"accuracy": 1 / len(classes), "macro_f1": 1 / len(classes)},
            per_class=full["per_class"],
            confusion_matrix=full["confusion_matrix"],
            plots=[plot.name],
        )
        return result
    if task == "binary":
        valid = ~torch.isnan(y[:, 0])
        per_class = {classes[0]: binary_on_log_odds(scores[valid, 0], y[valid, 0], threshold)}
        result.update(chance={"auroc": 0.5}, per_class=per_class, threshold=threshold)
    else:
        per_class = M.multilabel_auroc(scores, y, classes)["per_class"]
        result.update(chance=dict.fromkeys(result["metrics"], 0.5), per_class=per_class, eval_classes=standard)
    result["plots"] = _roc_plot(scores, labels, classes, per_class, out_dir, title)
    return result


def _roc_plot(
    probs: torch.Tensor,
    labels: np.ndarray,
    classes: list[str],
    per_class: dict[str, dict[str, Any]],
    out_dir: Path,
    title: str,
) -> list[str]:
    curves = {}
    for j, c in enumerate(classes):
        valid = ~np.isnan(labels[:, j])
        y = labels[valid, j]
        if 0 < y.sum() < len(y):
            fpr, tpr = M.roc_curve_points(probs[torch.from_numpy(valid), j], torch.from_numpy(y))
            curves[c] = (fpr, tpr, per_class[c]["auroc"])
    return [roc_curves_png(curves, out_dir / "roc_curves.png", title).name] if curves else []
