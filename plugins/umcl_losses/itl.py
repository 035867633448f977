"""Image-text-label contrastive loss (UniCL-style targets from label keys).

``T_ij = 1`` when samples i and j both carry labels and their label vectors (after the uncertain
policy) are identical, or when i is j. In a batch of similar chest X-rays this stops same-finding
pairs from being pushed apart as negatives.

``key_classes`` restricts the key to some classes: a list of names, ``"findings"`` (CheXpert's ten
pathologies that are neither a parent in its label hierarchy, Lung Opacity and Enlarged
Cardiomediastinum, nor No Finding or Support Devices) or ``"competition"`` (the five CheXpert
competition findings). Rows that agree on those classes are positives whatever else they show.
Coarser keys give more positives per batch but teach the model that the classes left out do not
matter, so choose them from the findings the model is for. A named set keeps the classes the training
data labels; a list must name only such classes.

``overlap=True`` adds partial credit: labelled rows whose positive findings overlap without being
identical get ``T_ij = |P_i ∩ P_j| / |P_i ∪ P_j|`` (Jaccard of their positive classes; ignored entries
count as not positive), so rows sharing a finding are not pure negatives either.

``text_view`` (a weight; 0 = off) adds the text view of ``umcl_cli.engine.contrastive``: each text is
also contrasted with the batch's other texts, its same-key texts as positives, so reports and label
texts that state the same findings move together.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from umcl_cli.contracts import (
    CHEXPERT_CLASSES,
    CHEXPERT_COMPETITION,
    ContrastiveLoss,
    UsageError,
    identity_targets,
    label_keys,
)

# CheXpert's parents in its label hierarchy, and the two labels that are not a pathology.
NOT_LEAF_FINDINGS = {"Enlarged Cardiomediastinum", "Lung Opacity", "No Finding", "Support Devices"}
CHEXPERT_LEAF_FINDINGS = tuple(c for c in CHEXPERT_CLASSES if c not in NOT_LEAF_FINDINGS)
KEY_ALIASES = {"findings": CHEXPERT_LEAF_FINDINGS, "competition": CHEXPERT_COMPETITION}


class ImageTextLabelLoss(ContrastiveLoss):
    def __init__(
        self,
        key_classes: Sequence[str] | str | None = None,
        overlap: bool = False,
        text_view: float = 0.0,
        local_loss: bool = False,
        gather_with_grad: bool = True,
    ) -> None:
        super().__init__(local_loss=local_loss, gather_with_grad=gather_with_grad, text_view=text_view)
        self.named_set = key_classes if isinstance(key_classes, str) else None
        if self.named_set is not None and self.named_set not in KEY_ALIASES:
            raise UsageError(
                f"loss option key_classes '{self.named_set}' is not a known set",
                f"give a list of class names or one of: {', '.join(KEY_ALIASES)}",
            )
        names = KEY_ALIASES[self.named_set] if self.named_set is not None else key_classes
        self.key_classes = list(names) if names is not None else None
        self.overlap = overlap
        self._key_columns: list[int] | None = None

    def bind_classes(self, classes: Sequence[str]) -> None:
        if self.key_classes is None:
            return
        classes = list(classes)
        if self.named_set is not None:  # a named set keeps what the data labels
            wanted = [c for c in self.key_classes if c in classes]
            if not wanted:
                raise UsageError(
                    f"loss option key_classes '{self.named_set}': the training data labels none of its classes",
                    "give a list of classes the datasets label, or leave key_classes out",
                )
        else:
            wanted = self.key_classes
            missing = [c for c in wanted if c not in classes]
            if missing:
                raise UsageError(
                    f"loss option key_classes names {missing}, which the training data does not label",
                    f"use classes the datasets label ({', '.join(classes)})",
                )
        self._key_columns = [classes.index(c) for c in wanted]

    def targets(self, row_labels, row_has, col_labels, col_has, row_offset) -> torch.Tensor:
        both = row_has[:, None] & col_has[None, :]
        row_key, col_key = label_keys(row_labels), label_keys(col_labels)
        if self.key_classes is not None:
            if self._key_columns is None:
                raise RuntimeError("ImageTextLabelLoss with key_classes needs bind_classes() before use")
            row_key, col_key = row_key[:, self._key_columns], col_key[:, self._key_columns]
        same = (row_key[:, None, :] == col_key[None, :, :]).all(dim=2) & both
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
