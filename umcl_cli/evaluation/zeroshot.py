"""Zero-shot classification, with the protocol chosen by the dataset's recorded task type.

- multiclass (5x200-style): argmax over class prompts → accuracy, macro-F1, confusion matrix;
- multilabel: CheXzero's softmax over a positive and a negative prompt per class → AUROC;
- binary: the same pair for the one class → AUROC, accuracy, sensitivity, specificity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from umcl_cli.data.manifest import PreparedDataset
from umcl_cli.errors import UsageError
from umcl_cli.evaluation import metrics as M
from umcl_cli.evaluation.features import encode_image_files
from umcl_cli.evaluation.plots import confusion_matrix_png, roc_curves_png
from umcl_cli.evaluation.prompt_sources import ClassTexts
from umcl_cli.model.dual_encoder import DualEncoder


def eval_labels(ds: PreparedDataset, split: str, classes: list[str]) -> np.ndarray:
    """Test labels: blank → 0 (not mentioned), uncertain (-1) → NaN (excluded from that class)."""
    frame = ds.split(split)
    raw = frame.select(classes).to_numpy().astype(np.float32)
    raw = np.where(np.isnan(raw), 0.0, raw)
    return np.where(raw == -1, np.nan, raw)


def single_positive_targets(labels: np.ndarray, ds_name: str) -> np.ndarray:
    positives = (labels == 1).sum(axis=1)
    if not (positives == 1).all():
        bad = int((positives != 1).sum())
        raise UsageError(
            f"dataset {ds_name} is marked multiclass but {bad} test rows do not have exactly one positive class",
            "re-prepare it, or evaluate it as multilabel",
        )
    return labels.argmax(axis=1)


def pair_probability(image_features: torch.Tensor, texts: ClassTexts, scale: float) -> torch.Tensor:
    """``[N, C]`` probability of the positive prompt in a softmax over (positive, negative)."""
    pos = scale * image_features @ texts.positive.T
    neg = scale * image_features @ texts.negative.T
    return torch.softmax(torch.stack([pos, neg]), dim=0)[0]


def zeroshot_scores(
    model: DualEncoder, ds: PreparedDataset, split: str, image_size: int
) -> tuple[torch.Tensor, list[Path]]:
    frame = ds.split(split)
    if frame.height == 0:
        raise UsageError(f"dataset {ds.name} has no '{split}' rows", "choose another --split")
    paths = [ds.image_file(p) for p in frame["image_path"].to_list()]
    return encode_image_files(model, paths, image_size), paths


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
) -> dict[str, Any]:
    task = task or ds.task
    labels = eval_labels(ds, split, classes)
    scale = float(model.scale().detach())
    plots: list[str] = []
    if task == "multiclass":
        targets = single_positive_targets(labels, ds.name)
        logits = image_features @ texts.positive.T
        result = M.multiclass_metrics(logits, torch.from_numpy(targets), classes)
        preds = logits.argmax(dim=1).numpy()
        headline = {"accuracy": result["accuracy"], "macro_f1": result["macro_f1"]}
        intervals = {}
        if bootstrap:
            intervals["accuracy"] = M.bootstrap_ci(lambda p, t: float((p == t).mean()), preds, targets, n=bootstrap)
            intervals["macro_f1"] = M.bootstrap_ci(
                lambda lg, t: M.multiclass_metrics(lg, t, classes)["macro_f1"],
                logits,
                torch.from_numpy(targets),
                n=min(bootstrap, 300),
            )
        plots.append(
            confusion_matrix_png(
                result["confusion_matrix"],
                classes,
                out_dir / "confusion_matrix.png",
                f"zero-shot {ds.name} ({texts.source})",
            ).name
        )
        chance = {"accuracy": 1 / len(classes), "macro_f1": 1 / len(classes)}
        per_class = result["per_class"]
        extra = {"confusion_matrix": result["confusion_matrix"]}
    elif task in ("multilabel", "binary"):
        probs = pair_probability(image_features, texts, scale)
        if task == "binary":
            if len(classes) != 1:
                raise UsageError(f"binary zero-shot needs one class, {ds.name} has {classes}", "pass --classes NAME")
            valid = ~np.isnan(labels[:, 0])
            result = M.binary_metrics(probs[valid, 0], torch.from_numpy(labels[valid, 0]), threshold=threshold)
            headline = {k: result[k] for k in ("auroc", "accuracy", "sensitivity", "specificity")}
            per_class = {classes[0]: result}
            chance = {"auroc": 0.5}
        else:
            result = M.multilabel_auroc(probs, torch.from_numpy(labels), classes)
            headline = {"mean_auroc": result["mean_auroc"]}
            per_class = result["per_class"]
            chance = {"mean_auroc": 0.5}
        intervals = {}
        if bootstrap:
            key = "auroc" if task == "binary" else "mean_auroc"
            fn = (
                (lambda s, y: M.binary_metrics(s[:, 0], y[:, 0])["auroc"])
                if task == "binary"
                else (lambda s, y: M.multilabel_auroc(s, y, classes)["mean_auroc"])
            )
            sel = ~np.isnan(labels).all(axis=1)
            intervals[key] = M.bootstrap_ci(
                fn, probs[torch.from_numpy(sel)], torch.from_numpy(labels[sel]), n=min(bootstrap, 300)
            )
        curves = {}
        for j, c in enumerate(classes):
            valid = ~np.isnan(labels[:, j])
            y = labels[valid, j]
            if 0 < y.sum() < len(y):
                fpr, tpr = M.roc_curve_points(probs[valid, j], torch.from_numpy(y))
                curves[c] = (fpr, tpr, per_class[c]["auroc"])
        if curves:
            plots.append(
                roc_curves_png(curves, out_dir / "roc_curves.png", f"zero-shot {ds.name} ({texts.source})").name
            )
        extra = {"threshold": threshold} if task == "binary" else {}
    else:
        raise UsageError(f"dataset {ds.name} has unknown task type '{task}'", "re-prepare it with this umcl version")
    return {
        "task": task,
        "classes": classes,
        "n": len(labels),
        "metrics": headline,
        "ci95": intervals,
        "chance": chance,
        "per_class": per_class,
        "plots": plots,
        **extra,
    }
