"""Writing files safely: complete or absent, with the process umask, and one clear line on failure.

Every file umcl writes for later use (checkpoints, ``model.pt``, manifests) goes through
``atomic_write``: the bytes land in a temporary file beside the target, which is flushed to disk and
renamed over the target only once complete. A killed process or a full disk therefore leaves the
previous file intact, never a torn one.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from umcl_cli.errors import RuntimeFailure, UmclError, UsageError, first_line

# How a full disk reads in error texts that hide the errno (safetensors: "os error 28").
_DISK_FULL_TEXT = ("no space left", "os error 28", "disk quota", "os error 122")
# torch's zip writer reports any short write this way, without the cause.
_SHORT_WRITE_TEXT = ("unexpected pos", "file write failed")
# Less free space than this after a short write means the disk filled up.
NEARLY_FULL = 64 << 20
WRITE_FIX = "free disk space or write to another --out directory"


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (``os.umask`` sets it)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode ``open()`` would give a new file: temporary files start 0600, which blocks sharing."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    return 0o777 & ~current_umask()


def is_disk_full(exc: BaseException, directory: Path) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc).lower()
    if any(fragment in text for fragment in _DISK_FULL_TEXT):
        return True
    if any(fragment in text for fragment in _SHORT_WRITE_TEXT):
        try:
            return shutil.disk_usage(directory).free < NEARLY_FULL
        except OSError:
            return False
    return False


def write_failure(path: Path, exc: BaseException) -> UmclError:
    """One line for a failed write of ``path``: full disk, no permission, or the first line of the cause."""
    if isinstance(exc, PermissionError):
        return UsageError(f"could not write {path}: permission denied", "choose a location you can write")
    if is_disk_full(exc, Path(path).parent):
        return RuntimeFailure(f"could not write {path}: no space left on device", WRITE_FIX)
    if any(fragment in str(exc).lower() for fragment in _SHORT_WRITE_TEXT):
        reason = "the write was cut short (a file size limit or an I/O error)"
    else:
        reason = first_line(exc)
    return RuntimeFailure(f"could not write {path}: {reason}", WRITE_FIX)


def _is_write_error(exc: BaseException) -> bool:
    # safetensors raises its own SafetensorError (not an OSError) for a failed write.
    return isinstance(exc, OSError | RuntimeError) or type(exc).__name__ == "SafetensorError"


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable; some filesystems cannot sync a directory, which is harmless."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(target: Path, write: Callable[[Path], None]) -> None:
    """Run ``write(tmp)`` on a temporary file beside ``target``, then rename it over ``target``.

    The file gets the umask's mode and reaches the disk before the rename, so after a crash or power
    loss ``target`` is either the old file or the new one. A failure raises one ``UmclError`` naming
    ``target`` and removes the temporary file.
    """
    target = Path(target)
    tmp: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        write(Path(tmp))
        os.chmod(tmp, file_mode())
        _fsync(tmp)
        os.replace(tmp, target)
        tmp = None
        _fsync_directory(target.parent)
    except Exception as exc:
        if isinstance(exc, UmclError) or not _is_write_error(exc):
            raise
        raise write_failure(target, exc) from exc
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` through ``atomic_write``: a checkpoint is either the old one or the new one."""
    import torch  # here, not at the top: light commands import this module without needing torch

    atomic_write(path, lambda tmp: torch.save(obj, tmp))


def remove_stale_temps(target: Path) -> list[Path]:
    """Delete the temporary files a killed ``atomic_write`` of ``target`` left behind; return them."""
    stale = sorted(Path(target).parent.glob(f".{Path(target).name}.*.tmp"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
