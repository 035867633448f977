"""Random-generator state for exact resume, and peak memory for the logs.

A checkpoint stores every rank's CPU and CUDA generator states (rank 0 writes the file, so they are
gathered first); on resume each rank continues its own streams. Checkpoints from before per-rank
states existed give every rank the CPU state they hold.
"""

from __future__ import annotations

import resource
import sys
from typing import Any

import torch
import torch.distributed as dist

from umcl_cli.engine import distributed

RngState = tuple[torch.Tensor, list[torch.Tensor]]  # CPU state, one state per visible CUDA device


def local_rng_state() -> RngState:
    cuda = [s.cpu() for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else []
    return torch.get_rng_state(), cuda


def gather_rng_states() -> list[RngState]:
    """Every rank's generator states, in rank order (a collective under DDP: call on all ranks)."""
    mine = local_rng_state()
    if not distributed.current().enabled:
        return [mine]
    states: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(states, mine)
    return states


def rank_rng(state: dict[str, Any], saved: torch.Tensor, rank: int) -> RngState:
    """The generator states this rank saved (or the one CPU state of an older checkpoint)."""
    ranks, cuda = state.get("rng_ranks"), state.get("cuda_rng_ranks")
    if isinstance(ranks, list) and isinstance(cuda, list) and rank < len(ranks) and rank < len(cuda):
        return ranks[rank], list(cuda[rank])
    return saved, []


def set_rng_state(rng: RngState) -> None:
    torch.set_rng_state(rng[0])
    if rng[1] and torch.cuda.is_available() and len(rng[1]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(rng[1])


def peak_memory_mb(device: torch.device) -> float:
    """Peak accelerator memory allocated by torch, or the process's peak resident memory on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux
