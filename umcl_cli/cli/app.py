"""The ``umcl`` Typer application."""

from __future__ import annotations

import os
import sys

import typer

from umcl_cli import __version__
from umcl_cli.cli.demo import demo
from umcl_cli.cli.linear_probe import linear_probe
from umcl_cli.cli.plugins import plugins
from umcl_cli.cli.prepare import prepare
from umcl_cli.cli.pretrain import pretrain
from umcl_cli.cli.prompt_tune import prompt_tune
from umcl_cli.cli.report import report
from umcl_cli.cli.retrieve import retrieve
from umcl_cli.cli.zeroshot import zeroshot

app = typer.Typer(
    name="umcl",
    help="Medical image-text-label contrastive pre-training with continuous prompts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(prepare)
app.command()(pretrain)
app.command("prompt-tune")(prompt_tune)
app.command()(zeroshot)
app.command("linear-probe")(linear_probe)
app.command()(retrieve)
app.command()(demo)
app.command()(plugins)
app.command()(report)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"umcl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True)) -> None:
    """Medical image-text-label contrastive pre-training with continuous prompts."""


def main() -> None:
    # Tokenizers' thread pool and forked DataLoader workers do not mix; torch does the parallelism.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
