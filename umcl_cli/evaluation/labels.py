"""Ground truth for every evaluation command: one convention for blank labels, and bootstrap units.

Label convention (zero-shot, linear probe, prompt tuning and retrieval's P@K all read labels here):

- ``1`` positive, ``0`` negative;
- blank (null: the report does not mention the finding) counts as **negative**, ``0``, the CheXpert
  and CheXzero reading of an unmentioned finding;
- ``-1`` (uncertain) is **unknown**: NaN, left out of that class's AUROC. Where whole label rows are
  compared (retrieval P@K) an uncertain entry is a value of its own, equal only to another uncertain.

Bootstrap unit: images of one patient (or one study) are correlated, so intervals resample patients
when the manifest has ``subject_id``, else studies (``study_id``), else images. A row with a blank id
is its own unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
import torch

from umcl_cli.errors import UsageError

UNIT_COLUMNS = {"patient": "subject_id", "study": "study_id"}
UNITS = ("auto", "patient", "study", "image")
# How an uncertain entry is written where label rows are compared for equality (P@K).
UNCERTAIN_CODE = -1.0


def label_matrix(frame: pl.DataFrame, classes: Sequence[str]) -> np.ndarray:
    """``[N, C]`` float32 labels under the convention above: blank → 0, uncertain (-1) → NaN."""
    raw = frame.select(list(classes)).to_numpy().astype(np.float32)
    raw = np.where(np.isnan(raw), 0.0, raw)
    return np.where(raw == -1, np.nan, raw).astype(np.float32)


def comparable_rows(labels: np.ndarray) -> np.ndarray:
    """Labels whose rows can be compared with ``==``: NaN (uncertain) becomes its own code."""
    return np.nan_to_num(labels, nan=UNCERTAIN_CODE)


def multiclass_targets(labels: torch.Tensor | np.ndarray) -> torch.Tensor:
    """The index of each row's one positive; a row without exactly one positive is refused.

    ``argmax`` over the raw labels would let a NaN win (torch ranks NaN above every number).
    """
    positive = torch.as_tensor(labels) == 1
    bad = int((positive.sum(dim=1) != 1).sum())
    if bad:
        raise UsageError(
            f"{bad} of {positive.shape[0]} rows do not have exactly one positive label",
            "use --task multilabel, or a single-positive set such as a 5x200 subset",
        )
    return positive.long().argmax(dim=1)


def bootstrap_units(frame: pl.DataFrame, unit: str = "auto") -> tuple[np.ndarray | None, str]:
    """Cluster ids for the bootstrap (None: resample images) and the unit's name.

    ``auto`` picks patient, else study, else image, by which id columns hold any value.
    """
    if unit not in UNITS:
        raise UsageError(f"--bootstrap-unit {unit} is not a unit", f"use one of: {', '.join(UNITS)}")
    if unit == "image":
        return None, "image"
    candidates = [unit] if unit != "auto" else ["patient", "study"]
    for name in candidates:
        column = UNIT_COLUMNS[name]
        if column in frame.columns and frame[column].null_count() < frame.height:
            values = frame[column].cast(pl.String).to_list()
            # A blank id is its own unit: it cannot be tied to any other row.
            keyed = [f"id:{v}" if v is not None else f"row:{i}" for i, v in enumerate(values)]
            return np.unique(keyed, return_inverse=True)[1].reshape(-1), name
    if unit != "auto":
        raise UsageError(
            f"--bootstrap-unit {unit} needs a '{UNIT_COLUMNS[unit]}' column with values in the manifest",
            "use --bootstrap-unit auto or image",
        )
    return None, "image"


def bootstrap_record(resamples: int, seed: int, unit: str) -> dict[str, Any]:
    """How the intervals in ``ci95`` were drawn, for ``metrics.json``: resamples, seed, resampled unit."""
    return {"resamples": resamples, "seed": seed, "unit": unit, "level": 0.95}
