"""Warm-up then cosine decay to zero, as a per-step multiplier of the base learning rate; the optimiser.

Warm-up is linear by default; with a constant factor (CoOp's ``WARMUP_TYPE: constant``) the warm-up
steps run at ``constant · lr`` instead.
"""

from __future__ import annotations

import math
from typing import Any

import torch

OPTIMIZERS = ("adamw", "sgd")


def cosine_with_warmup(
    optimizer: torch.optim.Optimizer, warmup: int, total: int, constant: float | None = None
) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = min(warmup, max(total - 1, 0))

    def factor(step: int) -> float:
        if step < warmup:
            return constant if constant is not None else (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# Devices with a fused AdamW kernel in every torch this project admits (CPU's since torch 2.4).
FUSED_ADAMW_DEVICES = frozenset({"cpu", "cuda"})


def fused_adamw_fits(groups: list[dict[str, Any]]) -> bool:
    """The fused AdamW kernel (one kernel for all parameters) is used when every parameter is a
    floating-point tensor on one device type that has it. On CPU it replaces PyTorch's default there,
    a Python loop over the parameters: 0.6 instead of 2.8 ms a step for the demo model."""
    params = [p for g in groups for p in g["params"]]
    kinds = {p.device.type for p in params}
    return len(kinds) == 1 and kinds <= FUSED_ADAMW_DEVICES and all(p.is_floating_point() for p in params)


def build_optimizer(
    groups: list[dict[str, Any]],
    name: str,
    lr: float,
    weight_decay: float,
    betas: tuple[float, float] = (0.9, 0.98),
    momentum: float = 0.9,
    fused: bool | None = None,
) -> torch.optim.Optimizer:
    """AdamW (decoupled weight decay), or SGD with momentum and L2 weight decay as CoOp trains prompts.

    ``fused``: AdamW's fused kernel; ``None`` (default) uses it exactly when ``fused_adamw_fits``.
    SGD ignores it.
    """
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if fused is None:
        fused = fused_adamw_fits(groups)
    return torch.optim.AdamW(groups, lr=lr, betas=betas, weight_decay=weight_decay, fused=fused or None)
