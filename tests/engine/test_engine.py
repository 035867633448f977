"""Engine pieces: schedule, precision, parameter groups, atomic checkpoints, bf16 training."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from e2e_helpers import TINY, cli_pretrain, prepare_tiny

from umcl_cli.engine.precision import Precision
from umcl_cli.engine.schedule import cosine_with_warmup
from umcl_cli.engine.trainer import split_decay
from umcl_cli.errors import UsageError
from umcl_cli.io_safety import atomic_save


def test_warmup_then_cosine_matches_the_formula() -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = cosine_with_warmup(opt, warmup=4, total=14)
    seen = []
    for _ in range(14):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    expected = [(s + 1) / 4 for s in range(4)] + [0.5 * (1 + math.cos(math.pi * (s - 4) / 10)) for s in range(4, 14)]
    assert seen == pytest.approx(expected)


def test_fp16_on_cpu_is_refused_with_the_fix() -> None:
    with pytest.raises(UsageError, match="fp16 needs a CUDA device"):
        Precision("fp16", torch.device("cpu"))


def test_bf16_autocast_runs_matmuls_in_bfloat16_on_cpu() -> None:
    precision = Precision("bf16", torch.device("cpu"))
    with precision.autocast():
        out = torch.nn.Linear(4, 4)(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16


def test_weight_decay_skips_vectors_scales_and_contexts() -> None:
    named = [
        ("proj.weight", torch.nn.Parameter(torch.ones(3, 3))),
        ("proj.bias", torch.nn.Parameter(torch.ones(3))),
        ("logit_scale", torch.nn.Parameter(torch.tensor(1.0))),
        ("prompt_learner.ctx", torch.nn.Parameter(torch.ones(4, 3))),
        ("frozen.weight", torch.nn.Parameter(torch.ones(3, 3), requires_grad=False)),
    ]
    decay, keep = split_decay(named, lr=0.1, weight_decay=0.2)
    assert [p.shape for p in decay["params"]] == [torch.Size([3, 3])] and decay["weight_decay"] == 0.2
    assert len(keep["params"]) == 3 and keep["weight_decay"] == 0.0


def test_atomic_save_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "ck" / "last.pt"
    atomic_save({"a": torch.ones(2)}, target)
    atomic_save({"a": torch.zeros(2)}, target)
    assert torch.equal(torch.load(target, weights_only=True)["a"], torch.zeros(2))
    assert [p.name for p in target.parent.iterdir()] == ["last.pt"]


def test_pretrain_in_bf16_on_cpu(tmp_path: Path) -> None:
    prepare_tiny(tmp_path / "data", n=120, per_class=2)
    result = cli_pretrain(tmp_path / "data", tmp_path / "run", [*TINY, "train.precision=bf16", "train.max_steps=2"])
    assert result.exit_code == 0, result.output
    state = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
