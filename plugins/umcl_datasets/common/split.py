"""Seeded splits that keep each group (a patient, usually) inside one split."""

from __future__ import annotations

import numpy as np
import polars as pl


def group_split(groups: pl.Series, fractions: dict[str, float], seed: int, rest: str = "train") -> pl.Series:
    """Split name per row: whole groups go to each named split until it holds its fraction of groups.

    Groups are sorted before the seeded shuffle, so the result depends on the set of groups and the
    seed, not on row order. Rows of groups not assigned to a named split, and rows whose group is
    null, get ``rest``.
    """
    unique = groups.unique().sort()
    order = np.random.default_rng(seed).permutation(unique.len())
    names = np.full(unique.len(), rest, dtype=object)
    start = 0
    for name, fraction in fractions.items():
        count = round(fraction * unique.len())
        names[order[start : start + count]] = name
        start += count
    mapping = pl.DataFrame({"group": unique, "split": pl.Series(names.tolist(), dtype=pl.String)})
    joined = pl.DataFrame({"group": groups}).join(mapping, on="group", how="left", maintain_order="left")
    return joined["split"].fill_null(rest)  # a null group matches no other row
