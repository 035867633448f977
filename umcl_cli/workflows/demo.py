"""The whole flow on embedded synthetic data: prepare, pretrain, and every evaluation."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from umcl_cli import registry
from umcl_cli.errors import UsageError
from umcl_cli.workflows.linear_probe import LinearProbeResult, linear_probe
from umcl_cli.workflows.pretrain import PretrainResult, pretrain
from umcl_cli.workflows.prompt_tuning import prompt_tune
from umcl_cli.workflows.results import Result
from umcl_cli.workflows.retrieval import RetrievalResult, retrieve
from umcl_cli.workflows.zeroshot import ZeroShotResult, zeroshot


@dataclass
class DemoResult:
    out: Path
    seconds: float
    shots: int
    pretrain: PretrainResult
    zeroshot: ZeroShotResult
    zeroshot_templates: ZeroShotResult
    zeroshot_tuned: ZeroShotResult
    linear_probe: LinearProbeResult
    retrieval: RetrievalResult


def fresh_dir(base: Path) -> Path:
    """``base``, or ``base-2``, ``base-3``… so an earlier demo's results are never overwritten."""
    candidate, k = base, 1
    while candidate.exists() and any(candidate.iterdir()):
        k += 1
        candidate = base.with_name(f"{base.name}-{k}")
    return candidate


def demo(
    out: Path,
    recipe: Path,
    n: int = 3000,
    shots: int = 16,
    overrides: list[str] | None = None,
    on_stage: Callable[[str], None] = lambda title: None,
    on_result: Callable[[Result], None] = lambda result: None,
) -> DemoResult:
    """Run every stage into ``out``. ``on_stage`` hears each stage's title as it starts, ``on_result``
    gets each headline result as it is ready (the baselines scored beside them are only returned)."""
    if not recipe.is_file():
        raise UsageError(
            f"demo recipe {recipe} not found", "run `umcl demo` from a clone of the umcl repository, or pass --recipe"
        )
    start = time.perf_counter()
    root = out / "data"
    plugin = registry.load("datasets", "synthetic")
    on_stage("1/6 prepare synthetic")
    plugin().prepare(plugin.Options(n=n, seed=0), root / "synthetic")
    on_stage("2/6 pretrain")
    trained = pretrain(recipe, overrides, out / "pretrain", data_root=str(root))
    on_result(trained)
    ckpt = trained.model_path
    on_stage("3/6 zero-shot (5x200-style)")
    zs = zeroshot(ckpt, "synthetic/5x200", "auto", out / "eval" / "zeroshot", data_root=str(root))
    on_result(zs)
    zs_t = zeroshot(ckpt, "synthetic/5x200", "templates", out / "eval" / "zeroshot-templates", data_root=str(root))
    on_stage(f"4/6 prompt-tune ({shots} shots) + zero-shot")
    tuned = prompt_tune(ckpt, "synthetic", shots, out=out / "prompt-tune", data_root=str(root))
    on_result(tuned)
    zs_p = zeroshot(ckpt, "synthetic/5x200", str(tuned.prompts), out / "eval" / "zeroshot-tuned", data_root=str(root))
    on_stage("5/6 linear probe")
    lp = linear_probe(ckpt, "synthetic", out=out / "eval" / "linear-probe", data_root=str(root))
    on_result(lp)
    on_stage("6/6 retrieval")
    rt = retrieve(ckpt, "synthetic", out=out / "eval" / "retrieve", data_root=str(root))
    on_result(rt)
    return DemoResult(out, time.perf_counter() - start, shots, trained, zs, zs_t, zs_p, lp, rt)
