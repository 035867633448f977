"""Child processes for the fault-injection tests: a tiny pre-training run, or a prepare, that the
parent kills with SIGKILL (or that kills itself part-way through writing a checkpoint)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import torch

from umcl_cli.engine import logging as engine_logging
from umcl_cli.model import checkpoint
from umcl_cli.workflows.pretrain import pretrain

# What the forkserver imports once, so that each child starts at once. (Python 3.11's forkserver
# ignores the test directory on sys.path, so this module itself cannot be preloaded.)
PRELOAD = [
    "umcl_cli.cli.pretrain",
    "umcl_cli.evaluation.plots",
    "umcl_encoders.hf_text",
    "umcl_encoders.timm_image",
    "transformers.models.bert.modeling_bert",
    "umcl_datasets.synthetic",
]


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def train(
    recipe: str,
    overrides: list[str],
    out: str,
    data_root: str,
    resume: bool,
    progress: Any,
    write_fault: tuple[int, float] | None,
) -> None:
    """Run (or resume) the tiny run, publishing each finished step in ``progress`` for the parent.

    ``write_fault=(n, fraction)``: at this process's ``n``-th checkpoint write, leave the temporary
    file cut to ``fraction`` of its bytes (1.0: complete but not yet renamed) and die there.
    """
    torch.set_num_threads(1)
    real_update = engine_logging.StepProgress.update

    def update(self: engine_logging.StepProgress, step: int, info: dict[str, float]) -> None:
        progress.value = step
        real_update(self, step, info)

    engine_logging.StepProgress.update = update  # type: ignore[method-assign]
    if write_fault is not None:
        nth, fraction = write_fault
        real_save = checkpoint.torch.save
        writes = {"n": 0}

        def save(obj: Any, path: Any) -> None:
            real_save(obj, path)
            if ".last.pt." in str(path):
                writes["n"] += 1
                if writes["n"] == nth:
                    data = Path(path).read_bytes()
                    Path(path).write_bytes(data[: int(len(data) * fraction)])
                    die()

        checkpoint.torch.save = save  # type: ignore[assignment]
    pretrain(Path(recipe), overrides, Path(out), "latest" if resume else None, data_root)


def prepare(out: str, n: int, seed: int) -> None:
    from umcl_cli.data.staging import prepare_staged
    from umcl_datasets.synthetic import SyntheticDataset

    plugin = SyntheticDataset()
    options = plugin.Options(n=n, seed=seed, size=32, per_class=2)
    prepare_staged(Path(out), lambda staging: plugin.prepare(options, staging))
