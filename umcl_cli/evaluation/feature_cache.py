"""Frozen image features of a dataset split, encoded once and kept on disk.

Linear probes over several fractions and seeds, repeated zero-shot runs and prompt-tuning sweeps all
read the same frozen features; encoding them is the slow part. A cache entry is keyed by the SHA-256
of the checkpoint file, the SHA-256 of the dataset's manifest, the split, the image size and the
feature kind (``images``: projected embeddings, ``backbone``: raw encoder features), so a retrained
checkpoint or a re-prepared dataset never reads stale features. Image files changed in place under an
unchanged manifest are not detected; delete the cache directory after doing that.

Location: ``--cache-dir``, else ``$UMCL_CACHE/features``, else ``features/`` in a ``cache``
directory beside the checkpoint. A cache that cannot be written only costs the re-encoding.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from umcl_cli.data.manifest import MANIFEST, PreparedDataset
from umcl_cli.engine.logging import console
from umcl_cli.errors import UsageError
from umcl_cli.evaluation.features import encode_image_files
from umcl_cli.io_safety import atomic_save
from umcl_cli.model.dual_encoder import DualEncoder

CACHE_FORMAT = "umcl-feature-cache"
_digests: dict[tuple[str, int, int], str] = {}  # per process: hash a large checkpoint once


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, memoised per (path, size, mtime)."""
    stat = Path(path).stat()
    memo = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if memo not in _digests:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _digests[memo] = h.hexdigest()
    return _digests[memo]


def cache_root(ckpt: Path, cache_dir: Path | None = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get("UMCL_CACHE"):
        return Path(os.environ["UMCL_CACHE"]) / "features"
    return Path(ckpt).parent / "cache" / "features"


def cache_key(ckpt: Path, ds: PreparedDataset, split: str, image_size: int, what: str) -> str:
    parts = {
        "checkpoint": file_digest(ckpt),
        "manifest": file_digest(ds.root / MANIFEST),
        "split": split,
        "image_size": image_size,
        "what": what,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def split_features(
    model: DualEncoder,
    ckpt: Path,
    ds: PreparedDataset,
    split: str,
    image_size: int,
    what: str = "images",
    cache_dir: Path | None = None,
) -> torch.Tensor:
    """Features ``[N, D]`` of every row of ``split`` in manifest order, from the cache when present."""
    paths = [ds.image_file(p) for p in ds.split(split)["image_path"].to_list()]
    if not paths:
        raise UsageError(f"dataset {ds.name} has no '{split}' rows", "choose another split or dataset")
    key = cache_key(ckpt, ds, split, image_size, what)
    file = cache_root(ckpt, cache_dir) / f"{ds.name.replace('/', '_')}-{split}-{what}-{key}.pt"
    if file.is_file():
        try:
            entry = torch.load(file, map_location="cpu", weights_only=True)
            if entry.get("format") == CACHE_FORMAT and entry["features"].shape[0] == len(paths):
                return entry["features"]
        except Exception:  # a damaged entry is re-encoded and replaced, never fatal
            pass
    features = encode_image_files(model, paths, image_size, what=what)
    try:
        atomic_save({"format": CACHE_FORMAT, "key": key, "features": features}, file)
    except OSError as exc:
        console.print(f"[yellow]warning:[/yellow] feature cache not written ({exc.strerror}): {file.parent}")
    return features
