"""``--dataset NAME|DIR``: a prepared directory under the data root, or a path."""

from __future__ import annotations

import os
from pathlib import Path

from umcl_cli.data.manifest import PreparedDataset
from umcl_cli.errors import UsageError


def data_root(explicit: str | Path | None = None) -> Path:
    return Path(explicit or os.environ.get("UMCL_DATA") or "data")


def resolve_dataset(name_or_path: str, root: str | Path | None = None) -> PreparedDataset:
    """An existing directory is taken as is; otherwise the name is looked up under the data root."""
    candidate = Path(name_or_path)
    if candidate.is_dir() and not (data_root(root) / name_or_path).is_dir():
        return PreparedDataset(candidate)
    under_root = data_root(root) / name_or_path
    if under_root.is_dir() or candidate.is_absolute():
        return PreparedDataset(under_root if under_root.is_dir() else candidate)
    raise UsageError(
        f"dataset '{name_or_path}' is neither a directory nor prepared under the data root {data_root(root)}",
        f"run `umcl prepare {candidate.parts[0]}`, or pass --data-root / set UMCL_DATA to where you prepared it",
    )
