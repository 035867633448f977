"""Image loading and transforms: grayscale uint8 → normalised float tensor ``[C, S, S]``.

Per-sample work (decode, resize, normalise) runs in the loader; random augmentation runs on the
whole batch on the training device (``BatchAugment``): one ``grid_sample`` call costs less than
per-image torchvision ops by two orders of magnitude on small images. No horizontal flips: left
and right carry meaning in a chest radiograph ("left effusion").
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from umcl_cli.data.images import fit_square


class ImageTransform:
    """Fit to a square (as the image cache does), scale to [0, 1], repeat to ``in_chans``, normalise."""

    def __init__(self, size: int, mean: Sequence[float], std: Sequence[float], in_chans: int = 1) -> None:
        self.size = size
        self.in_chans = in_chans
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, gray: np.ndarray) -> torch.Tensor:
        if gray.shape != (self.size, self.size):
            gray = fit_square(Image.fromarray(gray), self.size)
        x = torch.from_numpy(gray).unsqueeze(0).float().div_(255.0).expand(self.in_chans, -1, -1)
        return (x - self.mean) / self.std


class BatchAugment:
    """Random zoom (area 0.8-1), rotation (±7°), shift (±4 %) and brightness/contrast on a batch."""

    def __init__(
        self,
        scale: tuple[float, float] = (0.8, 1.0),
        degrees: float = 7.0,
        translate: float = 0.04,
        brightness: float = 0.2,
        contrast: float = 0.2,
    ) -> None:
        self.scale, self.degrees, self.translate = scale, degrees, translate
        self.brightness, self.contrast = brightness, contrast

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        b, device = images.shape[0], images.device

        def uniform(low: float, high: float) -> torch.Tensor:
            return torch.empty(b, device=device).uniform_(low, high)

        zoom = uniform(*self.scale).sqrt()  # a crop of this side length, stretched to the full image
        angle = uniform(-self.degrees, self.degrees) * (math.pi / 180)
        cos, sin = torch.cos(angle) * zoom, torch.sin(angle) * zoom
        theta = torch.stack(
            [
                torch.stack([cos, -sin, uniform(-self.translate, self.translate) * 2], dim=1),
                torch.stack([sin, cos, uniform(-self.translate, self.translate) * 2], dim=1),
            ],
            dim=1,
        )
        grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
        out = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
        contrast = uniform(1 - self.contrast, 1 + self.contrast).view(b, 1, 1, 1)
        brightness = uniform(-self.brightness, self.brightness).view(b, 1, 1, 1)
        mean = out.mean(dim=(1, 2, 3), keepdim=True)
        return (out - mean) * contrast + mean + brightness
