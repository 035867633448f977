"""Summary of a prompt-tuning sweep, as CoOp reports it.

Hand-written templates and the checkpoint's learned prompts are single evaluations; every shot count K
is trained with several seeds and reported as mean ± std over them, with a bootstrap CI of the seed
mean (test rows resampled jointly for all seeds). Flat headline keys are ``METRIC@ROW``, e.g.
``accuracy@templates``, ``accuracy@learned``, ``accuracy@16-shot``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from umcl_cli.evaluation import metrics as M
from umcl_cli.evaluation.zeroshot import scored_rows


def shot_label(shots: int) -> str:
    return f"{shots}-shot"


def summarise_sweep(
    baselines: dict[str, dict[str, Any]],
    runs: Sequence[dict[str, Any]],
    stacked: dict[int, torch.Tensor],
    headline: Callable[[torch.Tensor, torch.Tensor], dict[str, float | None]],
    labels: np.ndarray,
    chance: dict[str, float],
    bootstrap: int,
    bootstrap_seed: int = 0,
    clusters: np.ndarray | None = None,
) -> dict[str, Any]:
    """``baselines``: name → evaluate() result; ``runs``: per (shots, seed) with ``metrics``;
    ``stacked``: shots → scores ``[N, seeds, C]``; ``clusters``: bootstrap unit of each scored row.
    Returns metrics, std, ci95, chance and by_shots."""
    metrics: dict[str, Any] = {}
    std: dict[str, Any] = {}
    ci: dict[str, Any] = {}
    for name, result in baselines.items():
        for key, value in result["metrics"].items():
            metrics[f"{key}@{name}"] = value
            if key in result["ci95"]:
                ci[f"{key}@{name}"] = result["ci95"][key]
    y, rows = torch.from_numpy(labels), scored_rows(labels)
    by_shots = {}
    for shots, scores in stacked.items():
        mine = [r for r in runs if r["shots"] == shots]
        spread = {key: M.mean_std([r["metrics"][key] for r in mine]) for key in mine[0]["metrics"]}
        intervals = (
            M.bootstrap_cis(
                M.seed_average(headline), scores[rows], y[rows], n=bootstrap, seed=bootstrap_seed, clusters=clusters
            )
            if bootstrap
            else {}
        )
        for key, entry in spread.items():
            flat = f"{key}@{shot_label(shots)}"
            metrics[flat] = entry["mean"]
            if entry["n"] > 1:
                std[flat] = entry["std"]
            if key in intervals:
                ci[flat] = intervals[key]
        by_shots[str(shots)] = {**spread, "ci95": intervals}
    flat_chance = {k: chance[k.split("@")[0]] for k in metrics if k.split("@")[0] in chance}
    return {"metrics": metrics, "std": std, "ci95": ci, "chance": flat_chance, "by_shots": by_shots}
