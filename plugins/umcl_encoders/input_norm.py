"""Per-image standardisation, shared by the image encoder plugins.

Radiographs from different scanners differ in exposure far more than in anatomy; standardising each
image to zero mean and unit variance inside the model removes that nuisance for training, evaluation
and the Python API alike (the data transform's fixed mean/std cannot).
"""

from __future__ import annotations

import torch

from umcl_cli.contracts import UsageError

INPUT_NORMS = ("dataset", "per_image")


def check_input_norm(input_norm: str) -> None:
    if input_norm not in INPUT_NORMS:
        raise UsageError(f"unknown input_norm {input_norm!r}", f"Use one of {', '.join(INPUT_NORMS)}")


def standardize_per_image(images: torch.Tensor) -> torch.Tensor:
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    std = images.std(dim=(1, 2, 3), keepdim=True)
    return (images - mean) / (std + 1e-5)
