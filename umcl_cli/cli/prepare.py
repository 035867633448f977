"""``umcl prepare NAME``: run a dataset plugin and write its manifest(s)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from umcl_cli import registry
from umcl_cli.cli.errors import handle_errors
from umcl_cli.data.manifest import SPLITS, PreparedDataset
from umcl_cli.data.plugin import DatasetPlugin
from umcl_cli.data.resolve import data_root
from umcl_cli.errors import UsageError
from umcl_cli.workflows.prepare import prepare as run_prepare


def parse_plugin_args(args: list[str], plugin: type[DatasetPlugin]) -> dict[str, Any]:
    """``--key value`` / ``--key=value`` / ``--flag`` / ``--no-flag`` → option dict for ``plugin.Options``."""
    fields = plugin.Options.model_fields
    options: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise UsageError(
                f"unexpected argument '{arg}'",
                f"options look like --name VALUE; see `umcl prepare {plugin.name} --show-options`",
            )
        key, eq, value = arg[2:].partition("=")
        name = key.replace("-", "_")
        negated = name.startswith("no_") and name[3:] in fields
        if name not in fields and not negated:
            known = ", ".join("--" + f.replace("_", "-") for f in fields) or "none"
            raise UsageError(f"'{plugin.name}' has no option --{key} (its options: {known})", "fix the option name")
        if negated:
            options[name[3:]] = False
        elif fields[name].annotation is bool and not eq:
            options[name] = True
        elif eq:
            options[name] = value
        else:
            if i + 1 >= len(args):
                raise UsageError(f"option --{key} needs a value", f"write --{key} VALUE")
            options[name] = args[i + 1]
            i += 1
        i += 1
    return options


def options_table(plugin: type[DatasetPlugin]) -> Table:
    table = Table(title=f"umcl prepare {plugin.name}: {plugin.summary}")
    for column in ("option", "default", "meaning"):
        table.add_column(column)
    for name, field in plugin.Options.model_fields.items():
        default = "required" if field.is_required() else repr(field.default)
        table.add_row("--" + name.replace("_", "-"), default, field.description or "")
    return table


def summary_table(ds: PreparedDataset) -> Table:
    table = Table(title=f"{ds.name} → {ds.root}")
    table.add_column("class")
    for split in SPLITS:
        table.add_column(f"{split} (n={ds.info['counts'][split]})", justify="right")
    for c in ds.classes:
        table.add_row(c, *(str(ds.info["positives"][s][c]) for s in SPLITS))
    return table


@handle_errors
def prepare(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="dataset plugin name (see `umcl plugins`)"),
    out: Path | None = typer.Option(None, "--out", help="output directory (default: DATA_ROOT/NAME)"),
    root: Path | None = typer.Option(None, "--data-root", help="data root (default: $UMCL_DATA or ./data)"),
    show_options: bool = typer.Option(False, "--show-options", help="list the plugin's own options and exit"),
    cache_size: int | None = typer.Option(
        None, "--cache-size", min=8, help="also cache every image at PX x PX, which loaders then read instead"
    ),
    cache_mode: str = typer.Option("pad", "--cache-mode", help="pad | crop: how an image becomes square"),
    cache_workers: int | None = typer.Option(
        None, "--cache-workers", min=1, help="decoding processes for the cache (default: all cores)"
    ),
    cache_only: bool = typer.Option(
        False, "--cache-only", help="only build the cache of the already-prepared directory (with --cache-size)"
    ),
) -> None:
    """Prepare a dataset: write DIR/manifest.parquet + DIR/dataset.json. Plugin options follow NAME."""
    plugin_cls = registry.load("datasets", name)
    if show_options:
        Console().print(options_table(plugin_cls))
        return
    if cache_only and ctx.args:
        raise UsageError(
            f"--cache-only reads the prepared {out or data_root(root) / name} as it is, so plugin options "
            f"({ctx.args[0]} …) do not apply",
            "drop them, or prepare again without --cache-only",
        )
    options = {} if cache_only else parse_plugin_args(list(ctx.args), plugin_cls)
    target = out or data_root(root) / name
    result = run_prepare(name, options, target, cache_size, cache_mode, cache_workers, cache_only)
    console = Console()
    for ds in result.datasets:
        console.print(summary_table(ds))
        settings = {k: ds.info[k] for k in ("task", "uncertain_policy") if k in ds.info}
        console.print(f"wrote {ds.root} ({', '.join(f'{k}: {v}' for k, v in settings.items())})")
    for directory, count in result.caches:
        console.print(f"cached {count} images at {cache_size}px ({cache_mode}) in {directory}")
