"""Prompt tuning (CoOp): K images per class, frozen encoders, only the context vectors learn.

The engine trains a ``PromptTuneObjective`` (cross-entropy over class prompts); ``tune_prompts`` runs
one (shots, seed) pair on an already loaded model, so a sweep loads the checkpoint once.

Two sets of defaults. ``umcl``: start from the checkpoint's context, AdamW, a budget in steps.
``coop`` (Zhou et al. 2022, its released configs): 16 context vectors drawn from N(0, 0.02²), SGD
(lr 0.002, momentum 0.9, weight decay 5e-4), batch 32, one warm-up epoch at a constant 1e-5, then
cosine decay, and a budget in epochs as CoOp counts them: 50 for 1–2 shots, 100 for 4–8, 200 above
(an epoch is ⌊K·C / batch⌋ steps, at least one). Differences left: umcl decays the cosine per step
(CoOp per epoch) and augments with its own chest-x-ray batch augmentation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from umcl_cli.data.images import load_gray
from umcl_cli.data.manifest import PreparedDataset
from umcl_cli.data.transforms import BatchAugment, ImageTransform
from umcl_cli.data.unified import WeightedDistributedSampler
from umcl_cli.engine.trainer import FitResult, fit
from umcl_cli.errors import UsageError
from umcl_cli.evaluation.features import eval_transform
from umcl_cli.evaluation.prompt_sources import save_prompts
from umcl_cli.evaluation.short_run import short_run_config
from umcl_cli.evaluation.zeroshot import eval_labels
from umcl_cli.model.dual_encoder import DualEncoder
from umcl_cli.model.objectives import PromptClassifier, PromptTuneObjective
from umcl_cli.model.prompt_learner import PromptLearner

PROTOCOLS = ("umcl", "coop")


@dataclass
class TuneSettings:
    steps: int = 200
    lr: float = 2e-3
    batch_size: int = 32
    init: str = "checkpoint"
    n_ctx: int | None = None  # None: as many as the initial words, or 4 with random init
    csc: bool = False
    split: str = "train"
    protocol: str = "umcl"
    epochs: float | None = None  # overrides ``steps`` (protocol coop: by shots when None)
    optimizer: str = "adamw"
    weight_decay: float = 0.0
    momentum: float = 0.9
    warmup_lr: float | None = None  # constant warm-up learning rate; None: linear warm-up
    grad_clip: float | None = 1.0


def coop_epochs(shots: int) -> int:
    """CoOp's epoch budget per shot count: 50 for 1–2 shots, 100 for 4–8, 200 for more."""
    return 50 if shots <= 2 else 100 if shots <= 8 else 200


def coop_settings(**overrides: Any) -> TuneSettings:
    """CoOp's published defaults; ``overrides`` replace single fields (e.g. ``csc=True``)."""
    base = TuneSettings(
        lr=2e-3,
        batch_size=32,
        init="random",
        n_ctx=16,
        protocol="coop",
        optimizer="sgd",
        weight_decay=5e-4,
        momentum=0.9,
        warmup_lr=1e-5,
        grad_clip=None,
    )
    return replace(base, **overrides)


def budget(settings: TuneSettings, shots: int, n_images: int) -> tuple[int, int]:
    """(training steps, warm-up steps) for ``shots`` per class and ``n_images`` few-shot images."""
    batch = min(settings.batch_size, n_images)
    steps_per_epoch = max(1, n_images // batch)  # the engine drops the last partial batch
    epochs = settings.epochs
    if epochs is None and settings.protocol == "coop":
        epochs = coop_epochs(shots)
    if epochs is None:
        return settings.steps, min(10, settings.steps // 10)
    steps = max(1, math.ceil(epochs * steps_per_epoch))
    return steps, (steps_per_epoch if settings.protocol == "coop" else min(10, steps // 10))


class FewShot(Dataset):
    def __init__(self, paths: list[Path], targets: list[int], transform: ImageTransform) -> None:
        self.paths, self.targets, self.transform = paths, targets, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"image": self.transform(load_gray(self.paths[i])), "target": self.targets[i]}


def few_shot_collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "images": torch.stack([it["image"] for it in items]),
        "targets": torch.tensor([it["target"] for it in items]),
    }


def pick_shots(
    labels: np.ndarray, classes: list[str], shots: int, seed: int, ds_name: str
) -> tuple[np.ndarray, np.ndarray]:
    """K rows per class among rows whose only positive (of these classes) is that class."""
    rng = np.random.default_rng(seed)
    single = (labels == 1).sum(axis=1) == 1
    rows, targets = [], []
    for c in range(len(classes)):
        candidates = np.flatnonzero(single & (labels[:, c] == 1))
        if len(candidates) < shots:
            raise UsageError(
                f"dataset {ds_name} has {len(candidates)} single-positive '{classes[c]}' training rows, "
                f"fewer than --shots {shots}",
                "lower --shots or choose other --classes",
            )
        rows.append(rng.choice(candidates, size=shots, replace=False))
        targets.append(np.full(shots, c))
    return np.concatenate(rows), np.concatenate(targets)


def initial_learner(model: DualEncoder, classes: list[str], init: str, n_ctx: int | None, csc: bool) -> PromptLearner:
    if init == "checkpoint" and model.prompt_learner is not None:
        source = model.prompt_learner
        learner = PromptLearner(
            model.text_encoder, classes, n_ctx=source.n_ctx, init=None, csc=csc, position=source.position
        )
        with torch.no_grad():
            pretrained = source.ctx if not source.csc else source.ctx.mean(dim=0)
            learner.ctx.copy_(pretrained.expand_as(learner.ctx) if csc else pretrained)
        learner.init = "checkpoint"
        return learner
    phrase = None if init == "random" else ("a chest x-ray showing" if init in ("checkpoint", "phrase") else init)
    return PromptLearner(model.text_encoder, classes, n_ctx=n_ctx, init=phrase, csc=csc)


def tune_prompts(
    model: DualEncoder,
    ds: PreparedDataset,
    classes: list[str],
    shots: int,
    seed: int,
    settings: TuneSettings,
    out_dir: Path,
    image_size: int,
    extra: dict[str, Any] | None = None,
) -> tuple[Path, PromptLearner, FitResult]:
    """Learn context vectors from ``shots`` images per class; write ``out_dir/prompts.pt``."""
    labels = eval_labels(ds, settings.split, classes)
    rows, targets = pick_shots(labels, classes, shots, seed, ds.name)
    all_paths = ds.split(settings.split)["image_path"].to_list()
    data = FewShot([ds.image_file(all_paths[i]) for i in rows], targets.tolist(), eval_transform(model, image_size))
    model.requires_grad_(False)
    model.eval()
    learner = initial_learner(model, classes, settings.init, settings.n_ctx, settings.csc).to(model.logit_scale.device)
    steps, warmup = budget(settings, shots, len(data))
    cfg = short_run_config(
        steps,
        settings.batch_size,
        len(data),
        settings.lr,
        weight_decay=settings.weight_decay,
        optimizer=settings.optimizer,
        momentum=settings.momentum,
        warmup_steps=warmup,
        warmup_lr=settings.warmup_lr,
        grad_clip=settings.grad_clip,
    )
    objective = PromptTuneObjective(
        PromptClassifier(model, learner, classes), augment=BatchAugment(), weight_decay=settings.weight_decay
    )
    result = fit(
        objective,
        data,
        few_shot_collate,
        lambda rank, world: WeightedDistributedSampler(np.ones(len(data)), rank, world, seed=seed),
        cfg,
        out_dir,
        seed=seed,
        description=f"prompt-tune {shots}-shot seed {seed}",
    )
    path = out_dir / "prompts.pt"
    save_prompts(learner, path, {"shots": shots, "seed": seed, "dataset": ds.name, **(extra or {})})
    return path, learner, result
