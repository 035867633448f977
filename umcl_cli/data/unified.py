"""The unified training stream: image-report pairs and label-only rows from several datasets.

A row with a report trains as an image-text pair; a row with labels only gets its text from the
prompt learner (or a hand-written template); a row with both keeps both, and its labels build the
loss targets.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import torch
from torch.utils.data import Dataset, Sampler

from umcl_cli.data.bad_images import BadImagePolicy
from umcl_cli.data.cache import ImageCache
from umcl_cli.data.images import load_gray
from umcl_cli.data.labels import apply_policy, check_canonical, class_phrase, union_classes
from umcl_cli.data.manifest import PreparedDataset
from umcl_cli.data.reports import select_text
from umcl_cli.data.transforms import ImageTransform
from umcl_cli.errors import UsageError


@dataclass
class SourceSpec:
    dataset: PreparedDataset
    split: str = "train"
    weight: float = 1.0
    use_text: bool = True
    use_labels: bool = True


class UnifiedDataset(Dataset):
    """Rows ``(image, text | None, labels | None)`` over several prepared datasets."""

    def __init__(
        self,
        sources: Sequence[SourceSpec],
        transform: ImageTransform,
        uncertain: Any = "ones",
        text_section: str = "both",
        label_text: str = "prompt",
        template: str = "a chest x-ray showing {}",
        classes: Sequence[str] | None = None,
        seed: int = 0,
    ) -> None:
        for s in sources:
            check_canonical(s.dataset.name, s.dataset.classes)
        self.classes = list(classes) if classes is not None else union_classes([s.dataset.classes for s in sources])
        self.transform = transform
        self.text_section = text_section
        self.label_text = label_text
        self.template = template
        paths, texts, labels, has, weights, origin, rows = [], [], [], [], [], [], []
        for k, s in enumerate(sources):
            frame = s.dataset.split(s.split)
            if frame.height == 0:
                raise UsageError(
                    f"dataset {s.dataset.name} has no rows in split '{s.split}'",
                    "choose a split it has (see its dataset.json counts)",
                )
            raw = self._raw_labels(frame, s.dataset.classes)
            row_has = ~np.isnan(raw).all(axis=1) if s.use_labels else np.zeros(frame.height, dtype=bool)
            mapped = apply_policy(raw, self.classes, uncertain)
            # A class the source never labels is unknown, not negative: keys then only match within
            # compatible vocabularies.
            lacking = [j for j, c in enumerate(self.classes) if c not in s.dataset.classes]
            mapped[:, lacking] = np.nan
            text_col = frame["text"].to_list() if s.use_text else [None] * frame.height
            keep = np.array([t is not None for t in text_col]) | (row_has & (label_text != "drop"))
            if not keep.any():
                raise UsageError(
                    f"dataset {s.dataset.name} gives no trainable rows (no text, and labels are unused)",
                    "enable use_text or use_labels for it, or remove it from the recipe",
                )
            idx = np.flatnonzero(keep)
            in_split = np.flatnonzero((s.dataset.frame["split"] == s.split).to_numpy())  # the rows split() keeps
            rows.append(in_split[idx])
            paths += [str(s.dataset.image_file(p)) for p in frame["image_path"].gather(idx).to_list()]
            texts += [text_col[i] for i in idx]
            labels.append(mapped[idx])
            has.append(row_has[idx])
            weights.append(np.full(len(idx), s.weight / len(idx)))
            origin.append(np.full(len(idx), k))
        self.paths = paths
        self.texts: list[str | None] = texts
        self.labels = np.concatenate(labels).astype(np.float32)
        self.has_labels = np.concatenate(has)
        self.weights = np.concatenate(weights)
        self.origin = np.concatenate(origin)
        # Manifest row of each stream row, for image caches (cache row = manifest row).
        self._manifest_rows = np.concatenate(rows)
        self._roots = [s.dataset.root for s in sources]
        self._caches: dict[int, list[ImageCache | None]] = {}
        self.seed, self.epoch = seed, 0
        self.bad_images = BadImagePolicy()  # the caller may set another (pretrain --on-bad-image)

    def _raw_labels(self, frame: pl.DataFrame, source_classes: Sequence[str]) -> np.ndarray:
        """Raw values in this stream's class order; classes the source lacks are NaN (unknown)."""
        raw = np.full((frame.height, len(self.classes)), np.nan, dtype=np.float32)
        for j, name in enumerate(self.classes):
            if name in source_classes:
                raw[:, j] = frame[name].cast(pl.Float32).fill_null(float("nan")).to_numpy()
        return raw

    def __len__(self) -> int:
        return len(self.paths)

    def set_epoch(self, epoch: int) -> None:
        """The engine tells the epoch, so per-row randomness is a function of (seed, epoch, row): a
        resumed run, in any worker, picks the very sentences the interrupted one would have."""
        self.epoch = epoch

    @property
    def corpus(self) -> list[str]:
        return [t for t in self.texts if t is not None]

    def phrase(self, i: int) -> tuple[str, list[int]]:
        positives = [j for j, v in enumerate(self.labels[i]) if v == 1]
        return class_phrase([self.classes[j] for j in positives]), positives

    def __getitem__(self, i: int) -> dict[str, Any]:
        i, gray = self.bad_images.first_readable(i, len(self), self._gray)  # a skipped file's row gives way
        image = self.transform(gray)
        text = self.texts[i]
        if text is not None:
            text = select_text(text, self.text_section, random.Random((self.seed * 1_000_003 + self.epoch) * 2**32 + i))
        elif self.label_text == "template":
            text = self.template.format(self.phrase(i)[0])
        phrase, class_set = self.phrase(i)
        return {
            "image": image,
            "text": text,
            "phrase": phrase,
            "class_set": class_set,
            "labels": torch.from_numpy(self.labels[i]),
            "has_labels": bool(self.has_labels[i]),
        }

    def _gray(self, i: int) -> np.ndarray:
        """Pixels from the source's cache at the transform's size when it has one, else the file."""
        size = self.transform.size
        if size not in self._caches:  # looked up on first use: the transform is set after construction
            self._caches[size] = [ImageCache.open(root, size) for root in self._roots]
        cache = self._caches[size][self.origin[i]]
        return cache.get(self._manifest_rows[i]) if cache is not None else load_gray(self.paths[i])


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "images": torch.stack([it["image"] for it in items]),
        "texts": [it["text"] for it in items],
        "phrases": [it["phrase"] for it in items],
        "class_sets": [it["class_set"] for it in items],
        "labels": torch.stack([it["labels"] for it in items]),
        "has_labels": torch.tensor([it["has_labels"] for it in items]),
    }


class TokenizingCollate:
    """``collate`` plus ``input_ids``/``attention_mask`` of the rows that have text, in row order.

    Tokenising where batches are collated puts the work in the DataLoader's workers (with
    ``num_workers > 0``) instead of the training step. ``tokenize`` is the text encoder's
    ``batch_tokenizer()``; it must pickle for the ``spawn``/``forkserver`` start methods. A batch
    without text rows carries no ids.
    """

    def __init__(self, tokenize: Callable[[list[str]], dict[str, torch.Tensor]]) -> None:
        self.tokenize = tokenize

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        batch = collate(items)
        texts = [t for t in batch["texts"] if t is not None]
        if texts:
            tokens = self.tokenize(texts)
            batch["input_ids"] = tokens["input_ids"]
            batch["attention_mask"] = tokens["attention_mask"]
        return batch


def systematic_draws(weights: torch.Tensor, total: int, generator: torch.Generator) -> torch.Tensor:
    """``total`` row indices, row ``i`` drawn ``floor(c_i)`` or ``ceil(c_i)`` times with expectation
    ``c_i = total * w_i / sum(w)``, in random order (systematic PPS sampling). Rows are laid out
    grouped by weight (a dataset's rows share one), shuffled within each group, so each group also
    gets the floor or ceiling of its share."""
    shuffled = torch.randperm(len(weights), generator=generator)
    rows = shuffled[torch.sort(weights[shuffled], stable=True).indices]
    edges = torch.cumsum(weights[rows] * (total / weights.sum()), dim=0)
    points = torch.rand(1, generator=generator, dtype=torch.double) + torch.arange(total, dtype=torch.double)
    # The row whose interval [edges[k-1], edges[k]) holds each point; the clamp absorbs rounding at the end.
    picked = rows[torch.searchsorted(edges, points, right=True).clamp(max=len(weights) - 1)]
    return picked[torch.randperm(total, generator=generator)]


class WeightedDistributedSampler(Sampler[int]):
    """Epoch-seeded sampling shared by all ranks, then sharded: each rank sees a disjoint slice.

    Uniform weights give a permutation (every row once an epoch). Otherwise each row is drawn in
    proportion to its weight by systematic sampling over a random order: a row whose share of the
    epoch is ``c`` draws comes ``floor(c)`` or ``ceil(c)`` times, never more, so an epoch repeats no row
    of a down-weighted dataset and covers an up-weighted one whole before repeating it (drawing
    with replacement, as before, left about a third of each dataset unseen every epoch).
    ``skip`` resumes an epoch part-way.
    """

    def __init__(self, weights: np.ndarray, rank: int = 0, world_size: int = 1, seed: int = 0) -> None:
        self.weights = torch.as_tensor(weights, dtype=torch.double)
        self.uniform = bool(torch.allclose(self.weights, self.weights[0]))
        self.rank, self.world_size, self.seed = rank, world_size, seed
        self.num_samples = math.ceil(len(weights) / world_size)
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        total = self.num_samples * self.world_size
        if self.uniform:
            order = torch.randperm(len(self.weights), generator=g)
            order = torch.cat([order, order[: total - len(order)]])  # pad so ranks get equal shares
        else:
            order = systematic_draws(self.weights, total, g)
        return iter(order[self.rank :: self.world_size][self.skip :].tolist())

    def __len__(self) -> int:
        return self.num_samples - self.skip
