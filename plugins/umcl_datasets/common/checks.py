"""Input checks for dataset plugins, each failing with one line that names the problem and the fix.

- ``require_files``: the files a download provides are where they should be.
- ``check_header`` / ``check_columns``: a table has the columns the parser reads (exact names).
- ``refuse_escaping``: paths read from an input stay inside the dataset root.
- ``list_present`` + ``decide_missing`` (or both at once, ``check_images``): which listed images
  exist, and ``--on-missing error|skip`` deciding what happens to the rest.
"""

from __future__ import annotations

import csv
import gzip
import os
from collections.abc import Sequence
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
from rich.console import Console

from umcl_cli.contracts import UsageError

OnMissing = Literal["error", "skip"]
# How many offending entries a message lists.
EXAMPLES = 3
# Absolute (POSIX, UNC or drive-letter) paths, or a ".." component anywhere.
_ESCAPE = r"^(/|\\|[A-Za-z]:)|(^|[/\\])\.\.([/\\]|$)"
# Listing a folder costs about four system calls (open, two reads, close); a stat costs one.
_LISTING_COST = 4
_CHUNK = 4096


def require_files(root: Path, names: Sequence[str], download: str) -> list[Path]:
    """``root / name`` for each name; raises listing every missing one and the download providing it."""
    paths = [root / name for name in names]
    missing = [name for name, path in zip(names, paths, strict=True) if not path.exists()]
    if missing:
        raise UsageError(
            f"{root} lacks {', '.join(missing)} (expected from {download})",
            f"download {download} and point --root at the folder holding {missing[0]}",
        )
    return paths


def read_header(path: Path, sep: str = ",") -> list[str]:
    """Column names on the first line of a CSV/TSV, gzipped or not; names are kept byte for byte."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
        first = handle.readline()
    return next(csv.reader([first.rstrip("\r\n")], delimiter=sep), [])


def check_columns(columns: Sequence[str], required: Sequence[str], source: str, fix: str) -> None:
    """Raise naming the ``required`` columns missing from ``columns`` (exact, case-sensitive match)."""
    missing = [c for c in required if c not in columns]
    if missing:
        raise UsageError(f"{source} lacks columns {missing} (it has {list(columns)})", fix)


def check_header(path: Path, required: Sequence[str], download: str, sep: str = ",") -> list[str]:
    """The header of ``path`` after checking it holds every ``required`` column; returns the header."""
    header = read_header(path, sep)
    check_columns(header, required, str(path), f"use the original file from {download} (names must match exactly)")
    return header


def refuse_escaping(paths: pl.Series | Sequence[str], source: str) -> None:
    """Raise if any path is absolute or has a ``..`` component, so inputs cannot reach outside the root."""
    series = paths if isinstance(paths, pl.Series) else pl.Series(list(paths), dtype=pl.String)
    bad = series.filter(series.str.contains(_ESCAPE).fill_null(False))
    if bad.len():
        shown = ", ".join(bad.head(EXAMPLES).to_list())
        raise UsageError(
            f"{bad.len()} path(s) in {source} leave the dataset root (first: {shown})",
            "paths must be relative to the root and stay inside it (no '..', not absolute)",
        )


def list_present(root: Path, rel_paths: pl.Series | Sequence[str], pool: Pool | None = None) -> np.ndarray:
    """Boolean mask: which ``rel_paths`` (``/``-separated, relative to ``root``) exist.

    Where folders hold many files (ChestX-ray14's flat images/) each parent folder is listed once
    and names compared; where they hold few (MIMIC: 1.7 images per study folder) one ``stat`` per
    file costs fewer system calls than listing, so that is done instead. ``pool`` spreads the work
    over worker processes.
    """
    series = rel_paths if isinstance(rel_paths, pl.Series) else pl.Series(list(rel_paths), dtype=pl.String)
    dirs = series.str.replace(r"/?[^/]*$", "").unique()
    run = pool.starmap if pool is not None else lambda fn, tasks: [fn(*t) for t in tasks]
    if dirs.len() * _LISTING_COST >= series.len():
        paths = series.to_list()
        parts = run(stat_paths, [(str(root), paths[i : i + _CHUNK]) for i in range(0, len(paths), _CHUNK)])
        return np.concatenate([np.asarray(p, dtype=bool) for p in parts]) if parts else np.zeros(0, dtype=bool)
    names = dirs.sort().to_list()
    listed = run(list_dirs, [(str(root), names[i : i + _CHUNK]) for i in range(0, len(names), _CHUNK)])
    found = pl.Series([p for part in listed for p in part], dtype=pl.String)
    return series.is_in(found.implode()).to_numpy()


def stat_paths(root: str, rel_paths: Sequence[str]) -> list[bool]:
    """Whether each ``root/rel`` exists, one ``stat`` each."""
    prefix = root.rstrip("/") + "/"
    return [os.path.exists(prefix + rel) for rel in rel_paths]


def list_dirs(root: str, dirs: Sequence[str]) -> list[str]:
    """Every entry of each ``root/dir`` as ``dir/name`` (a missing directory has none)."""
    out: list[str] = []
    for d in dirs:
        try:
            names = os.listdir(os.path.join(root, d))
        except (FileNotFoundError, NotADirectoryError):
            continue
        prefix = d + "/" if d else ""
        out.extend([prefix + n for n in names])
    return out


def decide_missing(
    rel_paths: pl.Series | Sequence[str],
    present: np.ndarray,
    on_missing: OnMissing,
    root: Path,
    download: str,
) -> np.ndarray:
    """The rows to keep: all when nothing is missing; else raise (``error``) or drop them (``skip``).

    Skipping is announced on stderr with the count; callers record the count in dataset.json.
    """
    n_missing = int((~present).sum())
    if n_missing == 0:
        return present
    paths = rel_paths if isinstance(rel_paths, pl.Series) else pl.Series(list(rel_paths), dtype=pl.String)
    shown = ", ".join(paths.filter(pl.Series(~present)).head(EXAMPLES).to_list())
    if on_missing == "error":
        raise UsageError(
            f"{n_missing} of {len(present)} images are missing under {root} (first: {shown})",
            f"download them ({download}), or pass --on-missing skip to prepare without them",
        )
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"skipping {n_missing} of {len(present)} images missing under {root} (first: {shown})"
    )
    return present


def check_images(
    root: Path,
    rel_paths: pl.Series | Sequence[str],
    on_missing: OnMissing,
    download: str,
    pool: Pool | None = None,
) -> np.ndarray:
    """``list_present`` then ``decide_missing``: the mask of rows to keep."""
    return decide_missing(rel_paths, list_present(root, rel_paths, pool), on_missing, root, download)
