"""``umcl demo``: the whole flow on embedded synthetic data, ending in one summary table."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from umcl_cli.cli import linear_probe as linear_probe_view
from umcl_cli.cli import pretrain as pretrain_view
from umcl_cli.cli import retrieve as retrieve_view
from umcl_cli.cli import zeroshot as zeroshot_view
from umcl_cli.cli.common import console, fmt
from umcl_cli.cli.errors import handle_errors
from umcl_cli.workflows.demo import DemoResult, fresh_dir
from umcl_cli.workflows.demo import demo as run_demo
from umcl_cli.workflows.linear_probe import LinearProbeResult
from umcl_cli.workflows.pretrain import PretrainResult
from umcl_cli.workflows.prompt_tuning import PromptTuneResult
from umcl_cli.workflows.results import Result
from umcl_cli.workflows.retrieval import RetrievalResult
from umcl_cli.workflows.zeroshot import ZeroShotResult

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def summary_table(result: DemoResult) -> Table:
    table = Table(title=f"umcl demo summary ({result.seconds:.0f} s) → {result.out}")
    for column in ("evaluation", "metric", "value", "chance"):
        table.add_column(column, justify="left" if column in ("evaluation", "metric") else "right")
    for label, record in (
        (f"zero-shot, {result.zeroshot.prompts} prompts", result.zeroshot),
        ("zero-shot, hand-written templates", result.zeroshot_templates),
        (f"zero-shot, prompt-tuned ({result.shots}-shot)", result.zeroshot_tuned),
    ):
        for key in ("accuracy", "macro_f1"):
            table.add_row(label, key, fmt(record.metrics[key]), fmt(record.chance[key]))
    lp, rt = result.linear_probe, result.retrieval
    for key in ("mean_auroc", "mean_auroc_eval_classes"):
        table.add_row("linear probe (all train rows)", key, fmt(lp.metrics[key]), fmt(lp.chance[key]))
    for key in ("image_to_text_R@1", "image_to_text_R@5", "text_to_image_R@5", "image_to_text_R@10"):
        table.add_row(f"retrieval (n={rt.n})", key, fmt(rt.metrics[key]), fmt(rt.chance[key]))
    return table


def render_stage(result: Result) -> None:
    """What each command prints for its result, as the demo reaches it."""
    if isinstance(result, PretrainResult):
        pretrain_view.render(result)
    elif isinstance(result, ZeroShotResult):
        zeroshot_view.render(result)
    elif isinstance(result, PromptTuneResult):
        console.print(f"prompt-tune: {result.steps} steps, final loss {result.final_loss:.4f} → {result.prompts}")
    elif isinstance(result, LinearProbeResult):
        linear_probe_view.render(result)
    elif isinstance(result, RetrievalResult):
        retrieve_view.render(result)


@handle_errors
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="where data, run and evaluations go (never overwritten)"),
    recipe: Path = typer.Option(RECIPES / "demo.yaml", "--recipe", help="pre-training recipe"),
    n: int = typer.Option(3000, "--n", help="synthetic studies to generate"),
    shots: int = typer.Option(16, "--shots", help="images per class for prompt tuning"),
    set_: list[str] = typer.Option([], "--set", help="recipe override, e.g. --set train.max_steps=50"),
) -> None:
    """Prepare synthetic data, pre-train recipes/demo.yaml, evaluate every way, print one summary."""
    result = run_demo(fresh_dir(out), recipe, n, shots, set_, on_stage=console.rule, on_result=render_stage)
    console.print(summary_table(result))
