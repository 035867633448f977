"""Real 2-process gloo runs: the distributed loss equals one process on the concatenated batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ddp_loss_worker import Projections, global_batch, loss_and_grads
from e2e_helpers import RECIPES, TINY, prepare_tiny

from umcl_cli.registry import load

WORKER = Path(__file__).parents[1] / "ddp_loss_worker.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(args: list[str], nproc: int = 2, timeout: int = 240, **kw) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={nproc}",
        f"--master_port={free_port()}",
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, **kw)


TEXT_VIEW = {"text_view": 1.0}


@pytest.mark.parametrize(
    ("loss_name", "local_loss", "options"),
    [
        ("clip", False, {}),
        ("itl", False, {}),
        ("itl", True, {}),
        ("soft", False, {}),
        ("clip", True, {}),
        ("itl", False, TEXT_VIEW),
        ("itl", True, TEXT_VIEW),  # each rank's share of the text view is rescaled to the global mean
    ],
)
def test_two_ranks_match_one_process(tmp_path: Path, loss_name: str, local_loss: bool, options: dict) -> None:
    out = tmp_path / "ddp.pt"
    proc = torchrun([str(WORKER), str(out), loss_name, "1" if local_loss else "0", "1", "1", json.dumps(options)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = torch.load(out, weights_only=True)
    x, y, labels, has = global_batch()
    loss, grads = loss_and_grads(Projections(), load("losses", loss_name)(**options), x, y, labels, has)
    assert ddp["loss"] == pytest.approx(loss, rel=1e-5)
    for name, g in grads.items():
        assert torch.allclose(ddp["grads"][name], g, atol=1e-6), name


def test_gather_without_grad_gives_open_clips_scaled_gradient(tmp_path: Path) -> None:
    out = tmp_path / "ddp.pt"
    proc = torchrun([str(WORKER), str(out), "itl", "0", "0"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = torch.load(out, weights_only=True)
    x, y, labels, has = global_batch()
    loss, grads = loss_and_grads(Projections(), load("losses", "itl")(), x, y, labels, has)
    assert ddp["loss"] == pytest.approx(loss, rel=1e-5)
    # Only local rows carry gradient into the projections; every rank sees the whole loss through
    # the logit scale, so its gradient is complete.
    for name, g in grads.items():
        expected = g if name == "logit_scale" else g / 2
        assert torch.allclose(ddp["grads"][name], expected, atol=1e-6), name


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ddp-data")
    prepare_tiny(root)
    return root


def pretrain_args(data: Path, out: Path) -> list[str]:
    sets = [a for s in TINY for a in ("--set", s)]
    return [
        "-m",
        "umcl_cli",
        "pretrain",
        str(RECIPES / "demo.yaml"),
        "--data-root",
        str(data),
        "--out",
        str(out),
        *sets,
    ]


def check_run(out: Path) -> None:
    payload = torch.load(out / "model.pt", weights_only=True)
    assert payload["format"] == "umcl-model"
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6]  # rank 0 alone writes the log
    # Each rank's generators are saved, so a resumed rank continues its own random stream.
    last = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert len(last["rng_ranks"]) == 2 and not torch.equal(last["rng_ranks"][0], last["rng_ranks"][1])


def test_torchrun_two_processes_pretrain_on_cpu(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = torchrun(pretrain_args(tiny_data, out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_run(out)


def test_torchrun_two_nodes_on_loopback(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    nodes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes=2",
                f"--node_rank={rank}",
                "--nproc_per_node=1",
                "--master_addr=127.0.0.1",
                f"--master_port={port}",
                *pretrain_args(tiny_data, out),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for rank in (0, 1)
    ]
    outputs = [node.communicate(timeout=240) for node in nodes]
    for node, (_, err) in zip(nodes, outputs, strict=True):
        assert node.returncode == 0, err[-3000:]
    check_run(out)
