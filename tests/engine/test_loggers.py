"""Training scalars reach TensorBoard, a missing logger package is one clear error, and the training
step itself never waits on the device."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from e2e_helpers import RECIPES, TINY, prepare_tiny
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_accumulation import fit_rows
from typer.testing import CliRunner

from umcl_cli.cli.app import app
from umcl_cli.engine import loggers
from umcl_cli.recipe import TrainConfig


def test_tensorboard_events_hold_the_logged_scalars(tmp_path: Path) -> None:
    prepare_tiny(tmp_path / "data")
    run = tmp_path / "run"
    sets = [a for s in [*TINY, "train.loggers=[jsonl,tensorboard]"] for a in ("--set", s)]
    result = CliRunner().invoke(
        app, ["pretrain", str(RECIPES / "demo.yaml"), "--data-root", str(tmp_path / "data"), "--out", str(run), *sets]
    )
    assert result.exit_code == 0, result.output
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    for tag in ("loss", "lr/group0", "lr/group1", "samples_per_s", "memory_mb", "logit_scale", "epoch"):
        assert tag in tags, tags
    jsonl = [__import__("json").loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e.step for e in events.Scalars("loss")] == [r["step"] for r in jsonl] == [2, 4, 6]
    assert [e.value for e in events.Scalars("loss")] == pytest.approx([r["loss"] for r in jsonl], rel=1e-6)
    assert jsonl[0]["lrs"][0] == jsonl[0]["lr"] and jsonl[0]["memory_mb"] > 0


def test_a_logger_whose_package_is_missing_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = loggers.importlib.util.find_spec
    monkeypatch.setattr(loggers.importlib.util, "find_spec", lambda name: None if name == "wandb" else real(name))
    prepare_tiny(tmp_path / "data", n=60, per_class=2)
    sets = [a for s in [*TINY, "train.loggers=[jsonl,wandb]"] for a in ("--set", s)]
    args = ["pretrain", str(RECIPES / "demo.yaml"), "--data-root", str(tmp_path / "data"), "--out", str(tmp_path / "r")]
    result = CliRunner().invoke(app, [*args, *sets])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip() and line.startswith("error")]
    assert len(lines) == 1 and "wandb package is not installed" in lines[0] and "umcl[wandb]" in lines[0]


def host_reads(tmp: Path, steps: int, every: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """Tensor → Python number conversions made by umcl's own code during ``fit``."""
    calls = []
    for name in ("item", "__float__", "__bool__", "__int__"):
        original = getattr(torch.Tensor, name)

        def counting(self, *args, _original=original):
            caller = sys._getframe(1).f_code.co_filename
            if "umcl_cli" in caller:
                calls.append(caller)
            return _original(self, *args)

        monkeypatch.setattr(torch.Tensor, name, counting)
    fit_rows(tmp, TrainConfig(max_steps=steps, batch_size=16, log_every=every, checkpoint_every=every, warmup_steps=0))
    monkeypatch.undo()
    return len(calls)


def test_the_step_itself_never_reads_the_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Reads happen at log and checkpoint steps only: doubling the steps between them adds none.
    short = host_reads(tmp_path / "a", 10, 10, monkeypatch)
    long = host_reads(tmp_path / "b", 20, 20, monkeypatch)
    assert long == short and short <= 8, (short, long)
