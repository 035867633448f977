"""Prompt tuning's CoOp protocol: its defaults, its epoch budget, SGD and the constant warm-up."""

from __future__ import annotations

import math

import pytest
import torch

from umcl_cli.engine.schedule import build_optimizer, cosine_with_warmup
from umcl_cli.errors import UsageError
from umcl_cli.evaluation.prompt_tuning import TuneSettings, budget, coop_epochs
from umcl_cli.workflows.prompt_tuning import tune_settings


def test_coop_protocol_sets_coops_published_defaults() -> None:
    s = tune_settings("coop")
    assert (s.n_ctx, s.init, s.optimizer, s.lr, s.momentum, s.weight_decay) == (16, "random", "sgd", 2e-3, 0.9, 5e-4)
    assert (s.batch_size, s.warmup_lr, s.grad_clip, s.epochs) == (32, 1e-5, None, None)
    # An option the user gives replaces one default only.
    assert tune_settings("coop", n_ctx=4, epochs=None).n_ctx == 4
    assert tune_settings("umcl") == TuneSettings()


def test_unknown_protocol_or_optimizer_is_refused() -> None:
    with pytest.raises(UsageError, match="use one of: umcl, coop"):
        tune_settings("maple")
    with pytest.raises(UsageError, match="use one of: adamw, sgd"):
        tune_settings("umcl", optimizer="adam")


@pytest.mark.parametrize(("shots", "epochs"), [(1, 50), (2, 50), (4, 100), (8, 100), (16, 200)])
def test_coop_counts_its_budget_in_epochs_by_shots(shots: int, epochs: int) -> None:
    assert coop_epochs(shots) == epochs
    classes = 5
    n_images = shots * classes
    steps_per_epoch = max(1, n_images // min(32, n_images))
    steps, warmup = budget(tune_settings("coop"), shots, n_images)
    assert steps == epochs * steps_per_epoch and warmup == steps_per_epoch  # one warm-up epoch


def test_umcl_protocol_keeps_a_step_budget_unless_epochs_are_given() -> None:
    assert budget(TuneSettings(steps=120), 16, 80) == (120, 10)
    assert budget(TuneSettings(epochs=3), 16, 80) == (6, 0)  # 80 // 32 = 2 steps per epoch


def test_sgd_with_a_constant_warm_up_then_cosine() -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = build_optimizer([{"params": [p]}], "sgd", lr=2e-3, weight_decay=5e-4, momentum=0.9)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["momentum"] == 0.9
    assert opt.defaults["weight_decay"] == 5e-4
    sched = cosine_with_warmup(opt, warmup=2, total=12, constant=1e-5 / 2e-3)
    seen = []
    for _ in range(12):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    cosine = [2e-3 * 0.5 * (1 + math.cos(math.pi * (s - 2) / 10)) for s in range(2, 12)]
    assert seen == pytest.approx([1e-5, 1e-5, *cosine])
    assert isinstance(build_optimizer([{"params": [p]}], "adamw", 1e-3, 0.1), torch.optim.AdamW)
