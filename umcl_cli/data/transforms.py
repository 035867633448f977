"""Image loading and transforms: grayscale uint8 → normalised float tensor ``[C, S, S]``.

No horizontal flips: left and right carry meaning in a chest radiograph ("left effusion").
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2


def load_gray(path: str | Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L"))


class ImageTransform:
    def __init__(
        self,
        size: int,
        mean: Sequence[float],
        std: Sequence[float],
        in_chans: int = 1,
        augment: bool = False,
    ) -> None:
        self.in_chans = in_chans
        steps: list = [v2.Resize(size, antialias=True), v2.CenterCrop(size)]
        if augment:
            steps = [
                v2.RandomResizedCrop(size, scale=(0.8, 1.0), ratio=(0.9, 1.1), antialias=True),
                v2.RandomAffine(degrees=7, translate=(0.04, 0.04)),
                v2.ColorJitter(brightness=0.2, contrast=0.2),
            ]
        self.pipeline = v2.Compose([*steps, v2.ToDtype(torch.float32, scale=True)])
        self._mean_c = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self._std_c = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, gray: np.ndarray) -> torch.Tensor:
        x = self.pipeline(torch.from_numpy(np.ascontiguousarray(gray)).unsqueeze(0))
        # Encoders pre-trained on RGB get the gray channel repeated, normalised per channel.
        x = x.expand(self.in_chans, -1, -1)
        return (x - self._mean_c) / self._std_c
