"""Decoding and square-fitting of radiographs: PIL and numpy only, so preparing data never imports torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from umcl_cli.errors import UsageError, first_line

RESAMPLE = Image.Resampling.BILINEAR


def to_gray(im: Image.Image) -> Image.Image:
    """8-bit grayscale. 16-bit samples are scaled over their full range (PIL's convert clips them at 255)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        # PNG stores fewer significant bits scaled up to the full 16-bit range, so 65535 is white.
        wide = np.clip(np.asarray(im, dtype=np.int64), 0, 65535)
        return Image.fromarray(((wide * 255 + 32767) // 65535).astype(np.uint8))
    return im.convert("L")


def fit_square(gray: Image.Image, size: int, mode: str = "pad") -> np.ndarray:
    """``[size, size]`` uint8 with the aspect kept: the whole image padded with black (``pad``, the
    default: the costophrenic angles stay in view) or its centre cropped (``crop``)."""
    w, h = gray.size
    scale = size / (max(w, h) if mode == "pad" else min(w, h))
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    pixels = np.asarray(gray if (nw, nh) == (w, h) else gray.resize((nw, nh), RESAMPLE))
    if mode == "crop":
        top, left = (nh - size) // 2, (nw - size) // 2
        return np.ascontiguousarray(pixels[top : top + size, left : left + size])
    out = np.zeros((size, size), dtype=np.uint8)  # black borders: the background of a radiograph
    top, left = (size - nh) // 2, (size - nw) // 2
    out[top : top + nh, left : left + nw] = pixels
    return out


class UnreadableImage(UsageError):
    """An image file that cannot be decoded; ``path`` names it."""

    def __init__(self, problem: str, fix: str = "", path: str = "") -> None:
        super().__init__(problem, fix)
        self.path = path


def load_gray(path: str | Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.array(to_gray(im))
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, EOFError… for broken files
        raise UnreadableImage(
            f"cannot read image {path} ({type(exc).__name__}: {first_line(exc)})",
            "replace or remove the file (`umcl pretrain --on-bad-image skip` trains without such files)",
            str(path),
        ) from exc
