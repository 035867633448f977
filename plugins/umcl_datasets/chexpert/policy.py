"""Uncertain-label (-1) policies applied when CheXpert is prepared.

The manifest keeps the contract's meanings: 1 positive, 0 negative, -1 uncertain, null not
mentioned. A policy that maps -1 to 0 or 1 writes the mapped value; where a policy says "ignore"
the value stays -1, because null would mean "not mentioned", which training reads as negative.
Evaluation excludes -1 per class, and training applies the recipe's ``data.uncertain`` to any -1
left (set it to ``ignore`` to mask them there too).
"""

from __future__ import annotations

from typing import Literal

import polars as pl

from umcl_cli.contracts import CHEXPERT_CLASSES

Policy = Literal["ignore", "ones", "zeros", "gloria"]
# GLoRIA's per-class mapping (after the CheXpert paper's best policy per competition class).
GLORIA = {"Atelectasis": 1.0, "Cardiomegaly": 0.0, "Consolidation": 0.0, "Edema": 1.0, "Pleural Effusion": 1.0}


def uncertain_map(policy: Policy) -> dict[str, float]:
    """Class → the value its -1 labels become; classes not listed keep -1."""
    if policy == "ones":
        return dict.fromkeys(CHEXPERT_CLASSES, 1.0)
    if policy == "zeros":
        return dict.fromkeys(CHEXPERT_CLASSES, 0.0)
    if policy == "gloria":
        return dict(GLORIA)
    return {}


def apply_uncertain(frame: pl.DataFrame, policy: Policy) -> pl.DataFrame:
    """``frame`` with each mapped class's -1 replaced by its value."""
    return frame.with_columns(
        pl.when(pl.col(name) == -1).then(pl.lit(value, dtype=pl.Float32)).otherwise(pl.col(name)).alias(name)
        for name, value in uncertain_map(policy).items()
    )


def describe(policy: Policy) -> str:
    """The dataset.json ``uncertain_policy`` text."""
    mapped = uncertain_map(policy)
    if not mapped:
        return "ignore: kept as -1 (excluded in evaluation; training applies the recipe's data.uncertain)"
    kept = [c for c in CHEXPERT_CLASSES if c not in mapped]
    rule = ", ".join(f"{c} {v:g}" for c, v in mapped.items()) if policy == "gloria" else f"all classes {policy}"
    return f"{policy}: -1 replaced at prepare time ({rule})" + ("; other classes kept as -1" if kept else "")
