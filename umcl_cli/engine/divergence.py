"""The divergence guard: training stops on a non-finite loss or on non-finite or exploding weights.

A diverged model must never be saved as if it were trained, so the weights are checked before every
write of ``checkpoints/last.pt`` (and hence before ``model.pt``, written after the last checkpoint):
the last good checkpoint is kept, and the error names the step it holds.
"""

from __future__ import annotations

import torch
from torch import nn

from umcl_cli.errors import RuntimeFailure
from umcl_cli.recipe import TrainConfig

# Weights this large mean the optimiser has blown up: trained weights stay within a few hundred.
EXPLODED = 1e4
# A model whose weights start large (some pretrained ones) is allowed this factor over its start.
GROWTH = 1e3


class Diverged(RuntimeFailure):
    """Training diverged; nothing diverged was written."""


class DivergenceGuard:
    def __init__(self, module: nn.Module, cfg: TrainConfig, checkpoint: str | None) -> None:
        self.module = module
        self.cfg = cfg
        self.checkpoint = checkpoint
        self.saved_step: int | None = None
        self._first_bad: torch.Tensor | None = None  # step (1-based) of the first non-finite loss; 0 = none
        self._bad_value: torch.Tensor | None = None
        self.limit = max(EXPLODED, GROWTH * self._largest().item())

    def _largest(self) -> torch.Tensor:
        """The largest weight magnitude (NaN if any weight is NaN), in one device sync."""
        peaks = [p.detach().abs().amax().float() for p in self.module.parameters() if p.numel()]
        return torch.stack(peaks).amax() if peaks else torch.zeros(())

    def watch_loss(self, loss: torch.Tensor, step: int) -> None:
        """Record the first non-finite loss on the device, without a host sync; ``check_watched`` reads it."""
        loss = loss.detach().float()
        if self._first_bad is None:
            self._first_bad = torch.zeros((), dtype=torch.long, device=loss.device)
            self._bad_value = torch.zeros((), device=loss.device)
        new = torch.logical_and(~torch.isfinite(loss), self._first_bad == 0)
        self._first_bad = torch.where(new, torch.full_like(self._first_bad, step + 1), self._first_bad)
        self._bad_value = torch.where(new, loss, self._bad_value)

    def check_watched(self) -> None:
        """Stop if a watched step had a non-finite loss (one host read; call at log and checkpoint steps)."""
        if self._first_bad is not None and int(self._first_bad) > 0:
            self._stop(f"the loss became {float(self._bad_value)} at step {int(self._first_bad)}")

    def check_weights(self, step: int) -> None:
        """Raise if any weight is non-finite or beyond the limit; call before writing them anywhere."""
        peak = self._largest().item()
        if not peak <= self.limit:  # also true for NaN
            self._stop(f"the weights exploded by step {step} (largest magnitude {peak:.3g})")

    def saved(self, step: int) -> None:
        self.saved_step = step

    def _stop(self, what: str) -> None:
        kept = (
            f"; {self.checkpoint} still holds step {self.saved_step}"
            if self.checkpoint and self.saved_step is not None
            else ""
        )
        fixes = [f"lower train.lr (now {self.cfg.lr:g})", f"raise train.warmup_steps (now {self.cfg.warmup_steps})"]
        if not self.cfg.grad_clip:
            fixes.append("set train.grad_clip=1.0")
        raise Diverged(f"training diverged: {what}{kept}; nothing diverged was saved", ", or ".join(fixes))
