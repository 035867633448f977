"""Full fine-tuning, the linear probe's companion: the image encoder and a linear head train together.

It runs through the one engine (``umcl_cli.engine.trainer.fit``) with its own ``TrainTask``, like
prompt tuning: masked multi-label binary cross-entropy (uncertain labels, NaN, are left out), AdamW
with a larger learning rate for the new head, warm-up + cosine schedule, batch augmentation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from umcl_cli.contracts import ImageEncoder
from umcl_cli.data.images import load_gray
from umcl_cli.data.transforms import BatchAugment, ImageTransform
from umcl_cli.data.unified import WeightedDistributedSampler
from umcl_cli.engine.task import TrainTask
from umcl_cli.engine.trainer import FitResult, fit, split_decay
from umcl_cli.errors import UsageError
from umcl_cli.evaluation.features import encode_image_files, eval_transform
from umcl_cli.evaluation.short_run import short_run_config
from umcl_cli.model.dual_encoder import DualEncoder


@dataclass
class FinetuneConfig:
    steps: int = 200
    lr: float = 1e-4
    head_lr: float = 1e-3
    batch_size: int = 32
    weight_decay: float = 1e-4


class LabelledImages(Dataset):
    def __init__(self, paths: Sequence[Path], labels: np.ndarray, transform: ImageTransform) -> None:
        self.paths, self.labels, self.transform = list(paths), labels.astype(np.float32), transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"image": self.transform(load_gray(self.paths[i])), "labels": torch.from_numpy(self.labels[i])}


def labelled_collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    return {"images": torch.stack([it["image"] for it in items]), "labels": torch.stack([it["labels"] for it in items])}


class ImageClassifier(nn.Module):
    """An image encoder (trainable) and a linear head over its pooled features."""

    def __init__(self, encoder: ImageEncoder, num_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.output_dim, num_classes)

    def forward(self, inputs: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"logits": self.head(self.encoder(inputs["images"]))}


def masked_bce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy over the labelled (non-NaN) entries only."""
    mask = ~torch.isnan(labels)
    per_entry = F.binary_cross_entropy_with_logits(logits.float(), torch.nan_to_num(labels), reduction="none")
    return (per_entry * mask).sum() / mask.sum().clamp(min=1)


class FinetuneObjective(TrainTask):
    loss_keys = ("labels",)

    def __init__(
        self,
        classifier: ImageClassifier,
        cfg: FinetuneConfig,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.module = classifier
        self.cfg = cfg
        self.augment = augment

    def param_groups(self) -> list[dict[str, Any]]:
        encoder = [(f"encoder.{n}", p) for n, p in self.module.encoder.named_parameters()]
        head = [(f"head.{n}", p) for n, p in self.module.head.named_parameters()]
        wd = self.cfg.weight_decay
        return split_decay(encoder, self.cfg.lr, wd) + split_decay(head, self.cfg.head_lr, wd)

    def to_inputs(self, batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
        images = batch["images"].to(device)
        return {"images": self.augment(images) if self.augment else images, "labels": batch["labels"].to(device)}

    def compute_loss(self, outputs: dict[str, Any], inputs: dict[str, Any]) -> torch.Tensor:
        return masked_bce(outputs["logits"], inputs["labels"])


def finetune_scores(
    model: DualEncoder,
    train_paths: Sequence[Path],
    train_labels: np.ndarray,
    test_paths: Sequence[Path],
    image_size: int,
    cfg: FinetuneConfig,
    seed: int,
) -> tuple[torch.Tensor, FitResult]:
    """Fine-tune ``model``'s image encoder + a head on the train rows; sigmoid scores of the test rows.

    The encoder's weights are restored afterwards, so one loaded model serves every fraction and seed.
    """
    if len(train_paths) < 2:
        raise UsageError(
            f"fine-tuning needs at least 2 training rows, the fraction gives {len(train_paths)}",
            "raise --fraction",
        )
    encoder = model.image_encoder
    pristine = {k: v.detach().clone() for k, v in encoder.state_dict().items()}
    classifier = ImageClassifier(encoder, train_labels.shape[1]).requires_grad_(True)
    data = LabelledImages(train_paths, train_labels, eval_transform(model, image_size))
    train_cfg = short_run_config(
        cfg.steps,
        cfg.batch_size,
        len(data),
        cfg.lr,
        weight_decay=cfg.weight_decay,
        warmup_steps=min(10, cfg.steps // 10),
        grad_clip=1.0,
    )
    try:
        result = fit(
            FinetuneObjective(classifier, cfg, augment=BatchAugment()),
            data,
            labelled_collate,
            lambda rank, world: WeightedDistributedSampler(np.ones(len(data)), rank, world, seed=seed),
            train_cfg,
            None,  # no run directory: nothing but the scores outlives the run
            seed=seed,
            description=f"fine-tune ({len(data)} rows, seed {seed})",
        )
        classifier.eval()
        with torch.no_grad():
            features = encode_image_files(model, test_paths, image_size, what="backbone")
            scores = torch.sigmoid(classifier.head(features.to(classifier.head.weight.device))).cpu()
    finally:
        encoder.load_state_dict(pristine)
        encoder.eval()
    return scores, result
