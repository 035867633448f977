"""The loss contract and the shared soft cross-entropy that every contrastive loss plugin reuses.

A loss plugin (entry-point group ``umcl.losses``) is a ``ContrastiveLoss`` subclass that only says
which pairs are positives: ``targets()`` returns a non-negative ``[rows, columns]`` matrix over the
gathered batch. Gathering, normalisation of the targets and the symmetric soft cross-entropy live
here once, so ``itl`` with unique labels *is* ``clip``.

The optional *text view* (``text_view`` > 0) reuses the same targets among the texts alone: each text
whose row has another positive in the batch is classified over the batch's other texts, with those
positives as targets. Reports and label texts of the same findings are pulled together, which teaches
a text tower trained from scratch what a finding is called in both (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from umcl_cli.engine import distributed
from umcl_cli.errors import UsageError


@dataclass
class ContrastiveBatch:
    """What the model gives a loss for one (local) batch.

    ``labels``: ``[B, C]`` after the uncertain-label policy (NaN = ignored class), ``has_labels``:
    ``[B]`` bool, False for rows that carry no labels (a pair with no label file): those rows are
    only their own positive.
    """

    image_features: torch.Tensor
    text_features: torch.Tensor
    logit_scale: torch.Tensor
    labels: torch.Tensor
    has_labels: torch.Tensor


def label_keys(labels: torch.Tensor) -> torch.Tensor:
    """Labels with ignored (NaN) entries made comparable: equal keys ⇔ identical label vectors."""
    return torch.nan_to_num(labels.float(), nan=-1.0)


class ContrastiveLoss(nn.Module, ABC):
    def __init__(self, local_loss: bool = False, gather_with_grad: bool = True, text_view: float = 0.0) -> None:
        super().__init__()
        number = isinstance(text_view, int | float) and not isinstance(text_view, bool)
        if not (number and math.isfinite(text_view) and text_view >= 0):
            raise UsageError(
                f"loss option text_view must be a number >= 0, got {text_view!r}",
                "give the weight of the text view, e.g. text_view: 1.0 (text_view: 0 turns it off)",
            )
        self.local_loss = local_loss
        self.gather_with_grad = gather_with_grad
        self.text_view = float(text_view)

    def bind_classes(self, classes: Sequence[str]) -> None:
        """Told once, before training, the class names of ``labels``' columns (the training stream's
        order). Losses that name classes in their options override it; the default needs none."""

    @abstractmethod
    def targets(
        self,
        row_labels: torch.Tensor,
        row_has: torch.Tensor,
        col_labels: torch.Tensor,
        col_has: torch.Tensor,
        row_offset: int,
    ) -> torch.Tensor:
        """Non-negative targets ``[R, N]``; row r is global sample ``row_offset + r``.

        Every row must have a positive on its own diagonal element so no row is empty.
        """

    def forward(self, batch: ContrastiveBatch) -> torch.Tensor:
        img, txt = batch.image_features, batch.text_features
        all_img = distributed.gather(img, self.gather_with_grad)
        all_txt = distributed.gather(txt, self.gather_with_grad)
        all_labels = distributed.gather(batch.labels.float(), with_grad=False)
        all_has = distributed.gather(batch.has_labels.to(torch.uint8), with_grad=False).bool()
        scale = batch.logit_scale
        if self.local_loss:
            # Local rows against every column: each rank owns a slice of the global loss.
            offset = distributed.current().rank * img.shape[0]
            row_img, row_txt = img, txt
            row_labels, row_has = batch.labels.float(), batch.has_labels.bool()
        else:
            offset = 0
            row_img, row_txt, row_labels, row_has = all_img, all_txt, all_labels, all_has
        t = self.targets(row_labels, row_has, all_labels, all_has, offset).to(img.dtype)
        logits_i2t = scale * row_img @ all_txt.T
        logits_t2i = scale * row_txt @ all_img.T
        # With local_loss each rank returns the mean over its own rows; DDP's averaging of the
        # gradients then yields the global mean. Targets are symmetric relations, so one matrix
        # serves both directions.
        loss = 0.5 * (soft_cross_entropy(logits_i2t, t) + soft_cross_entropy(logits_t2i, t))
        if self.text_view:
            loss = loss + self.text_view * self._text_view_loss(row_txt, all_txt, scale, t, offset, all_labels, all_has)
        return loss

    def _text_view_loss(self, row_txt, all_txt, scale, t, offset, all_labels, all_has) -> torch.Tensor:
        """Mean over the global batch's texts that have another positive of their soft cross-entropy
        over the other texts; with ``local_loss`` each rank's share is scaled so that DDP's gradient
        average is that global mean."""
        own = identity_targets(t.shape[0], t.shape[1], offset, t.device).bool()
        others = t.float().masked_fill(own, 0.0)
        used = others.sum(dim=1) > 0
        if self.local_loss:
            everyone = self.targets(all_labels, all_has, all_labels, all_has, 0)
            alone = identity_targets(everyone.shape[0], everyone.shape[0], 0, t.device).bool()
            users = (everyone.masked_fill(alone, 0.0).sum(dim=1) > 0).sum().clamp(min=1)
            count = users / distributed.current().world_size
        else:
            count = used.sum().clamp(min=1)
        logits = (scale * row_txt[used] @ all_txt.T).float().masked_fill(own[used], float("-inf"))
        log_p = F.log_softmax(logits, dim=1).masked_fill(own[used], 0.0)
        p = others[used] / others[used].sum(dim=1, keepdim=True)
        return -(p * log_p).sum() / count


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over rows of ``-Σ_j p_ij log softmax(logits)_ij`` with ``p`` = targets normalised per row."""
    p = targets / targets.sum(dim=1, keepdim=True)
    return -(p * F.log_softmax(logits.float(), dim=1)).sum(dim=1).mean()


def identity_targets(rows: int, cols: int, offset: int, device: torch.device) -> torch.Tensor:
    t = torch.zeros(rows, cols, device=device)
    idx = torch.arange(rows, device=device)
    t[idx, idx + offset] = 1.0
    return t
