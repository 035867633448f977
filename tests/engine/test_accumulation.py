"""train.accum_steps: K micro-batches give the loss and gradients of one K-times larger batch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ddp_loss_worker import (
    DictProjections,
    Projections,
    ProjectionTask,
    accumulated_loss_and_grads,
    global_batch,
    loss_and_grads,
)
from test_distributed import WORKER, torchrun

from umcl_cli.data.unified import WeightedDistributedSampler
from umcl_cli.engine.trainer import FitResult, fit
from umcl_cli.recipe import TrainConfig
from umcl_cli.registry import load

LOSSES = ["clip", "itl", "soft"]
WITH_OPTIONS = [(name, {}) for name in LOSSES] + [("itl", {"text_view": 1.0})]


def batch(n: int = 64, seed: int = 3) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 6, generator=g), torch.randn(n, 7, generator=g)
    labels = torch.randint(0, 2, (n, 3), generator=g).float()  # few label sets: itl/soft targets span micro-batches
    has = torch.rand(n, generator=g) > 0.2
    return x, y, labels, has


def assert_same(a: tuple[float, dict], b: tuple[float, dict]) -> None:
    assert a[0] == pytest.approx(b[0], rel=1e-5)
    for name, g in b[1].items():
        assert torch.allclose(a[1][name], g, rtol=1e-5, atol=1e-7), name


@pytest.mark.parametrize(("loss_name", "options"), WITH_OPTIONS)
def test_four_micro_batches_of_16_equal_one_batch_of_64(loss_name: str, options: dict) -> None:
    x, y, labels, has = batch()
    full = loss_and_grads(Projections(), load("losses", loss_name)(**options), x, y, labels, has)
    loss_fn = load("losses", loss_name)(**options)
    accumulated = accumulated_loss_and_grads(DictProjections(), loss_fn, x, y, labels, has, 4)
    assert_same(accumulated, full)


def test_summing_micro_batch_losses_would_not_be_the_same() -> None:
    """The control: the naive accumulation (a loss per micro-batch) differs, so the test above can fail."""
    x, y, labels, has = batch()
    loss_fn = load("losses", "itl")()
    full = loss_and_grads(Projections(), loss_fn, x, y, labels, has)
    naive = Projections()
    for part in zip(*(t.chunk(4) for t in (x, y, labels, has)), strict=True):
        loss_and_grads(naive, loss_fn, *part)
    grads = {n: p.grad for n, p in naive.named_parameters()}
    assert not all(torch.allclose(grads[n] / 4, g, rtol=1e-3) for n, g in full[1].items())


class Rows(torch.utils.data.Dataset):
    def __init__(self) -> None:
        self.x, self.y, self.labels, self.has = batch(128)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "y": self.y[i], "labels": self.labels[i], "has_labels": self.has[i]}


def fit_rows(tmp: Path, cfg: TrainConfig) -> tuple[ProjectionTask, FitResult]:
    """The engine's ``fit`` on the toy projections over ``Rows``, itl loss, seed 0."""
    task = ProjectionTask(DictProjections(), load("losses", "itl")())
    sampler = lambda rank, world: WeightedDistributedSampler(torch.ones(128).numpy(), rank, world, seed=0)  # noqa: E731
    return task, fit(task, Rows(), torch.utils.data.default_collate, sampler, cfg, tmp, seed=0)


def one_step(tmp: Path, batch_size: int, accum: int) -> dict[str, torch.Tensor]:
    cfg = TrainConfig(max_steps=2, batch_size=batch_size, accum_steps=accum, lr=1e-2, warmup_steps=0, grad_clip=None)
    task, result = fit_rows(tmp, cfg)
    assert result.steps == 2
    return {n: p.detach().clone() for n, p in task.module.named_parameters()}


def test_fit_with_accum_steps_4_trains_like_the_big_batch(tmp_path: Path) -> None:
    big = one_step(tmp_path / "big", 64, 1)
    accumulated = one_step(tmp_path / "accum", 16, 4)
    for name, value in big.items():
        assert torch.allclose(accumulated[name], value, rtol=1e-5, atol=1e-6), name
    log = (tmp_path / "accum" / "metrics.jsonl").read_text().splitlines()
    assert '"step": 2' in log[-1]  # steps count optimizer steps


@pytest.mark.parametrize("loss_name", LOSSES)
def test_two_ranks_with_accumulation_match_one_process(tmp_path: Path, loss_name: str) -> None:
    out = tmp_path / "ddp.pt"
    proc = torchrun([str(WORKER), str(out), loss_name, "0", "1", "2"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = torch.load(out, weights_only=True)
    x, y, labels, has = global_batch()
    single = loss_and_grads(Projections(), load("losses", loss_name)(), x, y, labels, has)
    assert_same((ddp["loss"], ddp["grads"]), single)
