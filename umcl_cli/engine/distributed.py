"""Process-group setup under torchrun and feature gathering for contrastive losses."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group torchrun describes (gloo on CPU, nccl on CUDA); a no-op when alone."""
    if not launched_by_torchrun():
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))  # one GPU per process
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
    return current()


def current() -> DistInfo:
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    return DistInfo(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
    )


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def gather(x: torch.Tensor, with_grad: bool = True) -> torch.Tensor:
    """Concatenate ``x`` from every rank along dim 0, rank order.

    ``with_grad`` uses the autograd-aware all_gather, whose backward sums each rank's gradient
    into the owner of the rows; combined with DDP's gradient averaging this reproduces the
    single-process gradient of the global batch exactly. Without it (open_clip's default) only the
    local rows carry gradient, so the averaged gradient of the encoders is 1/world of the global
    one (the logit scale's stays whole); AdamW is nearly invariant to that scale.
    """
    info = current()
    if not info.enabled:
        return x
    if with_grad:
        return torch.cat(dist_fn.all_gather(x), dim=0)
    parts = [torch.empty_like(x) for _ in range(info.world_size)]
    dist.all_gather(parts, x.detach().contiguous())
    parts[info.rank] = x
    return torch.cat(parts, dim=0)


def all_reduce_mean(value: float, device: torch.device) -> float:
    info = current()
    if not info.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / info.world_size


def barrier() -> None:
    if current().enabled:
        dist.barrier()
