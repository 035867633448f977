"""Fault injection: a tiny run killed with SIGKILL at random points (also part-way through writing its
checkpoint) and resumed each time ends bit-identical to an uninterrupted run; a killed
``prepare`` re-run leaves the old dataset intact.

Children fork from a forkserver that imported torch once, so each kill + resume costs a fraction of
a second instead of a fresh interpreter. ``UMCL_FAULT_SEED`` replays another random plan.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import fault_worker
import pytest
import torch
from e2e_helpers import prepare_tiny

from umcl_cli.engine.resume import read_train_state

SEED = int(os.environ.get("UMCL_FAULT_SEED", "20261201"))
STEPS = 16
RECIPE = Path(__file__).parents[1] / "recipes" / "tiny.yaml"
OVERRIDES = [
    f"train.max_steps={STEPS}",
    "train.checkpoint_every=3",  # kills between checkpoints make the resumed run redo steps
    "train.log_every=1",
]


@pytest.fixture(scope="module")
def ctx() -> mp.context.ForkServerContext:
    context = mp.get_context("forkserver")
    context.set_forkserver_preload(fault_worker.PRELOAD)
    return context


def start(ctx: mp.context.BaseContext, target: Callable[..., None], *args: object) -> mp.process.BaseProcess:
    process = ctx.Process(target=target, args=args, daemon=True)
    process.start()
    return process


def train_args(
    run: Path, data: Path, resume: bool, progress: object, fault: tuple[int, float] | None, accum: int = 1
) -> tuple:
    return (str(RECIPE), [*OVERRIDES, f"train.accum_steps={accum}"], str(run), str(data), resume, progress, fault)


def state_of(run: Path) -> dict[str, torch.Tensor]:
    """Final weights and optimiser moments, flattened for an exact comparison."""
    model = torch.load(run / "model.pt", weights_only=True)["state_dict"]
    last = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    moments = {
        f"opt.{i}.{k}": v for i, s in last["optimizer"]["state"].items() for k, v in s.items() if torch.is_tensor(v)
    }
    return {**model, **moments}


@pytest.mark.parametrize("accum", [1, 2], ids=["one-batch", "accum-2"])
def test_sigkill_at_random_points_then_resume_is_bit_identical(ctx, tmp_path: Path, accum: int) -> None:
    rng = random.Random(SEED)
    prepare_tiny(tmp_path / "data", n=64, per_class=2)
    data = tmp_path / "data"
    progress = ctx.Value("i", 0)

    reference = tmp_path / "reference"
    child = start(ctx, fault_worker.train, *train_args(reference, data, False, progress, None, accum))
    child.join(120)
    assert child.exitcode == 0

    run = tmp_path / "killed"
    run.mkdir()
    # The WordPiece trainer breaks ties in hash order; both runs must share one tokenizer.
    shutil.copyfile(reference / "text_encoder.json", run / "text_encoder.json")
    plan = ["signal", ("write", rng.random()), "signal", ("write", 1.0), "signal", ("write", 0.0), "signal"]
    kills = []
    for fault in [*plan, None]:
        last = run / "checkpoints" / "last.pt"
        resumed_at = read_train_state(last)["step"] if last.exists() else 0
        if resumed_at >= STEPS - 2 and fault is not None:
            continue  # too close to the end for another kill
        progress.value = resumed_at
        write_fault = (1, fault[1]) if isinstance(fault, tuple) else None
        child = start(ctx, fault_worker.train, *train_args(run, data, last.exists(), progress, write_fault, accum))
        if fault == "signal":
            target = rng.randint(resumed_at + 1, STEPS - 2)
            while progress.value < target and child.is_alive():
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.05))  # somewhere inside the next step, or its checkpoint write
            child.kill()
        child.join(120)
        if fault is None:
            assert child.exitcode == 0
        else:
            assert child.exitcode == -9, (fault, child.exitcode)
            kills.append((fault, progress.value))
            if last.exists():
                read_train_state(last)  # every kill leaves a loadable checkpoint
    assert len(kills) >= 5, kills
    assert any(isinstance(fault, tuple) for fault, _ in kills)

    want, got = state_of(reference), state_of(run)
    assert want.keys() == got.keys()
    assert [k for k in want if not torch.equal(want[k], got[k])] == [], f"seed {SEED}, kills {kills}"
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, STEPS + 1)), steps
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["last.pt"]


def test_sigkill_during_a_prepare_rerun_keeps_the_old_dataset(ctx, tmp_path: Path) -> None:
    out = tmp_path / "data" / "synthetic"
    child = start(ctx, fault_worker.prepare, str(out), 60, 0)
    child.join(120)
    assert child.exitcode == 0
    before = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}

    child = start(ctx, fault_worker.prepare, str(out), 600, 1)  # other options, many more images
    deadline = time.monotonic() + 60
    while child.is_alive() and time.monotonic() < deadline:
        if len(list(out.parent.glob(".synthetic.prepare-*/images/*.png"))) >= 50:
            break
        time.sleep(0.005)
    child.kill()
    child.join(30)
    assert child.exitcode == -9
    after = {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert after == before

    child = start(ctx, fault_worker.prepare, str(out), 60, 2)
    child.join(120)
    assert child.exitcode == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["synthetic"]  # the killed run's leftovers are gone
