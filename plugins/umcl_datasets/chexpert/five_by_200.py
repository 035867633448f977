"""``umcl prepare chexpert-5x200``: GLoRIA's zero-shot test set, drawn reproducibly from train.csv.

GLoRIA's rule: blanks read as 0; frontal images only; for each competition class, the candidates
are rows where that class is 1 and every other class (No Finding excepted) is exactly 0, so an
uncertain (-1) label anywhere disqualifies a row. ``--per-class`` are drawn per class with
``--seed`` (the original draw was unseeded and never released). The manifest keeps CheXpert's
``Path`` in ``csv_path``; ``umcl prepare chexpert --exclude-5x200 DIR`` removes those images from
the training manifest.

Papers differ partly because each drew its own 5x200. ``--draws K`` writes K seeded draws (seeds SEED
… SEED+K-1): the first in OUT, the others in ``OUT/draw-1`` … (listed as ``draw_dirs`` in OUT's
dataset.json); ``umcl zeroshot`` on OUT then reports mean ± std over the draws, and
``--exclude-5x200 OUT`` removes the images of every draw.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from umcl_cli.contracts import CHEXPERT_CLASSES, CHEXPERT_COMPETITION, DatasetPlugin, UsageError, write_prepared

from .options import Chexpert5x200Options
from .source import existing, locate, manifest_columns
from .tables import read_table

_OTHERS = [c for c in CHEXPERT_CLASSES if c != "No Finding"]


class Chexpert5x200Dataset(DatasetPlugin[Chexpert5x200Options]):
    name = "chexpert-5x200"
    summary = "GLoRIA's CheXpert 5x200 zero-shot test set (one competition class per image), seeded"
    Options = Chexpert5x200Options

    def prepare(self, opts: Chexpert5x200Options, out: Path) -> list[Path]:
        root, folder = locate(opts)
        train = read_table(root, folder, "train.csv").with_columns(pl.col(_OTHERS).fill_null(0.0))
        draw_dirs = [f"draw-{k}" for k in range(1, opts.draws)]
        return [
            self._draw(train, opts, root, folder, opts.seed + k, out / draw_dirs[k - 1] if k else out, draw_dirs)
            for k in range(opts.draws)
        ]

    def _draw(
        self,
        train: pl.DataFrame,
        opts: Chexpert5x200Options,
        root: Path,
        folder: str,
        seed: int,
        out: Path,
        draw_dirs: list[str],
    ) -> Path:
        selected = select(train, opts.per_class, seed)
        keep = existing(root, selected, opts)
        selected = selected.filter(pl.Series(keep)).with_columns(pl.lit("test").alias("split"))
        info = {
            "name": "chexpert-5x200",
            "version": folder,
            "classes": list(CHEXPERT_COMPETITION),
            "task": "multiclass",
            "eval_classes": list(CHEXPERT_COMPETITION),
            "uncertain_policy": "none (candidates have no uncertain label)",
            "rule": "train.csv, blanks as 0, frontal only; class = 1 and every other class except No Finding = 0",
            "per_class": opts.per_class,
            "seed": seed,
            "draws": opts.draws,
            # Only the first draw lists the others, so zeroshot on it averages over all of them.
            "draw_dirs": draw_dirs if seed == opts.seed else [],
            "missing_images_skipped": int((~keep).sum()),
            "image_paths": "absolute",
            "source": {"root": str(root), "folder": folder},
            "options": opts.model_dump(mode="json"),
        }
        frame = selected.select(manifest_columns(root, list(CHEXPERT_COMPETITION)))
        return write_prepared(out, frame, info)


def select(train: pl.DataFrame, per_class: int, seed: int) -> pl.DataFrame:
    """``per_class`` seeded rows per competition class, the classes one-hot in that order."""
    rng = np.random.default_rng(seed)
    frontal = train.filter(pl.col("Frontal/Lateral") == "Frontal").sort("Path")
    parts = []
    for name in CHEXPERT_COMPETITION:
        only = (pl.col(name) == 1) & pl.all_horizontal(pl.col(c) == 0 for c in _OTHERS if c != name)
        candidates = frontal.filter(only)
        if candidates.height < per_class:
            raise UsageError(
                f"only {candidates.height} train.csv images qualify for {name} (--per-class is {per_class})",
                f"lower --per-class to {candidates.height} or less",
            )
        parts.append(candidates[np.sort(rng.choice(candidates.height, per_class, replace=False))])
    return pl.concat(parts)
