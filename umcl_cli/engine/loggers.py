"""Where training scalars go on rank 0: ``metrics.jsonl`` always, TensorBoard and Weights & Biases on request.

Every logger receives the same record at each log step: step, epoch, loss, the learning rate of every
parameter group, samples/s, data and step time, peak memory and the task's own scalars (logit scale).
TensorBoard and wandb are optional extras; naming one that is not installed stops the run before its
first step with the install command. wandb runs offline unless ``WANDB_MODE`` says otherwise or an
API key is set, so a machine without network never waits on it.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from umcl_cli.engine.logging import MetricsLog
from umcl_cli.errors import UsageError

EXTRAS = {"tensorboard": "tensorboard", "wandb": "wandb"}


def check_available(names: list[str]) -> None:
    """Fail before training if a requested logger's package is missing."""
    for name in names:
        package = EXTRAS.get(name)
        if package and importlib.util.find_spec(package) is None:
            raise UsageError(
                f"train.loggers includes {name} but the {package} package is not installed",
                f"pip install 'umcl[{name}]', or drop {name} from train.loggers",
            )


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """A record's numbers flattened for loggers that take scalars: ``lrs`` → ``lr/group0``, …"""
    flat: dict[str, float] = {}
    for key, value in record.items():
        if key == "lrs":
            flat.update({f"lr/group{i}": float(v) for i, v in enumerate(value)})
        elif isinstance(value, int | float) and key != "step":
            flat[key] = float(value)
    return flat


class TensorBoardLogger:
    def __init__(self, directory: Path, purge_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # purge_step drops events past a resumed run's checkpoint, as metrics.jsonl does.
        self.writer = SummaryWriter(str(directory), purge_step=purge_step or None)

    def write(self, record: dict[str, Any]) -> None:
        for key, value in scalars(record).items():
            self.writer.add_scalar(key, value, record["step"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbLogger:
    def __init__(self, run_dir: Path, name: str, config: dict[str, Any]) -> None:
        import wandb

        mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
        self.run = wandb.init(dir=str(run_dir), name=name, config=config, mode=mode, resume="allow")

    def write(self, record: dict[str, Any]) -> None:
        self.run.log(scalars(record), step=record["step"])

    def close(self) -> None:
        self.run.finish()


class RunLoggers:
    """All loggers of one run, behind one ``write``; a no-op off rank 0 or without a run directory."""

    def __init__(
        self, run_dir: Path | None, names: list[str], start_step: int, name: str = "", config: dict | None = None
    ) -> None:
        self.jsonl = MetricsLog(run_dir / "metrics.jsonl" if run_dir else None)
        self.jsonl.keep_until(start_step)  # a killed run logged steps past its last checkpoint
        self.others: list[TensorBoardLogger | WandbLogger] = []
        if run_dir is None:
            return
        check_available(names)
        if "tensorboard" in names:
            self.others.append(TensorBoardLogger(run_dir / "tensorboard", start_step))
        if "wandb" in names:
            self.others.append(WandbLogger(run_dir, name, config or {}))

    def write(self, record: dict[str, Any]) -> None:
        self.jsonl.write(record)
        for logger in self.others:
            logger.write(record)

    def close(self) -> None:
        for logger in self.others:
            logger.close()
