"""The image cache: every image of a prepared dataset, decoded once and resized to ``PX`` x ``PX``.

Layout under ``DIR/cache/PX-MODE/`` (MODE ``pad`` or ``crop``):

- ``images.u8``: raw uint8 array ``[N, PX, PX]`` in manifest row order, read through ``np.memmap``;
- ``index.parquet``: the manifest's ``image_path`` per row, to find rows from file paths;
- ``done.u8``: one byte per chunk of rows, set once that chunk's pixels are on disk (resuming);
- ``meta.json``: size, mode, count, chunk size, manifest hash, and ``complete`` (written last).

Training then reads a few KB per image instead of decoding a multi-megabyte JPEG or PNG.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing as mp
import os
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
from PIL import Image

from umcl_cli.data.images import fit_square, to_gray
from umcl_cli.data.manifest import MANIFEST, PreparedDataset
from umcl_cli.engine.logging import StepProgress
from umcl_cli.errors import RuntimeFailure
from umcl_cli.io_safety import atomic_write

CacheMode = Literal["pad", "crop"]
MODES: tuple[CacheMode, ...] = ("pad", "crop")  # the order loaders prefer when both exist
IMAGES, INDEX, DONE, META = "images.u8", "index.parquet", "done.u8", "meta.json"
# Bilinear with antialiasing, like the file path's torchvision Resize, so cache and files agree.


def cache_dir(dataset_dir: Path, size: int, mode: CacheMode) -> Path:
    return Path(dataset_dir) / "cache" / f"{size}-{mode}"


def decode_gray(path: str | Path, size: int, mode: CacheMode = "pad") -> np.ndarray:
    """One image file as a ``[size, size]`` uint8 array: aspect kept, then padded or centre-cropped."""
    with Image.open(path) as im:
        if im.format == "JPEG":
            # The decoder skips DCT detail: it yields the smallest 1/2, 1/4 or 1/8 scale still
            # >= size on both sides, several times faster than a full decode; the resize finishes.
            im.draft("L", (size, size))
        return fit_square(to_gray(im), size, mode)


def manifest_digest(dataset_dir: Path) -> str:
    digest = hashlib.sha256()
    with (Path(dataset_dir) / MANIFEST).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _manifest_stat(dataset_dir: Path) -> list[int]:
    st = (Path(dataset_dir) / MANIFEST).stat()
    return [st.st_size, st.st_mtime_ns]


def _read_meta(directory: Path) -> dict[str, Any] | None:
    try:
        return json.loads((directory / META).read_text())
    except (OSError, ValueError):
        return None


def _write_meta(directory: Path, meta: dict[str, Any]) -> None:
    atomic_write(directory / META, lambda p: p.write_text(json.dumps(meta, indent=2) + "\n"))


def _fresh(dataset_dir: Path, meta: dict[str, Any]) -> bool:
    """True when the manifest is the one the cache was built from (an unchanged stat skips hashing)."""
    if meta.get("manifest_stat") == _manifest_stat(dataset_dir):
        return True
    return meta.get("manifest_sha256") == manifest_digest(dataset_dir)


class ImageCache:
    """A complete cache, read back. The memmap opens on first ``get`` in each process, so DataLoader
    workers (forked or spawned) map the file themselves instead of inheriting a parent's mapping."""

    def __init__(self, dataset_dir: Path, directory: Path, meta: dict[str, Any]) -> None:
        self.dataset_dir = Path(dataset_dir)
        self.directory = Path(directory)
        self.size: int = meta["size"]
        self.mode: CacheMode = meta["mode"]
        self.count: int = meta["count"]
        self._array: np.ndarray | None = None
        self._pid = -1
        self._rows: dict[str, int] | None = None

    @classmethod
    def open(cls, dataset_dir: Path, size: int, mode: CacheMode | None = None) -> ImageCache | None:
        """The complete, up-to-date cache at ``size`` (either mode unless ``mode`` is given), else None."""
        for m in (mode,) if mode else MODES:
            directory = cache_dir(dataset_dir, size, m)
            meta = _read_meta(directory)
            if meta is None or not meta.get("complete"):
                continue
            images = directory / IMAGES
            if images.is_file() and images.stat().st_size == meta["count"] * size * size and _fresh(dataset_dir, meta):
                return cls(dataset_dir, directory, meta)
        return None

    def __len__(self) -> int:
        return self.count

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_array": None, "_pid": -1}

    def get(self, row: int) -> np.ndarray:
        """Pixels ``[size, size]`` of manifest row ``row``: a view into the memmap, no copy."""
        if self._array is None or self._pid != os.getpid():
            # Copy-on-write mapping: the file stays read-only, yet the view is writable, so
            # torch.from_numpy takes it without a warning.
            shape = (self.count, self.size, self.size)
            self._array = np.memmap(self.directory / IMAGES, dtype=np.uint8, mode="c", shape=shape)
            self._pid = os.getpid()
        return self._array[row]

    def row_of(self, path: str | Path) -> int | None:
        """The row of an image file (as ``PreparedDataset.image_file`` resolves it), or None."""
        if self._rows is None:
            paths = pl.read_parquet(self.directory / INDEX)["image_path"].to_list()
            self._rows = {os.path.abspath(self.dataset_dir / p): i for i, p in enumerate(paths)}
        return self._rows.get(os.path.abspath(path))


def find_cached(paths: Sequence[str | Path], size: int) -> list[tuple[ImageCache, int] | None]:
    """For each image file, ``(cache, row)`` when the nearest prepared directory above it has a
    cache at ``size`` holding it; None otherwise (the caller decodes the file). Only paths are known
    here, so images a manifest keeps outside its own directory are not found."""
    roots: dict[str, str | None] = {}
    caches: dict[str, ImageCache | None] = {}
    found: list[tuple[ImageCache, int] | None] = []
    for path in paths:
        root = _prepared_ancestor(os.path.dirname(os.path.abspath(path)), roots)
        if root is not None and root not in caches:
            caches[root] = ImageCache.open(Path(root), size)
        cache = caches[root] if root is not None else None
        row = cache.row_of(path) if cache is not None else None
        found.append((cache, row) if cache is not None and row is not None else None)
    return found


def _prepared_ancestor(directory: str, memo: dict[str, str | None]) -> str | None:
    # Memoised, so each folder (and each of its ancestors) is looked at once however many images it holds.
    if directory not in memo:
        parent = os.path.dirname(directory)
        if os.path.isfile(os.path.join(directory, MANIFEST)):
            memo[directory] = directory
        else:
            memo[directory] = None if parent == directory else _prepared_ancestor(parent, memo)
    return memo[directory]


def _decode_chunk(job: tuple[int, str, int, int, CacheMode, list[str]]) -> int:
    """Worker: decode one chunk straight into its slice of the file; only the chunk id travels back."""
    chunk, images_file, size, start, mode, paths = job
    out = np.memmap(images_file, dtype=np.uint8, mode="r+", offset=start * size * size, shape=(len(paths), size, size))
    for j, path in enumerate(paths):
        try:
            out[j] = decode_gray(path, size, mode)
        except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, EOFError… for broken files
            raise RuntimeFailure(
                f"cannot decode image {path} ({type(exc).__name__}: {exc})",
                "fix or replace the file, then rerun: finished chunks are kept",
            ) from None
    out.flush()  # pixels reach the file before the parent marks the chunk done
    return chunk


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def build_cache(
    dataset_dir: Path,
    size: int,
    mode: CacheMode = "pad",
    workers: int | None = None,
    chunk_size: int = 64,
    progress: bool = True,
    chunk_callback: Callable[[int], None] | None = None,
) -> ImageCache:
    """Build (or finish, or refresh) the cache of ``dataset_dir`` at ``size`` and return it.

    A complete cache of the current manifest is returned as is. An interrupted build resumes: chunks
    marked in ``done.u8`` are skipped. A cache of another manifest (or chunk size) starts over.
    ``chunk_callback(chunk)`` runs in this process after each chunk is recorded done.
    """
    if mode not in MODES:
        raise ValueError(f"cache mode {mode!r} is not one of {MODES}")
    ds = PreparedDataset(dataset_dir)
    paths = [str(ds.image_file(p)) for p in ds.frame["image_path"].to_list()]
    directory = cache_dir(ds.root, size, mode)
    n_chunks = math.ceil(len(paths) / chunk_size)
    meta = {
        "size": size,
        "mode": mode,
        "count": len(paths),
        "chunk_size": chunk_size,
        "manifest_sha256": manifest_digest(ds.root),
        "manifest_stat": _manifest_stat(ds.root),
        "complete": False,
    }
    done = _resume_state(directory, meta, n_chunks)
    if done is None:
        done = _start_over(directory, meta, n_chunks, ds.frame.select("image_path"))
    elif done.all() and _read_meta(directory).get("complete"):
        meta["complete"] = True
        _write_meta(directory, meta)  # records the manifest's current stat, so opening skips hashing
        return ImageCache(ds.root, directory, meta)
    todo = [c for c in range(n_chunks) if not done[c]]
    images_file = str(directory / IMAGES)
    jobs = [(c, images_file, size, c * chunk_size, mode, paths[c * chunk_size : (c + 1) * chunk_size]) for c in todo]
    label = f"caching {len(paths)} images at {size}px ({mode})"
    bar = StepProgress(n_chunks, n_chunks - len(todo), label, progress, every=max(1, n_chunks // 20))
    workers = min(workers or default_workers(), max(1, len(todo)))
    with _mapper(workers) as imap:
        try:
            for chunk in imap(_decode_chunk, jobs):
                done[chunk] = 1
                atomic_write(directory / DONE, lambda p: p.write_bytes(done.tobytes()))
                bar.update(int(done.sum()), {})
                if chunk_callback is not None:
                    chunk_callback(chunk)
        finally:
            bar.close()
    meta["complete"] = True
    _write_meta(directory, meta)
    return ImageCache(ds.root, directory, meta)


def _resume_state(directory: Path, meta: dict[str, Any], n_chunks: int) -> np.ndarray | None:
    """The done marks of an earlier build with the same settings and manifest, else None."""
    old = _read_meta(directory)
    same = old is not None and all(old.get(k) == meta[k] for k in ("size", "mode", "count", "chunk_size"))
    if not same or old.get("manifest_sha256") != meta["manifest_sha256"]:
        return None
    try:
        done = np.frombuffer((directory / DONE).read_bytes(), dtype=np.uint8).copy()
        intact = (directory / IMAGES).stat().st_size == meta["count"] * meta["size"] ** 2
    except OSError:
        return None
    return done if intact and len(done) == n_chunks else None


def _start_over(directory: Path, meta: dict[str, Any], n_chunks: int, index: pl.DataFrame) -> np.ndarray:
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    with (directory / IMAGES).open("wb") as f:
        f.truncate(meta["count"] * meta["size"] ** 2)  # sparse until written: no memory, no zero-filling
    index.write_parquet(directory / INDEX)
    done = np.zeros(n_chunks, dtype=np.uint8)
    (directory / DONE).write_bytes(done.tobytes())
    _write_meta(directory, meta)  # complete=False until the last chunk is in
    return done


@contextmanager
def _mapper(workers: int) -> Iterator[Callable[..., Iterable[int]]]:
    """An unordered ``map``: in this process for one worker, else over a pool of processes."""
    if workers == 1:
        yield map
        return
    # fork on Linux: workers start at once and need nothing pickled but their job (paths, offsets).
    context = mp.get_context("fork" if sys.platform == "linux" else "spawn")
    with context.Pool(workers) as pool:  # leaving the block (also on error) terminates the workers
        yield pool.imap_unordered
