"""Where a manifest's image paths may lead: a prepared dataset is something people share.

A relative ``image_path`` resolves inside the dataset directory. An absolute one (the public
datasets keep their images where they were downloaded) must lie inside the image root that
``umcl prepare`` recorded in ``dataset.json``. Anything else (``../../secret.png``, ``/etc/passwd``)
is refused before any file is opened. Paths are compared after normalising ``..``, without following
symlinks, so a dataset directory may link to a folder its owner placed there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import polars as pl

from umcl_cli.errors import UsageError

IMAGE_ROOT = "image_root"
_FIX = "a prepared dataset may only point inside its own directory or its recorded image_root; prepare it again"


def recorded_image_root(info: dict[str, Any]) -> str | None:
    """The image root ``dataset.json`` records (also under the older ``root`` / ``source.root`` keys)."""
    source = info.get("source")
    for value in (info.get(IMAGE_ROOT), info.get("root"), source.get("root") if isinstance(source, dict) else None):
        if isinstance(value, str) and os.path.isabs(value) and os.path.normpath(value) != os.sep:
            return os.path.normpath(value)
    return None


def derive_image_root(image_paths: pl.Series) -> str | None:
    """The deepest folder holding every absolute image path, to record at prepare time (None if none)."""
    absolute = image_paths.filter(image_paths.str.starts_with("/").fill_null(False))
    if absolute.len() == 0:
        return None
    folders = absolute.str.replace(r"/[^/]*$", "").unique().to_list()
    return os.path.commonpath([os.path.normpath(f or "/") for f in folders])


class ImagePaths:
    """Resolves a dataset's ``image_path`` values, refusing any that leave its allowed folders."""

    def __init__(self, dataset_dir: Path, image_root: str | None, name: str) -> None:
        self.dataset_dir = Path(dataset_dir)
        absolute = os.path.normpath(os.path.abspath(dataset_dir))
        self._inside = [absolute.rstrip(os.sep) + os.sep] + ([image_root.rstrip(os.sep) + os.sep] if image_root else [])
        self._absolute = absolute
        self.image_root = image_root
        self.name = name

    def resolve(self, image_path: str) -> Path:
        """``image_path`` as the file to open (relative ones under the dataset directory, as given)."""
        full = os.path.normpath(os.path.join(self._absolute, image_path)) if isinstance(image_path, str) else ""
        if not full.startswith(tuple(self._inside)):
            where = f" or its image root {self.image_root}" if self.image_root else ""
            raise UsageError(
                f"dataset {self.name}: image path {image_path!r} leads outside its directory {self._absolute}{where}",
                _FIX,
            )
        # Normalised, so no ".." reaches the OS (which would resolve it after following a symlink).
        normal = os.path.normpath(image_path)
        return Path(normal) if os.path.isabs(normal) else self.dataset_dir / normal

    def check_all(self, image_paths: pl.Series) -> None:
        """``resolve`` every path, fast: only absolute paths and those with ``..`` can leave."""
        dotdot = image_paths.str.contains(r"(^|/)\.\.(/|$)").fill_null(True)
        absolute = image_paths.str.starts_with("/").fill_null(True)
        plain_inside = absolute & ~dotdot & image_paths.str.starts_with(self._inside[-1]).fill_null(False)
        for path in image_paths.filter((dotdot | absolute) & ~plain_inside).to_list():
            self.resolve(path)
