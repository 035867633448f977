"""Run under torchrun: DDP loss and gradients on each rank's half of a fixed global batch.

Rank 0 saves them to ``argv[1]``; tests/engine/test_distributed.py compares with one process.
Arguments: out, loss name, local_loss (0/1), gather_with_grad (0/1), [accum steps], [loss options as JSON].
"""

from __future__ import annotations

import json
import sys

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from umcl_cli.engine.accumulation import accumulated_backward
from umcl_cli.engine.contrastive import ContrastiveBatch
from umcl_cli.engine.precision import Precision
from umcl_cli.engine.task import TrainTask
from umcl_cli.registry import load


class Projections(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.img = torch.nn.Linear(6, 5)
        self.txt = torch.nn.Linear(7, 5)
        self.logit_scale = torch.nn.Parameter(torch.tensor(2.0))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f = torch.nn.functional.normalize
        return f(self.img(x), dim=-1), f(self.txt(y), dim=-1), self.logit_scale.exp()


class ProjectionTask(TrainTask):
    """Projections as the engine trains them: a dict in, features out, the contrastive loss."""

    loss_keys = ("labels", "has_labels")

    def __init__(self, module: torch.nn.Module, loss_fn) -> None:
        self.module, self.loss_fn = module, loss_fn

    def param_groups(self) -> list[dict]:
        return [{"params": list(self.module.parameters())}]

    def to_inputs(self, batch: dict, device: torch.device) -> dict:
        return batch

    def compute_loss(self, outputs: dict, inputs: dict) -> torch.Tensor:
        return self.loss_fn(
            ContrastiveBatch(
                outputs["image_features"],
                outputs["text_features"],
                outputs["logit_scale"],
                inputs["labels"],
                inputs["has_labels"],
            )
        )


class DictProjections(Projections):
    def forward(self, inputs: dict) -> dict:  # type: ignore[override]
        img, txt, scale = super().forward(inputs["x"], inputs["y"])
        return {"image_features": img, "text_features": txt, "logit_scale": scale}


def accumulated_loss_and_grads(model, loss_fn, x, y, labels, has, accum: int) -> tuple[float, dict[str, torch.Tensor]]:
    """``accum`` equal micro-batches through ``accumulated_backward`` (``model`` may be DDP-wrapped)."""
    params = model.module if isinstance(model, DistributedDataParallel) else model
    task = ProjectionTask(params, loss_fn)
    micro = [
        {"x": a, "y": b, "labels": c, "has_labels": d}
        for a, b, c, d in zip(*(t.chunk(accum) for t in (x, y, labels, has)), strict=True)
    ]
    loss = accumulated_backward(task, model, micro, Precision("fp32", torch.device("cpu")))
    return float(loss), {n: p.grad.clone() for n, p in params.named_parameters()}


def global_batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(n, 6, generator=g), torch.randn(n, 7, generator=g)
    # Few distinct label sets across ranks, so itl/soft targets cross the rank boundary.
    labels = torch.tensor([[1, 0], [0, 1], [1, 0], [1, 1], [0, 1], [1, 0], [0, 0], [1, 1]], dtype=torch.float)[:n]
    has = torch.tensor([True, True, True, True, False, True, True, True])[:n]
    return x, y, labels, has


def loss_and_grads(model: torch.nn.Module, loss_fn, x, y, labels, has) -> tuple[float, dict[str, torch.Tensor]]:
    img, txt, scale = model(x, y)
    loss = loss_fn(ContrastiveBatch(img, txt, scale, labels, has))
    loss.backward()
    params = model.module if isinstance(model, DistributedDataParallel) else model
    return float(loss.detach()), {n: p.grad.clone() for n, p in params.named_parameters()}


def main() -> None:
    out, loss_name, local_loss, with_grad = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4] == "1"
    accum = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    options = json.loads(sys.argv[6]) if len(sys.argv) > 6 else {}
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    x, y, labels, has = global_batch()
    per = len(x) // world
    part = slice(rank * per, (rank + 1) * per)
    loss_fn = load("losses", loss_name)(local_loss=local_loss, gather_with_grad=with_grad, **options)
    if accum > 1:
        model = DistributedDataParallel(DictProjections())
        loss, grads = accumulated_loss_and_grads(model, loss_fn, x[part], y[part], labels[part], has[part], accum)
    else:
        model = DistributedDataParallel(Projections())
        loss, grads = loss_and_grads(model, loss_fn, x[part], y[part], labels[part], has[part])
    t = torch.tensor([loss])
    dist.all_reduce(t)
    if rank == 0:
        torch.save({"loss": float(t) / world, "grads": grads}, out)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
