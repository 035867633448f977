"""Image cache against decoding full-size JPEGs: build time and loader throughput at 224 px.

Generates radiograph-sized JPEGs once (about 2500 x 3000, smooth anatomy-like shading plus noise,
quality 90; kept in ``--dir`` and reused), reads them all once so every timing sees warm files, then:

(a) naive: ``Image.open(p).convert("L").resize((224, 224))`` per image in one process, on the first
    ``--naive-n`` images, scaled to 1,000;
(b) the cache build at 224 px (``draft`` decoding), with one worker and with the default workers;
(c) a DataLoader over ``UnifiedDataset`` items: from the cache (all images) vs from the JPEGs (the
    first ``--loader-n``), in images/s after the first batch.

    python benchmarks/image_cache.py            # about 1.5 min on 2 cores once the JPEGs exist
"""

from __future__ import annotations

import argparse
import shutil
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import polars as pl
from PIL import Image
from torch.utils.data import DataLoader, Subset

from umcl_cli.data.cache import build_cache, cache_dir, default_workers
from umcl_cli.data.manifest import PreparedDataset, write_prepared
from umcl_cli.data.transforms import ImageTransform
from umcl_cli.data.unified import SourceSpec, UnifiedDataset, collate

NOISE = np.random.default_rng(0).normal(0, 4, (512, 512)).astype(np.int16)


def radiograph(seed: int) -> Image.Image:
    """Smooth low-resolution shading (two dark lung fields, a bright midline, a gradient) upsampled to
    full size, plus a tile of grain noise at a random offset; cheap enough for a thousand images."""
    rng = np.random.default_rng(seed)
    w, h = int(rng.integers(2400, 2601)), int(rng.integers(2900, 3101))
    y, x = np.mgrid[0:60, 0:50] / np.array([60, 50])[:, None, None]
    lungs = sum(np.exp(-(((x - cx) / 0.15) ** 2 + ((y - 0.45) / 0.28) ** 2)) for cx in (0.3 + rng.normal(0, 0.02), 0.7))
    field = 150 + 40 * y - 90 * lungs + 30 * np.exp(-(((x - 0.5) / 0.08) ** 2)) + rng.normal(0, 5, x.shape)
    shading = np.asarray(Image.fromarray(field.astype(np.float32)).resize((w, h), Image.Resampling.BILINEAR))
    oy, ox = rng.integers(0, 512, 2)
    grain = np.tile(np.roll(NOISE, (oy, ox), axis=(0, 1)), (h // 512 + 1, w // 512 + 1))[:h, :w]
    return Image.fromarray(np.clip(shading + grain, 0, 255).astype(np.uint8))


def _write(job: tuple[int, Path]) -> None:
    seed, path = job
    radiograph(seed).save(path, quality=90)


def ensure_jpegs(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{i:05d}.jpg" for i in range(n)]
    missing = [(i, p) for i, p in enumerate(paths) if not p.is_file()]
    if missing:
        print(f"writing {len(missing)} JPEGs to {folder} (once)", flush=True)
        with Pool(default_workers()) as pool:
            pool.map(_write, missing, chunksize=8)
    return paths


def prepared(out: Path, paths: list[Path]) -> Path:
    n = len(paths)
    frame = pl.DataFrame(
        {
            "image_path": [str(p) for p in paths],
            "text": ["FINDINGS: No acute process."] * n,
            "split": ["train"] * n,
            "subject_id": [str(i) for i in range(n)],
            "study_id": [str(i) for i in range(n)],
            "view": ["PA"] * n,
            "source": ["bench"] * n,
            "No Finding": [1.0] * n,
        }
    )
    return write_prepared(out, frame, {"name": out.name, "classes": ["No Finding"]})


def time_build(dataset: Path, size: int, workers: int | None) -> float:
    shutil.rmtree(cache_dir(dataset, size, "pad"), ignore_errors=True)
    start = time.perf_counter()
    build_cache(dataset, size, workers=workers, progress=False)
    return time.perf_counter() - start


def loader_rate(dataset: Path, size: int, n: int, workers: int, batch: int) -> float:
    """Images/s of a shuffled DataLoader over UnifiedDataset items, after its first batch."""
    stream = UnifiedDataset([SourceSpec(PreparedDataset(dataset))], ImageTransform(size, [0.5], [0.25]))
    loader = DataLoader(
        Subset(stream, range(min(n, len(stream)))), batch, shuffle=True, num_workers=workers, collate_fn=collate
    )
    batches = iter(loader)
    next(batches)
    start, seen = time.perf_counter(), 0
    for b in batches:
        seen += len(b["images"])
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/umcl-cache-bench"))
    parser.add_argument("--n", type=int, default=1000, help="JPEGs to generate and cache")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--workers", type=int, default=None, help="cache build processes (default: all cores)")
    parser.add_argument("--naive-n", type=int, default=200, help="images for the naive single-process timing")
    parser.add_argument("--loader-n", type=int, default=300, help="images for the loader over raw JPEGs")
    parser.add_argument("--loader-workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    size, per = args.size, 1000

    paths = ensure_jpegs(args.dir / "jpeg", args.n)
    mb = sum(p.stat().st_size for p in paths) / len(paths) / 2**20
    for p in paths:
        p.read_bytes()  # warm the page cache: every timing below measures decoding, not the disk
    cached, raw = prepared(args.dir / "cached", paths), prepared(args.dir / "raw", paths)
    print(f"{len(paths)} JPEGs, {mb:.2f} MB each on average, ~2500x3000; {default_workers()} cores")

    start = time.perf_counter()
    for p in paths[: args.naive_n]:
        Image.open(p).convert("L").resize((size, size))
    naive = (time.perf_counter() - start) / min(args.naive_n, len(paths)) * per
    one = time_build(cached, size, 1) / len(paths) * per
    workers = args.workers or default_workers()
    pool = time_build(cached, size, args.workers) / len(paths) * per
    print(f"(a) naive open+convert+resize, 1 process: {naive:6.1f} s per 1,000 images")
    print(f"(b) cache build, 1 worker:                 {one:6.1f} s per 1,000 images ({naive / one:.1f}x)")
    print(f"    cache build, {workers} workers:               {pool:6.1f} s per 1,000 images ({naive / pool:.1f}x)")

    from_cache = loader_rate(cached, size, len(paths), args.loader_workers, args.batch_size)
    from_files = loader_rate(raw, size, args.loader_n, args.loader_workers, args.batch_size)
    print(f"(c) DataLoader, {args.loader_workers} workers, {size} px: cache {from_cache:,.0f} images/s, ", end="")
    print(f"JPEG files {from_files:,.1f} images/s ({from_cache / from_files:.0f}x)")


if __name__ == "__main__":
    main()
