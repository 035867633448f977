"""What the training loop trains: a module, its trainable parameter groups, and a loss."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import nn


class TrainTask(ABC):
    """``module`` is what DDP wraps: its ``forward(inputs)`` returns the outputs the loss reads."""

    module: nn.Module
    find_unused_parameters: bool = False
    # Row-aligned inputs compute_loss reads (labels, targets): what gradient accumulation concatenates.
    loss_keys: tuple[str, ...] = ()

    @abstractmethod
    def param_groups(self) -> list[dict[str, Any]]:
        """AdamW parameter groups (only trainable parameters; ``lr``/``weight_decay`` optional)."""

    @abstractmethod
    def to_inputs(self, batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
        """Turn a collated batch into the module's inputs on ``device`` (tokenising text, …)."""

    @abstractmethod
    def compute_loss(self, outputs: dict[str, Any], inputs: dict[str, Any]) -> torch.Tensor: ...

    def extra_logs(self) -> dict[str, float]:
        return {}
