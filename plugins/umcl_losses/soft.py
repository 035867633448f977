"""MedCLIP-style soft targets: ``softmax_j(l_i · l_j / temperature)`` from label vectors.

Unlike ``itl`` this gives partial credit to pairs that share some findings. Uncertain labels under
the ``ignore`` policy (NaN) count as 0 here; rows without labels are only their own positive.
"""

from __future__ import annotations

import torch

from umcl_cli.contracts import ContrastiveLoss, identity_targets


class SoftLabelLoss(ContrastiveLoss):
    def __init__(
        self, temperature: float = 1.0, text_view: float = 0.0, local_loss: bool = False, gather_with_grad: bool = True
    ):
        super().__init__(local_loss=local_loss, gather_with_grad=gather_with_grad, text_view=text_view)
        self.temperature = temperature

    def targets(self, row_labels, row_has, col_labels, col_has, row_offset) -> torch.Tensor:
        sim = torch.nan_to_num(row_labels).clamp(min=0) @ torch.nan_to_num(col_labels).clamp(min=0).T
        eye = identity_targets(row_labels.shape[0], col_labels.shape[0], row_offset, row_labels.device)
        # A labelled row may only spread its mass over labelled columns.
        sim = sim.masked_fill(~col_has[None, :], float("-inf"))
        soft = torch.softmax(sim / self.temperature, dim=1)
        # A labelled row's own column is labelled too, so its softmax always has a finite entry.
        return torch.where(row_has[:, None], soft, eye)
