"""What training does with an image file that cannot be decoded (``--on-bad-image``).

``error`` (the default) stops with one line naming the file. ``skip`` trains on the next readable
row instead, so the batch keeps its size and a resumed run sees exactly the same rows, and lists
each skipped file once in ``RUN/bad_images.txt``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from umcl_cli.data.images import UnreadableImage
from umcl_cli.errors import UsageError

POLICIES = ("error", "skip")
LIST_NAME = "bad_images.txt"
T = TypeVar("T")


class BadImagePolicy:
    def __init__(self, mode: str = "error", listing: Path | None = None) -> None:
        if mode not in POLICIES:
            raise UsageError(f"--on-bad-image {mode} is not one of {', '.join(POLICIES)}", "pass error or skip")
        self.mode = mode
        self.listing = listing
        self._seen: set[str] = set()

    def first_readable(self, i: int, n: int, read: Callable[[int], T]) -> tuple[int, T]:
        """``(i, read(i))``, or under ``skip`` the first readable row after ``i`` (wrapping around)."""
        for k in range(n):
            j = (i + k) % n
            try:
                return j, read(j)
            except UnreadableImage as exc:
                if self.mode == "error":
                    raise
                self._record(exc.path)
        raise UsageError("no image of the training data can be read", f"see {self.listing or 'the files'}")

    def _record(self, path: str) -> None:
        if path in self._seen or self.listing is None:
            return
        self._seen.add(path)
        # One short O_APPEND write per file: DataLoader workers of every rank can share the list.
        fd = os.open(self.listing, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, (path + "\n").encode())
        finally:
            os.close(fd)


def skipped_images(listing: Path) -> list[str]:
    """The distinct files a run skipped, in the order first met."""
    if not listing.is_file():
        return []
    return list(dict.fromkeys(line for line in listing.read_text().splitlines() if line))
