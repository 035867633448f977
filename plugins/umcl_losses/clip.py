"""Symmetric InfoNCE: each image's only positive is its own text."""

from __future__ import annotations

import torch

from umcl_cli.contracts import ContrastiveLoss, identity_targets


class ClipLoss(ContrastiveLoss):
    # Explicit so that ``text_view`` is refused: with no positive but its own, a text has no text view.
    def __init__(self, local_loss: bool = False, gather_with_grad: bool = True) -> None:
        super().__init__(local_loss=local_loss, gather_with_grad=gather_with_grad)

    def targets(self, row_labels, row_has, col_labels, col_has, row_offset) -> torch.Tensor:
        return identity_targets(row_labels.shape[0], col_labels.shape[0], row_offset, row_labels.device)
