"""Reading ``checkpoints/last.pt`` back for ``--resume``: safely, and with one line for any bad file.

The file is loaded with ``weights_only=True`` (no code is unpickled) and checked for every part the
training loop restores, so a truncated, foreign or hand-made file fails before training starts.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

from umcl_cli.errors import UsageError, first_line
from umcl_cli.io_safety import atomic_write

TRAIN_STATE = "umcl-train-state"
MODEL_FORMAT = "umcl-model"  # model.pt (model/checkpoint.py): named here to tell the two apart
PARTS = ("step", "module", "optimizer", "scheduler", "precision", "rng")
_FIX = "pass --resume latest, or the checkpoints/last.pt of the run to continue"


def read_train_state(path: Path, tag: str = "", mmap: bool = False) -> dict[str, Any]:
    """The training state in ``path``; raises ``UsageError`` naming the file for anything else.

    ``mmap`` maps the tensors instead of reading them, for a cheap check before the real load.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # torch raises many types for truncated, empty, random or unsafe files
        raise UsageError(f"{path} is not a umcl training checkpoint ({why_unreadable(path, exc)})", _FIX) from exc
    if not isinstance(state, dict) or state.get("format") != TRAIN_STATE:
        if isinstance(state, dict) and state.get("format") == MODEL_FORMAT:
            raise UsageError(f"{path} is a model file (model.pt), not a training checkpoint", _FIX)
        raise UsageError(f"{path} is not a umcl training checkpoint", _FIX)
    missing = [part for part in PARTS if part not in state]
    if missing:
        raise UsageError(f"{path} is a damaged training checkpoint (it lacks {', '.join(missing)})", _FIX)
    if tag and state.get("tag") != tag:
        raise UsageError(
            f"{path} was written by a run with a different model or loss configuration",
            "resume with the recipe that wrote it, or start a new run",
        )
    return state


def why_unreadable(path: Path, exc: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` failed, without torch's advice to load unsafely."""
    if isinstance(exc, pickle.UnpicklingError):
        return "it holds objects other than tensors, which umcl never unpickles"
    if Path(path).stat().st_size == 0:
        return "the file is empty"
    return f"truncated or not a torch file: {type(exc).__name__}"


def restore(
    state: dict[str, Any], path: Path, module: nn.Module, optimizer: Any, scheduler: Any, precision: Any
) -> tuple[int, torch.Tensor]:
    """Load ``state`` into the training objects; return the step and the RNG state to continue from."""
    try:
        module.load_state_dict(state["module"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        precision.load_state_dict(state["precision"])
        step = int(state["step"])
        rng = state["rng"]
        if not isinstance(rng, torch.Tensor) or rng.dtype != torch.uint8 or step < 0:
            raise ValueError("bad step or RNG state")
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise UsageError(
            f"{path} does not fit this run ({type(exc).__name__}: {first_line(exc)[:120]})",
            "resume with the recipe that wrote it, or start a new run",
        ) from exc
    return step, rng


def adopt_run_file(checkpoint: Path, run_dir: Path, name: str) -> None:
    """Copy ``name`` from the run that wrote ``checkpoint`` (``RUN/checkpoints/last.pt``) into ``run_dir``.

    A checkpoint's weights belong to its run's files (e.g. the tokenizer in ``text_encoder.json``):
    resuming it into another directory must reuse them, not build new ones.
    """
    source = Path(checkpoint).resolve().parent.parent / name
    target = Path(run_dir) / name
    if source.is_file():
        if not (target.is_file() and source.resolve() == target.resolve()):
            data = source.read_bytes()
            atomic_write(target, lambda p: p.write_bytes(data))
        return
    if not target.is_file():
        raise UsageError(
            f"cannot resume {checkpoint}: {source} (written beside it by its run) is missing",
            f"copy {name} of the run that wrote the checkpoint into {run_dir}",
        )
