"""The ``umcl`` Typer application.

Commands are imported only when they run: torch, transformers and torchmetrics take seconds and
hundreds of MiB to import, which `umcl prepare` never needs (`umcl plugins` imports every plugin to check it).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from umcl_cli import __version__

# name → (module, function, extra Typer command settings), in the order `umcl --help` lists them.
COMMANDS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "prepare": (
        "umcl_cli.cli.prepare",
        "prepare",
        {"context_settings": {"allow_extra_args": True, "ignore_unknown_options": True}},
    ),
    "pretrain": ("umcl_cli.cli.pretrain", "pretrain", {}),
    "prompt-tune": ("umcl_cli.cli.prompt_tune", "prompt_tune", {}),
    "zeroshot": ("umcl_cli.cli.zeroshot", "zeroshot", {}),
    "linear-probe": ("umcl_cli.cli.linear_probe", "linear_probe", {}),
    "retrieve": ("umcl_cli.cli.retrieve", "retrieve", {}),
    "report": ("umcl_cli.cli.report", "report", {}),
    "demo": ("umcl_cli.cli.demo", "demo", {}),
    "plugins": ("umcl_cli.cli.plugins", "plugins", {}),
}


class LazyGroup(TyperGroup):
    """Builds a command's click object from its module on first use."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attr, settings = COMMANDS[cmd_name]
            single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
            single.command(cmd_name, **settings)(getattr(importlib.import_module(module), attr))
            self.commands[cmd_name] = typer.main.get_command(single)
        return self.commands.get(cmd_name)


app = typer.Typer(
    name="umcl",
    cls=LazyGroup,
    help="Medical image-text-label contrastive pre-training with continuous prompts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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


if __name__ == "__main__":
    main()
