"""The image cache: pixels against an independent PIL resize, geometry, resuming, staleness, loaders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from umcl_cli.data.cache import DONE, META, ImageCache, build_cache, cache_dir
from umcl_cli.data.manifest import PreparedDataset, write_prepared
from umcl_cli.data.transforms import ImageTransform
from umcl_cli.data.unified import SourceSpec, UnifiedDataset, collate
from umcl_cli.evaluation.features import encode_image_files
from umcl_datasets.synthetic import SyntheticDataset, SyntheticOptions

N = 120


def prepare_synthetic(out: Path, seed: int = 0) -> list[Path]:
    return SyntheticDataset().prepare(SyntheticOptions(n=N, per_class=4, size=64, seed=seed), out)


def stored(ds_dir: Path) -> np.ndarray:
    ds = PreparedDataset(ds_dir)
    return np.stack([np.array(Image.open(ds.image_file(p))) for p in ds.frame["image_path"]])


def reference(path: Path, size: int, mode: str) -> np.ndarray:
    """Full decode, bilinear resize of the whole image, then pad or centre-crop: no decoder shortcuts."""
    with Image.open(path) as im:
        gray = im.convert("L")
    w, h = gray.size
    scale = size / (max(w, h) if mode == "pad" else min(w, h))
    nw, nh = round(w * scale), round(h * scale)
    pixels = np.asarray(gray.resize((nw, nh), Image.Resampling.BILINEAR))
    if mode == "crop":
        top, left = (nh - size) // 2, (nw - size) // 2
        return pixels[top : top + size, left : left + size]
    canvas = np.zeros((size, size), dtype=np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    canvas[top : top + nh, left : left + nw] = pixels
    return canvas


def smooth(w: int, h: int, seed: int) -> np.ndarray:
    """A radiograph-like field: a horizontal gradient, a bright central blob, mild noise."""
    y, x = np.mgrid[0:h, 0:w]
    blob = np.exp(-(((x - w / 2) / (0.3 * w)) ** 2 + ((y - h / 2) / (0.35 * h)) ** 2))
    field = 40 + 90 * x / w + 60 * blob + np.random.default_rng(seed).normal(0, 4, (h, w))
    return np.clip(field, 0, 255).astype(np.uint8)


def write_dataset(out: Path, files: dict[str, Image.Image]) -> Path:
    (out / "images").mkdir(parents=True)
    names = []
    for name, image in files.items():
        image.save(out / "images" / name, quality=90)  # quality: JPEG only
        names.append(f"images/{name}")
    n = len(names)
    frame = pl.DataFrame(
        {
            "image_path": names,
            "text": ["no finding"] * n,
            "split": ["train"] * n,
            "subject_id": [str(i) for i in range(n)],
            "study_id": [str(i) for i in range(n)],
            "view": ["PA"] * n,
            "source": ["test"] * n,
            "Cardiomegaly": [0.0] * n,
        }
    )
    return write_prepared(out, frame, {"name": "odd", "classes": ["Cardiomegaly"]})


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return prepare_synthetic(tmp_path_factory.mktemp("synthetic"))[0]


@pytest.fixture(scope="module")
def odd(tmp_path_factory) -> Path:
    """Non-square JPEGs (grey and RGB) and PNGs (8- and 16-bit), plus shapes with a known geometry."""
    wide = np.zeros((100, 300), dtype=np.uint8)
    wide[:, 150:] = 255  # left half black, right half white
    files = {
        "a.jpg": Image.fromarray(smooth(300, 200, 1)),
        "b.jpg": Image.fromarray(smooth(157, 411, 2)),
        "c.jpg": Image.fromarray(np.repeat(smooth(1000, 620, 3)[..., None], 3, axis=2)),
        "d.png": Image.fromarray(smooth(90, 130, 4)),
        "white.png": Image.fromarray(np.full((200, 300), 255, dtype=np.uint8)),
        "halves.png": Image.fromarray(wide),
        "deep.png": Image.fromarray(np.full((40, 60), 40000, dtype=np.uint16)),
    }
    return write_dataset(tmp_path_factory.mktemp("odd"), files)


def test_png_cache_holds_the_stored_pixels(synthetic):
    cache = build_cache(synthetic, 64, workers=2, chunk_size=16, progress=False)
    assert ImageCache.open(synthetic, 64) is not None
    assert json.loads((cache.directory / META).read_text())["complete"] is True
    cached = np.stack([cache.get(i) for i in range(len(cache))])
    np.testing.assert_array_equal(cached, stored(synthetic))  # 64 px images: resizing is the identity


@pytest.mark.parametrize("mode", ["pad", "crop"])
def test_pixels_match_an_independent_resize(odd, mode):
    cache = build_cache(odd, 48, mode, workers=2, chunk_size=2, progress=False)
    ds = PreparedDataset(odd)
    for row, path in enumerate(ds.frame["image_path"]):
        got, want = cache.get(row).astype(int), reference(ds.image_file(path), 48, mode).astype(int)
        if path.endswith(".jpg"):
            # draft() decodes at 1/2-1/8 scale before the resize: a few grey levels apart at most.
            assert np.abs(got - want).max() <= 3 and np.abs(got - want).mean() < 0.75, path
        elif path != "images/deep.png":
            np.testing.assert_array_equal(got, want, err_msg=path)


def test_pad_and_crop_geometry(odd):
    rows = {p.split("/")[1]: i for i, p in enumerate(PreparedDataset(odd).frame["image_path"])}
    pad = build_cache(odd, 48, "pad", progress=False)
    crop = build_cache(odd, 48, "crop", progress=False)
    white_pad = pad.get(rows["white.png"])
    lit = np.flatnonzero(white_pad.max(axis=1) > 0)
    assert len(lit) == 32 and lit[0] == 8  # 300x200 → 48x32, centred with 8 black rows each side
    assert (white_pad[lit] == 255).all()
    assert (crop.get(rows["white.png"]) == 255).all()  # 200 px side → 48, the long side cut
    halves = crop.get(rows["halves.png"])  # 300x100 → 144x48, keep the middle third: columns 48-96
    assert (halves[:, :22] == 0).all() and (halves[:, 26:] == 255).all()


def test_16_bit_png_is_scaled_not_clipped(odd):
    row = PreparedDataset(odd).frame["image_path"].to_list().index("images/deep.png")
    assert (build_cache(odd, 48, "crop", progress=False).get(row) == round(40000 / 257)).all()


def test_interrupted_build_resumes_with_the_remaining_chunks(tmp_path):
    ds = prepare_synthetic(tmp_path)[0]
    whole = build_cache(ds, 40, chunk_size=16, workers=2, progress=False)
    expected = np.array([whole.get(i) for i in range(N)])
    shutil.rmtree(whole.directory)
    n_chunks = -(-N // 16)

    first_run: list[int] = []

    def stop_after_one(chunk: int) -> None:
        first_run.append(chunk)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_cache(ds, 40, chunk_size=16, workers=2, progress=False, chunk_callback=stop_after_one)
    assert ImageCache.open(ds, 40) is None  # incomplete caches are never read
    assert np.flatnonzero(np.fromfile(cache_dir(ds, 40, "pad") / DONE, dtype=np.uint8)).tolist() == first_run

    second_run: list[int] = []
    resumed = build_cache(ds, 40, chunk_size=16, workers=2, progress=False, chunk_callback=second_run.append)
    assert sorted(second_run) == sorted(set(range(n_chunks)) - set(first_run))
    np.testing.assert_array_equal(np.array([resumed.get(i) for i in range(N)]), expected)

    third_run: list[int] = []
    build_cache(ds, 40, chunk_size=16, progress=False, chunk_callback=third_run.append)
    assert third_run == []  # complete and current: nothing decoded


def test_stale_manifest_rebuilds(tmp_path):
    ds = prepare_synthetic(tmp_path)[0]
    build_cache(ds, 64, chunk_size=32, progress=False)
    prepare_synthetic(tmp_path, seed=1)  # same file names, other images and manifest
    assert ImageCache.open(ds, 64) is None
    decoded: list[int] = []
    cache = build_cache(ds, 64, chunk_size=32, progress=False, chunk_callback=decoded.append)
    assert sorted(decoded) == list(range(4))
    np.testing.assert_array_equal(np.stack([cache.get(i) for i in range(N)]), stored(ds))


def _stream(ds: Path, five: Path) -> UnifiedDataset:
    sources = [SourceSpec(PreparedDataset(ds), "train"), SourceSpec(PreparedDataset(five), "test")]
    return UnifiedDataset(sources, ImageTransform(64, [0.5], [0.25]))


def _images(stream: UnifiedDataset) -> torch.Tensor:
    return torch.stack([stream[i]["image"] for i in range(len(stream))])


def test_loaders_give_the_same_tensors_from_cache_and_files(tmp_path, tiny_model):
    ds, five = prepare_synthetic(tmp_path)
    test_paths = [PreparedDataset(ds).image_file(p) for p in PreparedDataset(ds).split("test")["image_path"]]
    from_files = _images(_stream(ds, five))
    features_from_files = encode_image_files(tiny_model, test_paths, 64)

    build_cache(ds, 64, progress=False)  # the 5x200 source stays uncached: its rows decode files
    shutil.rmtree(ds / "images")  # from here on the main dataset's pixels can only come from the cache
    stream = _stream(ds, five)
    torch.testing.assert_close(_images(stream), from_files, rtol=0, atol=0)
    loader = DataLoader(stream, batch_size=32, num_workers=2, collate_fn=collate)  # forked workers map it anew
    torch.testing.assert_close(torch.cat([b["images"] for b in loader]), from_files, rtol=0, atol=0)
    torch.testing.assert_close(encode_image_files(tiny_model, test_paths, 64), features_from_files, rtol=0, atol=0)
