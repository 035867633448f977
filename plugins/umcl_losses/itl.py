"""Image-text-label contrastive loss (UniCL-style targets from label keys).

``T_ij = 1`` when samples i and j both carry labels and their label vectors (after the uncertain
policy) are identical, or when i is j. In a batch of similar chest X-rays this stops same-finding
pairs from being pushed apart as negatives.
"""

from __future__ import annotations

import torch

from umcl_cli.contracts import ContrastiveLoss, identity_targets, label_keys


class ImageTextLabelLoss(ContrastiveLoss):
    def targets(self, row_labels, row_has, col_labels, col_has, row_offset) -> torch.Tensor:
        same = (label_keys(row_labels)[:, None, :] == label_keys(col_labels)[None, :, :]).all(dim=2)
        same &= row_has[:, None] & col_has[None, :]
        eye = identity_targets(row_labels.shape[0], col_labels.shape[0], row_offset, row_labels.device)
        return torch.maximum(same.float(), eye)
