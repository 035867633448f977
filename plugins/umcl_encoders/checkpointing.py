"""Activation checkpointing that leaves BatchNorm's running statistics as without it.

A checkpointed segment runs its forward twice, the second time inside the backward pass, and a
BatchNorm layer in training mode updates its running mean and variance on every forward: with
checkpointing they would move twice per step (momentum 0.19 instead of 0.1). ``exact_norm_statistics``
makes the recomputation start from the statistics the first forward started from, so it arrives at
the same values again. Outputs and gradients are unaffected either way (both use batch statistics).

Under ``torch.compile`` nothing is recomputed module by module (the compiler recomputes single
operations, without the buffer updates), and the hook does nothing.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

_STATS = ("running_mean", "running_var", "num_batches_tracked")
_HANDLES = "_umcl_norm_hooks"
_BEFORE = "_umcl_stats_before_forward"


def _compiling() -> bool:
    is_compiling = getattr(torch.compiler, "is_compiling", None)  # torch >= 2.3
    return bool(is_compiling() if is_compiling is not None else torch._dynamo.is_compiling())


def _in_backward() -> bool:
    """True while the autograd engine runs a backward pass: where checkpointed segments recompute."""
    task_id = getattr(torch._C, "_current_graph_task_id", None)
    return task_id is not None and task_id() != -1


def _replay_from_first_forward(norm: nn.Module, args: tuple) -> None:
    if _compiling() or not (norm.training and norm.track_running_stats):
        return
    if _in_backward():
        before = norm.__dict__.get(_BEFORE)
        if before is not None:
            with torch.no_grad():
                for name, value in before:
                    getattr(norm, name).copy_(value)
        return
    norm.__dict__[_BEFORE] = [
        (name, getattr(norm, name).detach().clone()) for name in _STATS if getattr(norm, name, None) is not None
    ]


def exact_norm_statistics(module: nn.Module, enabled: bool = True) -> None:
    """Install (or, with ``enabled=False``, remove) the hooks on every BatchNorm layer of ``module``."""
    for handle in module.__dict__.pop(_HANDLES, []):
        handle.remove()
    for norm in module.modules():
        norm.__dict__.pop(_BEFORE, None)
    if not enabled:
        return
    handles: list[RemovableHandle] = [
        norm.register_forward_pre_hook(_replay_from_first_forward)
        for norm in module.modules()
        if isinstance(norm, nn.modules.batchnorm._BatchNorm)
    ]
    module.__dict__[_HANDLES] = handles
