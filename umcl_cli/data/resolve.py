"""``--dataset NAME|DIR``: a prepared directory under the data root, or a path."""

from __future__ import annotations

import os
from pathlib import Path

from umcl_cli.data.manifest import PreparedDataset


def data_root(explicit: str | Path | None = None) -> Path:
    return Path(explicit or os.environ.get("UMCL_DATA") or "data")


def resolve_dataset(name_or_path: str, root: str | Path | None = None) -> PreparedDataset:
    """A name containing a path separator, or an existing directory, is a path; else a name."""
    candidate = Path(name_or_path)
    if os.sep in name_or_path or candidate.is_dir():
        return PreparedDataset(candidate)
    return PreparedDataset(data_root(root) / name_or_path)
