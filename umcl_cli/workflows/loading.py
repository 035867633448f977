"""Loading a checkpoint for evaluation, and the checks every evaluation makes before encoding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from umcl_cli.data.manifest import PreparedDataset
from umcl_cli.data.resolve import resolve_dataset
from umcl_cli.errors import UsageError
from umcl_cli.evaluation.zeroshot import check_task, default_classes, eval_labels
from umcl_cli.model.checkpoint import load_model
from umcl_cli.model.dual_encoder import DualEncoder


def load_eval_model(ckpt: Path) -> DualEncoder:
    """``model.pt`` rebuilt in eval mode, on the GPU when there is one."""
    model, _ = load_model(ckpt)
    if torch.cuda.is_available():
        model.cuda()
    return model


def image_size(model: DualEncoder) -> int:
    """The input size the image encoder was trained at (``model.pt`` records it in the encoder)."""
    return int(model.image_encoder.image_size)


def choose_classes(ds: PreparedDataset, requested: str | list[str] | None) -> list[str]:
    """``requested`` (comma-separated or a list) checked against the dataset; default its evaluation classes."""
    if not requested:
        return ds.eval_classes
    parts = requested.split(",") if isinstance(requested, str) else requested
    classes = [c.strip() for c in parts if c.strip()]
    unknown = [c for c in classes if c not in ds.classes]
    if unknown:
        raise UsageError(f"dataset {ds.name} has no classes {unknown}", f"choose from: {', '.join(ds.classes)}")
    return classes


def zeroshot_problem(
    dataset: str, data_root: str | None, classes: str | list[str] | None, task: str | None, split: str
) -> tuple[PreparedDataset, str, list[str], np.ndarray]:
    """Dataset, task, class names and checked labels of a zero-shot run, before anything is encoded."""
    ds = resolve_dataset(dataset, data_root)
    task = task or ds.task
    class_names = choose_classes(ds, classes) if classes else default_classes(ds, task)
    if ds.split(split).height == 0:
        raise UsageError(f"dataset {ds.name} has no '{split}' rows", "choose another --split")
    labels = eval_labels(ds, split, class_names)
    check_task(ds, task, class_names, labels, split)
    return ds, task, class_names, labels
