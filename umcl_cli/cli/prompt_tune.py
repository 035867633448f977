"""``umcl prompt-tune``: CoOp-style context vectors learned from K images per class, encoders frozen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import typer
from torch.utils.data import Dataset

from umcl_cli.cli.common import choose_classes, console, load_for_eval
from umcl_cli.cli.errors import handle_errors
from umcl_cli.data.transforms import BatchAugment, ImageTransform, load_gray
from umcl_cli.data.unified import WeightedDistributedSampler
from umcl_cli.engine.trainer import fit
from umcl_cli.errors import UsageError
from umcl_cli.evaluation.prompt_sources import save_prompts
from umcl_cli.evaluation.zeroshot import eval_labels
from umcl_cli.model.dual_encoder import DualEncoder
from umcl_cli.model.objectives import PromptClassifier, PromptTuneObjective
from umcl_cli.model.prompt_learner import PromptLearner
from umcl_cli.recipe import TrainConfig


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


def initial_learner(model: DualEncoder, classes: list[str], init: str, n_ctx: int, csc: bool) -> PromptLearner:
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


def run_prompt_tune(
    ckpt: Path,
    dataset: str,
    shots: int,
    classes: str | None = None,
    seed: int = 0,
    steps: int = 200,
    lr: float = 2e-3,
    batch_size: int = 32,
    init: str = "checkpoint",
    n_ctx: int = 4,
    csc: bool = False,
    out: Path | None = None,
    force: bool = False,
    split: str = "train",
    data_root: str | None = None,
    quiet: bool = False,
) -> Path:
    if shots < 1:
        raise UsageError(f"--shots {shots} must be at least 1", "pass --shots 1, 2, 4, 8 or 16")
    model, payload, ds = load_for_eval(ckpt, dataset, data_root)
    names = choose_classes(ds, classes)
    out_dir = out or Path(ckpt).parent / f"prompt-tune-{ds.name.replace('/', '_')}-{shots}shot-seed{seed}"
    if (out_dir / "prompts.pt").exists() and not force:
        raise UsageError(f"{out_dir} already holds learned prompts", "pass --force to replace them, or another --out")
    labels = eval_labels(ds, split, names)
    rows, targets = pick_shots(labels, names, shots, seed, ds.name)
    frame = ds.split(split)
    all_paths = frame["image_path"].to_list()
    mean, std = model.image_encoder.normalization()
    transform = ImageTransform(payload["image_size"], mean, std, model.image_encoder.in_chans)
    data = FewShot([ds.image_file(all_paths[i]) for i in rows], targets.tolist(), transform)
    model.requires_grad_(False)
    model.eval()
    learner = initial_learner(model, names, init, n_ctx, csc).to(model.logit_scale.device)
    classifier = PromptClassifier(model, learner, names)
    cfg = TrainConfig(
        epochs=1,
        max_steps=steps,
        batch_size=min(batch_size, len(data)),
        lr=lr,
        weight_decay=0.0,
        warmup_steps=min(10, steps // 10),
        grad_clip=1.0,
        log_every=max(1, steps // 10),
        checkpoint_every=steps,
    )
    result = fit(
        PromptTuneObjective(classifier, augment=BatchAugment()),
        data,
        few_shot_collate,
        lambda rank, world: WeightedDistributedSampler(np.ones(len(data)), rank, world, seed=seed),
        cfg,
        out_dir,
        seed=seed,
        description=f"prompt-tune {shots}-shot",
    )
    save_prompts(
        learner, out_dir / "prompts.pt", {"shots": shots, "seed": seed, "dataset": ds.name, "checkpoint": str(ckpt)}
    )
    if not quiet:
        console.print(
            f"prompt-tune: {result.steps} steps, final loss {result.final_loss:.4f} → {out_dir / 'prompts.pt'}"
        )
    return out_dir / "prompts.pt"


@handle_errors
def prompt_tune(
    ckpt: Path = typer.Option(..., "--ckpt", help="model.pt written by `umcl pretrain`"),
    dataset: str = typer.Option(..., "--dataset", help="prepared dataset whose train split gives the shots"),
    shots: int = typer.Option(16, "--shots", help="images per class (K)"),
    classes: str | None = typer.Option(
        None, "--classes", help="comma-separated (default: the dataset's evaluation classes)"
    ),
    seed: int = typer.Option(0, "--seed"),
    steps: int = typer.Option(200, "--steps", min=1),
    lr: float = typer.Option(2e-3, "--lr"),
    init: str = typer.Option("checkpoint", "--init", help="checkpoint | phrase | random | 'your own words'"),
    n_ctx: int = typer.Option(4, "--n-ctx", help="context length when --init random"),
    csc: bool = typer.Option(False, "--csc", help="class-specific contexts"),
    out: Path | None = typer.Option(None, "--out", help="output directory (prompts.pt, metrics.jsonl)"),
    force: bool = typer.Option(False, "--force", help="replace prompts already in --out"),
    data_root: str | None = typer.Option(None, "--data-root"),
) -> None:
    """Learn prompt context vectors on frozen encoders; use them with `umcl zeroshot --prompts OUT/prompts.pt`."""
    run_prompt_tune(
        ckpt, dataset, shots, classes, seed, steps, lr, 32, init, n_ctx, csc, out, force, data_root=data_root
    )
