"""benchmarks/gpu_throughput.py at toy sizes on CPU: it runs and prints a table of numbers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NUMBER = r"(\d+(?:\.\d+)?(?:e[-+]?\d+)?)"


def test_tiny_sweep_prints_samples_tflops_and_mfu() -> None:
    path = os.pathsep.join([str(ROOT), str(ROOT / "plugins"), os.environ.get("PYTHONPATH", "")])
    script = str(ROOT / "benchmarks" / "gpu_throughput.py")
    options = ["--tiny", "--device", "cpu", "--configs", "eager,ckpt", "--peak-tflops", "1", "--threads", "1"]
    done = subprocess.run(
        [sys.executable, script, *options, "--steps", "1"],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    flops = re.search(rf"model FLOPs per sample \(forward \+ backward\): {NUMBER} GFLOP", out)
    assert flops and float(flops.group(1)) > 0, out
    row = re.compile(rf"^(eager|ckpt)\s+(\d+)\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}%\s+-\s+{NUMBER}$")
    rows = [m.groups() for line in out.splitlines() if (m := row.match(line))]
    assert [(r[0], int(r[1])) for r in rows] == [("eager", 4), ("eager", 8), ("ckpt", 4), ("ckpt", 8)], out
    for _, batch, samples_per_s, step_ms, tflops, mfu, cpu_ms in rows:
        assert float(samples_per_s) > 0 and float(step_ms) > 0 and float(tflops) > 0 and float(cpu_ms) > 0
        # samples/s and step time agree; MFU is TFLOP/s against the 1 TFLOP/s peak given
        assert abs(float(samples_per_s) * float(step_ms) / 1000 - int(batch)) < 0.02 * int(batch)
        assert abs(float(mfu) - 100 * float(tflops)) < 0.01 + 0.02 * float(mfu)
    assert "optimizer: AdamW, fused kernel: yes" in out  # fused on CPU too (torch >= 2.4)
