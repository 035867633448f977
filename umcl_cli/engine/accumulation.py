"""Gradient accumulation with exact large-batch contrastive semantics.

A contrastive loss couples every row of the batch, so summing the losses of K micro-batches is not
the loss of the K-times larger batch. As open_clip's ``--accum-freq`` does: the features of all K
micro-batches are computed once without grad; then each micro-batch is recomputed with grad (its RNG
state restored, so dropout repeats), the loss is computed on every row with that micro-batch's
features in place, and backpropagated. Summed over the K passes, the gradient is the big batch's.
Scalar outputs (the logit scale) carry gradient in one pass only: otherwise they would count K
times. Layers whose output depends on the batch (BatchNorm) see micro-batch statistics, as in open_clip.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from umcl_cli.engine.precision import Precision
from umcl_cli.engine.task import TrainTask


def _rng_state() -> tuple[torch.Tensor, list[torch.Tensor]]:
    return torch.get_rng_state(), (torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [])


def _set_rng_state(state: tuple[torch.Tensor, list[torch.Tensor]]) -> None:
    torch.set_rng_state(state[0])
    if state[1]:
        torch.cuda.set_rng_state_all(state[1])


def merge_outputs(cached: list[dict[str, Any]], j: int, fresh: dict[str, Any]) -> dict[str, Any]:
    """Row outputs of every micro-batch concatenated, micro-batch ``j``'s from the grad pass. Scalars
    keep their gradient in the last pass only: the one DDP synchronises, where every parameter must
    take part."""
    merged = {}
    for key, value in fresh.items():
        if isinstance(value, torch.Tensor) and value.dim() == 0:
            merged[key] = value if j == len(cached) - 1 else value.detach()
        else:
            merged[key] = torch.cat([*(c[key] for c in cached[:j]), value, *(c[key] for c in cached[j + 1 :])])
    return merged


def merge_rows(micro_inputs: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: torch.cat([m[k] for m in micro_inputs]) for k in keys}


@contextlib.contextmanager
def _maybe_no_sync(wrapped: nn.Module, skip_sync: bool) -> Iterator[None]:
    if skip_sync and hasattr(wrapped, "no_sync"):
        with wrapped.no_sync():
            yield
    else:
        yield


def accumulated_backward(
    task: TrainTask, wrapped: nn.Module, micro_inputs: list[dict[str, Any]], precision: Precision
) -> torch.Tensor:
    """Backpropagate the loss of all ``micro_inputs`` as one batch; returns that loss (detached).

    ``task.loss_keys`` names the row-aligned inputs ``compute_loss`` reads. Under DDP the gradients
    are all-reduced once, in the last pass."""
    states, cached = [], []
    with torch.no_grad():
        for inputs in micro_inputs:
            states.append(_rng_state())
            with precision.autocast():
                cached.append(wrapped(inputs))
    after = _rng_state()
    loss_inputs = merge_rows(micro_inputs, task.loss_keys)
    loss = torch.tensor(float("nan"))
    for j, inputs in enumerate(micro_inputs):
        _set_rng_state(states[j])
        with _maybe_no_sync(wrapped, j < len(micro_inputs) - 1):
            with precision.autocast():
                merged = merge_outputs(cached, j, wrapped(inputs))
                loss = task.compute_loss(merged, loss_inputs)
            precision.backward(loss)
    _set_rng_state(after)
    return loss.detach()
