"""Linear probe on frozen image features, under one of two published protocols.

``clip`` (CLIP, Radford et al. 2021): one L2-regularised logistic regression per class, fitted with
full-batch L-BFGS on the binary cross-entropy (what scikit-learn's ``LogisticRegression`` does), all
classes in one optimiser run; the L2 strength is chosen from a log-spaced sweep by the mean AUROC on a
validation split, then the head is fitted on the training rows with it.

``gloria`` (GLoRIA, Huang et al. 2021, its released linear-head configs): a linear head trained with
Adam (lr 1e-4, weight decay 1e-6, batch 64, gradient norm clipped at 0.25, at most 50 epochs) on the
masked binary cross-entropy, kept at the epoch with the best validation mean AUROC and stopped after 5
epochs without improvement. (GLoRIA's configs monitor the validation loss; AUROC is the number the
probe reports, so umcl selects on it.)

Label entries that are NaN (uncertain) are masked out of every loss. Fractions of the training split
are *nested* and *stratified*: one seeded order of the rows starts with a positive of every class
(rarest class first), then interleaves the label sets in proportion, and each fraction takes a prefix
of it, so 1 % ⊂ 10 % ⊂ 100 % and every class with a training positive has one in every subset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from umcl_cli.errors import UsageError
from umcl_cli.evaluation import metrics as M

PROTOCOLS = ("clip", "gloria")
# Log-spaced L2 strengths for the sweep (the penalty is l2 · ||W||², added to the mean BCE per class).
L2_GRID: tuple[float, ...] = tuple(10.0**k for k in range(-6, 3))


@dataclass
class ProbeFit:
    """Test scores of one fitted probe and how it was chosen (recorded in ``metrics.json``)."""

    scores: torch.Tensor
    l2: float | None = None
    val_mean_auroc: float | None = None
    sweep: dict[str, float | None] = field(default_factory=dict)
    best_epoch: int | None = None


def standardize(train: torch.Tensor, *others: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Standardise every tensor with the mean and std of ``train``."""
    mean, std = train.mean(dim=0), train.std(dim=0).clamp(min=1e-6)
    return tuple((x - mean) / std for x in (train, *others))


def _masked_bce(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum over classes of the mean BCE over the rows labelled for that class."""
    mask = ~torch.isnan(labels)
    per_entry = F.binary_cross_entropy_with_logits(logits, torch.nan_to_num(labels), reduction="none") * mask
    return (per_entry.sum(dim=0) / mask.sum(dim=0).clamp(min=1)).sum()


def fit_logistic(
    features: torch.Tensor,
    labels: torch.Tensor,
    l2: float = 1e-3,
    max_iter: int = 200,
    start: torch.nn.Linear | None = None,
) -> torch.nn.Linear:
    """One logistic regression per column of ``labels`` (1/0/NaN), sharing the optimiser run.

    ``start``: a fitted head to begin from (a warm start along the L2 path); zeros otherwise.
    """
    x, y = features.double(), labels.double()
    head = torch.nn.Linear(x.shape[1], y.shape[1]).double()
    with torch.no_grad():
        head.weight.copy_(start.weight if start is not None else torch.zeros_like(head.weight))
        head.bias.copy_(start.bias if start is not None else torch.zeros_like(head.bias))
    optimizer = torch.optim.LBFGS(head.parameters(), lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = _masked_bce(head(x), y) + l2 * head.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return head.float()


def _val_auroc(scores: torch.Tensor, labels: torch.Tensor) -> float | None:
    names = [str(c) for c in range(labels.shape[1])]
    return M.multilabel_auroc(scores, labels, names)["mean_auroc"]


def _predict(head: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.sigmoid(head(x.to(head.weight.dtype)))


def clip_probe(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    x_val: torch.Tensor | None = None,
    y_val: torch.Tensor | None = None,
    l2: float | None = None,
    grid: Sequence[float] = L2_GRID,
) -> ProbeFit:
    """CLIP protocol: the given ``l2``, or the grid value with the best validation mean AUROC."""
    x_train, x_test, *val = standardize(x_train, x_test, *([x_val] if x_val is not None else []))
    if l2 is not None:
        return ProbeFit(_predict(fit_logistic(x_train, y_train, l2), x_test), l2=l2)
    if not val or y_val is None:
        raise ValueError("choosing the L2 strength needs validation features and labels")
    sweep: dict[str, float | None] = {}
    best: tuple[float, float, torch.nn.Linear] | None = None
    head = None
    # Strongest penalty first, each fit warm-started from the previous one: the regularisation path
    # converges in far fewer L-BFGS iterations than nine fits from zero.
    for strength in sorted(grid, reverse=True):
        head = fit_logistic(x_train, y_train, strength, start=head)
        auroc = _val_auroc(_predict(head, val[0]), y_val)
        sweep[f"{strength:g}"] = auroc
        # ">": on a tie the stronger penalty (the simpler model, fitted first) wins.
        if auroc is not None and (best is None or auroc > best[0]):
            best = (auroc, strength, head)
    if best is None:
        raise UsageError(
            "the validation split has no class with both a positive and a negative label",
            "pass --l2 VALUE to skip the sweep, or --val-split another split",
        )
    auroc, strength, head = best
    return ProbeFit(_predict(head, x_test), l2=strength, val_mean_auroc=auroc, sweep=sweep)


def gloria_probe(
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    x_val: torch.Tensor,
    y_val: torch.Tensor,
    seed: int = 0,
    lr: float = 1e-4,
    epochs: int = 50,
    batch_size: int = 64,
    patience: int = 5,
    weight_decay: float = 1e-6,
    grad_clip: float = 0.25,
) -> ProbeFit:
    """GLoRIA protocol: Adam on a linear head, kept at the epoch with the best validation mean AUROC."""
    x_train, x_test, x_val = standardize(x_train, x_test, x_val)
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():  # a seeded initialisation that leaves the global generator alone
        torch.manual_seed(seed)
        head = torch.nn.Linear(x_train.shape[1], y_train.shape[1])
    optimizer = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
    y_train = y_train.float()
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    for epoch in range(1, epochs + 1):
        for batch in torch.randperm(len(x_train), generator=gen).split(batch_size):
            optimizer.zero_grad()
            _masked_bce(head(x_train[batch]), y_train[batch]).backward()
            torch.nn.utils.clip_grad_norm_(head.parameters(), grad_clip)
            optimizer.step()
        auroc = _val_auroc(_predict(head, x_val), y_val)
        if auroc is not None and (best is None or auroc > best[0]):
            best = (auroc, epoch, {k: v.detach().clone() for k, v in head.state_dict().items()})
        elif best is not None and epoch - best[1] >= patience:
            break
    if best is None:
        raise UsageError(
            "the validation split has no class with both a positive and a negative label",
            "use --protocol clip --l2 VALUE, or --val-split another split",
        )
    auroc, epoch, state = best
    head.load_state_dict(state)
    return ProbeFit(_predict(head, x_test), val_mean_auroc=auroc, best_epoch=epoch)


def nested_order(labels: np.ndarray, seed: int) -> tuple[np.ndarray, int]:
    """A seeded order of the training rows whose every prefix is a stratified subsample (see module doc),
    and how many rows at its start are the one-positive-per-class rows.

    ``labels``: ``[N, C]`` with 1 / 0 / NaN. First one positive per class that has any, rarest class
    first; then the other rows, each label set spread evenly over the order (row j of a set of size m
    sits at (j + u) / m, u uniform), so any prefix holds every label set in proportion.
    """
    rng = np.random.default_rng(seed)
    n = len(labels)
    positive = labels == 1
    forced: list[int] = []
    for c in np.argsort(positive.sum(axis=0), kind="stable"):
        rows = np.flatnonzero(positive[:, c])
        if len(rows) and not positive[forced, c].any():
            forced.append(int(rng.choice(rows)))
    rest = np.setdiff1d(np.arange(n), forced)
    keys = np.unique(np.nan_to_num(labels[rest], nan=-1.0), axis=0, return_inverse=True)[1].reshape(-1)
    position = np.empty(len(rest))
    for key in np.unique(keys):
        members = rng.permutation(np.flatnonzero(keys == key))
        position[members] = (np.arange(len(members)) + rng.random(len(members))) / len(members)
    order = np.concatenate([np.asarray(forced, dtype=np.int64), rest[np.argsort(position, kind="stable")]])
    return order, len(forced)


def nested_subsets(labels: np.ndarray, fractions: Sequence[float], seed: int) -> dict[float, np.ndarray]:
    """Sorted row indices per fraction, nested and stratified; each at least one positive per class."""
    order, n_forced = nested_order(labels, seed)
    out = {}
    for fraction in fractions:
        k = min(len(order), max(round(len(order) * fraction), n_forced, 1))
        out[fraction] = np.sort(order[:k])
    return out


def check_fractions(fractions: list[float]) -> None:
    for fraction in fractions:
        if not 0 < fraction <= 1:
            raise UsageError(f"--fraction {fraction} is outside (0, 1]", "pass fractions such as 0.01,0.1,1.0")
