"""``umcl plugins``: what the entry points provide, without importing the plugins."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from umcl_cli import registry
from umcl_cli.cli.errors import handle_errors


@handle_errors
def plugins() -> None:
    """List installed encoders, datasets and losses (name, group, object, distribution)."""
    table = Table(title="umcl plugins")
    for column in ("name", "group", "object", "distribution"):
        table.add_column(column)
    for info in registry.describe_all():
        table.add_row(info.name, info.group, info.value, info.distribution)
    Console().print(table)
