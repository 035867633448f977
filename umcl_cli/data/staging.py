"""``umcl prepare`` builds in a fresh hidden directory and swaps it in only once complete.

A re-run over an existing dataset that is killed or fails part-way therefore leaves the old dataset
exactly as it was, never old manifests beside half of the new images. The swap is one atomic
``renameat2(RENAME_EXCHANGE)`` where Linux offers it, else two renames; a directory left between
them by a kill is put back by the next ``prepare``. The old dataset's image cache moves to the new
one (it checks the manifest's hash, so a stale cache is rebuilt, not misused).
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from umcl_cli.data.manifest import INFO, MANIFEST
from umcl_cli.data.paths import IMAGE_ROOT
from umcl_cli.errors import UsageError
from umcl_cli.io_safety import dir_mode

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def prepare_staged(target: Path, build: Callable[[Path], list[Path]]) -> list[Path]:
    """Run ``build(staging_dir)`` and swap its result in as ``target``; return the written directories
    as they are named after the swap."""
    target = Path(target)
    if target.is_symlink():  # swap the folder it points at; renaming would replace the link itself
        target = target.resolve()
    _check_replaceable(target)
    created = [p for p in (target.parent, *target.parent.parents) if not p.exists()]  # deepest first
    target.parent.mkdir(parents=True, exist_ok=True)
    _recover_abandoned(target)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.prepare-{os.getpid()}-"))
    try:
        written = [Path(d).resolve().relative_to(staging.resolve()) for d in build(staging)]
        _check_sources_outside(target, staging, written)
        os.chmod(staging, dir_mode())  # mkdtemp makes it 0700, which would block sharing the dataset
        _swap_in(staging, target, written)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for folder in created:  # a failed prepare leaves no trace, not even an empty data/
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # the old dataset after a swap, else the partial new one
    return [target / rel for rel in written]


def _check_replaceable(target: Path) -> None:
    """Refuse to replace a folder that is not a prepared dataset: it may hold someone's data."""
    if not target.exists():
        return
    if not target.is_dir():
        raise UsageError(f"--out {target} exists and is not a directory", "choose another --out")
    prepared = (target / MANIFEST).is_file() and (target / INFO).is_file()
    if not prepared and any(target.iterdir()):
        raise UsageError(
            f"--out {target} is a non-empty folder that is not a prepared dataset, and prepare replaces it whole",
            "choose a new or empty --out",
        )


def _check_sources_outside(target: Path, staging: Path, written: list[Path]) -> None:
    """The source images must not live inside the directory the swap replaces."""
    inside = os.path.abspath(target) + os.sep
    for rel in written:
        value = json.loads((staging / rel / INFO).read_text()).get(IMAGE_ROOT)
        if isinstance(value, str) and (value.rstrip(os.sep) + os.sep).startswith(inside):
            raise UsageError(
                f"the source images ({value}) lie inside --out {target}, which prepare replaces whole",
                "keep the downloaded data outside --out",
            )


def _swap_in(staging: Path, target: Path, written: list[Path]) -> None:
    if not target.exists():
        os.rename(staging, target)
        return
    for rel in written:  # keep the old cache: it rebuilds itself if the manifest changed
        old_cache, new_cache = target / rel / "cache", staging / rel / "cache"
        if old_cache.is_dir() and not new_cache.exists():
            os.rename(old_cache, new_cache)
    if _exchange(staging, target):
        return
    parked = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.rename(target, parked)
    os.rename(staging, target)
    os.rename(parked, staging)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directories in one atomic step (Linux ``renameat2``); False where unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    return renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _recover_abandoned(target: Path) -> None:
    """Remove what killed runs left beside ``target``; put back an old dataset parked between renames."""
    for leftover in target.parent.glob(f".{glob.escape(target.name)}.*-*"):
        kind, _, rest = leftover.name[len(target.name) + 2 :].partition("-")
        pid = rest.split("-")[0]
        if kind not in ("prepare", "old") or not pid.isdigit() or _alive(int(pid)):
            continue
        if kind == "old" and not target.exists():
            os.rename(leftover, target)
        else:
            shutil.rmtree(leftover, ignore_errors=True)
