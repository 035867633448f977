"""``umcl plugins``: what the entry points provide, and whether each one loads and keeps its contract."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from umcl_cli import registry
from umcl_cli.cli.errors import handle_errors


@handle_errors
def plugins() -> None:
    """List installed encoders, datasets and losses (name, group, object, distribution, status).

    Every plugin is imported and checked against its contract (``umcl_cli.contracts``); a broken
    one is listed as ``broken: <reason>`` and never stops the listing (exit code 0).
    """
    table = Table(title="umcl plugins")
    # Names stay whole (they are what recipes and bug reports quote); object and status fold.
    for column in ("name", "group", "object", "distribution", "status"):
        table.add_column(column, no_wrap=column in ("name", "group", "distribution"), overflow="fold")
    for row in registry.check_all():
        info = row.info
        status = "[green]ok[/green]" if row.ok else f"[red]{escape(row.status)}[/red]"
        table.add_row(escape(info.name), info.group, escape(info.value), escape(info.distribution), status)
    Console().print(table)
