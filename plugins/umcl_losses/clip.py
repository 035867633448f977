"""Symmetric InfoNCE: each image's only positive is its own text."""

from __future__ import annotations

import torch

from umcl_cli.contracts import ContrastiveLoss, identity_targets


class ClipLoss(ContrastiveLoss):
    def targets(self, row_labels, row_has, col_labels, col_has, row_offset) -> torch.Tensor:
        return identity_targets(row_labels.shape[0], col_labels.shape[0], row_offset, row_labels.device)
