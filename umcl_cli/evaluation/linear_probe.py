"""Linear probe: a multi-label logistic regression on frozen image features.

Full-batch L-BFGS on the binary cross-entropy with an L2 penalty (what scikit-learn's
``LogisticRegression`` does per class), fitted for all classes at once; entries with ignored
labels (NaN) are masked out of the loss. Fractions of the training split are seeded subsamples.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from umcl_cli.errors import UsageError


def standardize(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean, std = train.mean(dim=0), train.std(dim=0).clamp(min=1e-6)
    return (train - mean) / std, (test - mean) / std


def fit_logistic(
    features: torch.Tensor, labels: torch.Tensor, l2: float = 1e-3, max_iter: int = 200
) -> torch.nn.Linear:
    """One logistic regression per column of ``labels`` (1/0/NaN), sharing the optimiser run."""
    x = features.double()
    y = labels.double()
    mask = ~torch.isnan(y)
    target = torch.nan_to_num(y)
    head = torch.nn.Linear(x.shape[1], y.shape[1]).double()
    torch.nn.init.zeros_(head.weight)
    torch.nn.init.zeros_(head.bias)
    optimizer = torch.optim.LBFGS(head.parameters(), lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")
    counts = mask.sum(dim=0).clamp(min=1)

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        per_entry = F.binary_cross_entropy_with_logits(head(x), target, reduction="none") * mask
        loss = (per_entry.sum(dim=0) / counts).sum() + l2 * head.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return head.float()


def subsample(n: int, fraction: float, seed: int) -> np.ndarray:
    """A seeded ``fraction`` of row indices (at least one row)."""
    k = max(1, round(n * fraction))
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def probe_scores(x_train: torch.Tensor, y_train: torch.Tensor, x_test: torch.Tensor) -> torch.Tensor:
    """Standardise on the train rows, fit the logistic heads, return sigmoid scores of the test rows."""
    x_train, x_test = standardize(x_train, x_test)
    head = fit_logistic(x_train, y_train)
    with torch.no_grad():
        return torch.sigmoid(head(x_test))


def check_fractions(fractions: list[float]) -> None:
    for fraction in fractions:
        if not 0 < fraction <= 1:
            raise UsageError(f"--fraction {fraction} is outside (0, 1]", "pass fractions such as 0.01,0.1,1.0")
