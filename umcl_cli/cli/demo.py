"""``umcl demo``: the whole flow on embedded synthetic data, ending in one summary table."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table

from umcl_cli import registry
from umcl_cli.cli.common import console, fmt
from umcl_cli.cli.errors import handle_errors
from umcl_cli.cli.linear_probe import run_linear_probe
from umcl_cli.cli.pretrain import run_pretrain
from umcl_cli.cli.prompt_tune import run_prompt_tune
from umcl_cli.cli.retrieve import run_retrieve
from umcl_cli.cli.zeroshot import run_zeroshot
from umcl_cli.errors import UsageError

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def fresh_dir(base: Path) -> Path:
    """``base``, or ``base-2``, ``base-3``… so an earlier demo's results are never overwritten."""
    candidate, k = base, 1
    while candidate.exists() and any(candidate.iterdir()):
        k += 1
        candidate = base.with_name(f"{base.name}-{k}")
    return candidate


def run_demo(out: Path, recipe: Path, n: int, shots: int, overrides: list[str]) -> Table:
    if not recipe.is_file():
        raise UsageError(
            f"demo recipe {recipe} not found", "run `umcl demo` from a clone of the umcl repository, or pass --recipe"
        )
    start = time.perf_counter()
    root = out / "data"
    plugin = registry.load("datasets", "synthetic")
    console.rule("1/6 prepare synthetic")
    plugin().prepare(plugin.Options(n=n, seed=0), root / "synthetic")
    console.rule("2/6 pretrain")
    run_dir = run_pretrain(recipe, overrides, out / "pretrain", data_root=str(root))
    ckpt = run_dir / "model.pt"
    console.rule("3/6 zero-shot (5x200-style)")
    zs = run_zeroshot(ckpt, "synthetic/5x200", "auto", out / "eval" / "zeroshot", data_root=str(root))
    zs_t = run_zeroshot(
        ckpt, "synthetic/5x200", "templates", out / "eval" / "zeroshot-templates", data_root=str(root), quiet=True
    )
    console.rule(f"4/6 prompt-tune ({shots} shots) + zero-shot")
    prompts = run_prompt_tune(ckpt, "synthetic", shots, out=out / "prompt-tune", data_root=str(root))
    zs_p = run_zeroshot(
        ckpt, "synthetic/5x200", str(prompts), out / "eval" / "zeroshot-tuned", data_root=str(root), quiet=True
    )
    console.rule("5/6 linear probe")
    lp = run_linear_probe(ckpt, "synthetic", out=out / "eval" / "linear-probe", data_root=str(root))
    console.rule("6/6 retrieval")
    rt = run_retrieve(ckpt, "synthetic", out=out / "eval" / "retrieve", data_root=str(root))

    table = Table(title=f"umcl demo summary ({time.perf_counter() - start:.0f} s) → {out}")
    for column in ("evaluation", "metric", "value", "chance"):
        table.add_column(column, justify="left" if column in ("evaluation", "metric") else "right")
    for label, record in (
        (f"zero-shot, {zs['prompts']} prompts", zs),
        ("zero-shot, hand-written templates", zs_t),
        (f"zero-shot, prompt-tuned ({shots}-shot)", zs_p),
    ):
        for key in ("accuracy", "macro_f1"):
            table.add_row(label, key, fmt(record["metrics"][key]), fmt(record["chance"][key]))
    for key in ("mean_auroc", "mean_auroc_eval_classes"):
        table.add_row("linear probe (all train rows)", key, fmt(lp["metrics"][key]), fmt(lp["chance"][key]))
    for key in ("image_to_text_R@1", "image_to_text_R@5", "text_to_image_R@5", "image_to_text_R@10"):
        table.add_row(f"retrieval (n={rt['n']})", key, fmt(rt["metrics"][key]), fmt(rt["chance"][key]))
    return table


@handle_errors
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="where data, run and evaluations go (never overwritten)"),
    recipe: Path = typer.Option(RECIPES / "demo.yaml", "--recipe", help="pre-training recipe"),
    n: int = typer.Option(3000, "--n", help="synthetic studies to generate"),
    shots: int = typer.Option(16, "--shots", help="images per class for prompt tuning"),
    set_: list[str] = typer.Option([], "--set", help="recipe override, e.g. --set train.max_steps=50"),
) -> None:
    """Prepare synthetic data, pre-train recipes/demo.yaml, evaluate every way, print one summary."""
    table = run_demo(fresh_dir(out), recipe, n, shots, set_)
    console.print(table)
