"""Encoding images and texts of a prepared dataset with a trained dual encoder (batched, no grad)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from umcl_cli.data.cache import find_cached
from umcl_cli.data.images import load_gray
from umcl_cli.data.transforms import ImageTransform
from umcl_cli.engine.logging import StepProgress
from umcl_cli.model.dual_encoder import DualEncoder


class _Images(Dataset):
    def __init__(self, paths: Sequence[Path], transform: ImageTransform) -> None:
        self.paths, self.transform = list(paths), transform
        # Resolved once here, before DataLoader workers fork: (cache, row) per path, or None.
        self.cached = find_cached(self.paths, transform.size)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        hit = self.cached[i]
        return self.transform(hit[0].get(hit[1]) if hit is not None else load_gray(self.paths[i]))


def eval_transform(model: DualEncoder, image_size: int) -> ImageTransform:
    mean, std = model.image_encoder.normalization()
    return ImageTransform(image_size, mean, std, model.image_encoder.in_chans)


@torch.no_grad()
def encode_image_files(
    model: DualEncoder,
    paths: Sequence[Path],
    image_size: int,
    batch_size: int = 128,
    num_workers: int = 0,
    what: str = "images",
) -> torch.Tensor:
    """L2-normalised embeddings ``[N, D]``, or raw encoder features when ``what='backbone'``."""
    loader = DataLoader(
        _Images(paths, eval_transform(model, image_size)), batch_size=batch_size, num_workers=num_workers
    )
    progress = StepProgress(
        len(loader), 0, f"encoding {len(paths)} images", enabled=True, every=max(1, len(loader) // 4)
    )
    device = model.logit_scale.device
    out = []
    for i, batch in enumerate(loader, start=1):
        batch = batch.to(device)
        out.append(model.image_encoder(batch) if what == "backbone" else model.encode_image(batch))
        progress.update(i, {})
    progress.close()
    return torch.cat(out).float().cpu()


@torch.no_grad()
def encode_text_list(model: DualEncoder, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
    out = [model.encode_texts(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]
    return torch.cat(out).float().cpu()
