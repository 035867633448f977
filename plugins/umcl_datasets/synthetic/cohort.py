"""Patients and their studies: who each row belongs to, which split it is in, and its view."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_MAX_STUDIES = 4


@dataclass(frozen=True)
class Cohort:
    """Row-aligned subject index, study number within the subject, and split name."""

    subject: np.ndarray
    study: np.ndarray
    split: np.ndarray
    n_subjects: int


def make_cohort(n: int, rng: np.random.Generator, validate_fraction: float, test_fraction: float) -> Cohort:
    """``n`` rows from patients with 1-4 studies each, split by patient so no one crosses splits.

    Whole patients go to test, then validate, until each holds its fraction of rows; the rest train.
    """
    studies = np.minimum(rng.geometric(0.55, size=n), _MAX_STUDIES)
    n_subjects = int(np.searchsorted(np.cumsum(studies), n)) + 1
    studies = studies[:n_subjects]
    studies[-1] -= int(studies.sum()) - n
    subject = np.repeat(np.arange(n_subjects), studies)
    study = np.concatenate([np.arange(k) for k in studies])

    order = rng.permutation(n_subjects)
    rows_before = np.cumsum(studies[order]) - studies[order]
    test_end, validate_end = round(test_fraction * n), round((test_fraction + validate_fraction) * n)
    subject_split = np.empty(n_subjects, dtype=object)
    subject_split[order] = np.where(
        rows_before < test_end, "test", np.where(rows_before < validate_end, "validate", "train")
    )
    return Cohort(subject, study, subject_split[subject].astype(str), n_subjects)


def sample_views(devices: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """PA or AP per row: patients with lines and tubes are mostly imaged portable (AP)."""
    ap = rng.random(len(devices)) < np.where(devices > 0, 0.75, 0.3)
    return np.where(ap, "AP", "PA")
