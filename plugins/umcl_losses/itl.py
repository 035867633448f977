"""Image-text-label contrastive loss (UniCL-style targets from label keys).

``T_ij = 1`` when samples i and j both carry labels and their label vectors (after the uncertain
policy) are identical, or when i is j. In a batch of similar chest X-rays this stops same-finding
pairs from being pushed apart as negatives.

``overlap=True`` adds partial credit: labelled rows whose positive findings overlap without being
identical get ``T_ij = |P_i ∩ P_j| / |P_i ∪ P_j|`` (Jaccard of their positive classes; ignored entries
count as not positive), so rows sharing a finding are not pure negatives either.
"""

from __future__ import annotations

import torch

from umcl_cli.contracts import ContrastiveLoss, identity_targets, label_keys


class ImageTextLabelLoss(ContrastiveLoss):
    def __init__(self, overlap: bool = False, local_loss: bool = False, gather_with_grad: bool = True) -> None:
        super().__init__(local_loss=local_loss, gather_with_grad=gather_with_grad)
        self.overlap = overlap

    def targets(self, row_labels, row_has, col_labels, col_has, row_offset) -> torch.Tensor:
        both = row_has[:, None] & col_has[None, :]
        same = (label_keys(row_labels)[:, None, :] == label_keys(col_labels)[None, :, :]).all(dim=2) & both
        eye = identity_targets(row_labels.shape[0], col_labels.shape[0], row_offset, row_labels.device)
        targets = torch.maximum(same.float(), eye)
        if self.overlap:
            row_pos = (torch.nan_to_num(row_labels.float()) > 0).float()
            col_pos = (torch.nan_to_num(col_labels.float()) > 0).float()
            shared = row_pos @ col_pos.T
            union = row_pos.sum(1, keepdim=True) + col_pos.sum(1)[None, :] - shared
            jaccard = torch.where(both & (union > 0), shared / union.clamp(min=1), torch.zeros_like(shared))
            targets = torch.maximum(targets, jaccard)
        return targets
