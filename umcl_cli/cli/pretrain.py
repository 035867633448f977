"""``umcl pretrain RECIPE``: contrastive pre-training through the engine."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.console import Console

from umcl_cli.cli.errors import handle_errors
from umcl_cli.cli.options import DataRoot
from umcl_cli.data.bad_images import LIST_NAME as BAD_IMAGE_LIST
from umcl_cli.engine import distributed
from umcl_cli.workflows.pretrain import PretrainResult
from umcl_cli.workflows.pretrain import pretrain as run_pretrain


def render(result: PretrainResult) -> None:
    if not result.is_main:
        return
    console = Console(stderr=True)
    if result.skipped_images:
        listing = result.run_dir / BAD_IMAGE_LIST
        console.print(f"skipped {len(result.skipped_images)} unreadable images, listed in {listing}")
    if math.isnan(result.final_loss):  # resumed at its last step: no loss to report
        console.print(f"pretrain {result.recipe}: already at step {result.steps}, nothing left to train")
    else:
        console.print(
            f"pretrain {result.recipe}: {result.steps} steps, {result.samples_per_s:.1f} samples/s, "
            f"final loss {result.final_loss:.4f} → {result.model_path}"
        )


@handle_errors
def pretrain(
    recipe: Path = typer.Argument(..., help="YAML recipe, e.g. recipes/demo.yaml"),
    set_: list[str] = typer.Option([], "--set", help="override a recipe value: --set train.lr=3e-4 (repeatable)"),
    out: Path | None = typer.Option(None, "--out", help="run directory (default: runs/RECIPE_NAME)"),
    resume: str | None = typer.Option(None, "--resume", help="'latest' (OUT/checkpoints/last.pt) or a path"),
    data_root: DataRoot = None,
    on_bad_image: str = typer.Option(
        "error", "--on-bad-image", help="error | skip: stop at an unreadable image, or skip it (listed in OUT)"
    ),
) -> None:
    """Pre-train a dual encoder; writes OUT/recipe.yaml, metrics.jsonl, checkpoints/last.pt, model.pt."""
    try:
        render(run_pretrain(recipe, set_, out, resume, data_root, on_bad_image))
    finally:
        distributed.shutdown()
