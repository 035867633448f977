"""The engine settings of the short trainings evaluation runs (prompt tuning, fine-tuning)."""

from __future__ import annotations

from typing import Any

from umcl_cli.recipe import TrainConfig


def short_run_config(steps: int, batch_size: int, rows: int, lr: float, **settings: Any) -> TrainConfig:
    """One pass of ``steps`` optimizer steps over ``rows`` examples: the batch never exceeds the data,
    ten log lines, one checkpoint at the end. ``settings``: any other ``TrainConfig`` field."""
    return TrainConfig(
        epochs=1,
        max_steps=steps,
        batch_size=min(batch_size, rows),
        lr=lr,
        log_every=max(1, steps // 10),
        checkpoint_every=steps,
        **settings,
    )
