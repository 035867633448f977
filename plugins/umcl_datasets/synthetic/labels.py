"""Sampling CheXpert-style label vectors with realistic prevalence, co-occurrence and attributes.

Findings are drawn in a fixed causal order: each has a base log-odds, a loading on a shared latent
"how sick is this patient" factor, and log-odds boosts from findings drawn before it (edema from
cardiomegaly, pneumonia from consolidation, ...). Base log-odds were calibrated so the marginal
prevalence of each finding (positive or uncertain) matches the targets in the comments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np

from umcl_cli.contracts import CHEXPERT_CLASSES

CLASS_INDEX: dict[str, int] = {name: i for i, name in enumerate(CHEXPERT_CLASSES)}

# Side codes (the patient's side, as radiology reports name it; patient right is image left).
NO_SIDE, RIGHT, LEFT, BILATERAL = 0, 1, 2, 3
# Zone codes for parenchymal findings.
LOWER, UPPER = 0, 1
# Support-device bits.
ET_TUBE, ENTERIC_TUBE, RIGHT_LINE, LEFT_LINE, PACEMAKER, CHEST_TUBE = 1, 2, 4, 8, 16, 32

# (class, base log-odds, latent loading, {parent: log-odds boost}); parents come first.
_MODEL: tuple[tuple[str, float, float, dict[str, float]], ...] = (
    ("Support Devices", -1.28, 0.9, {}),  # 25%
    ("Fracture", -3.50, 0.2, {}),  # 3%
    ("Cardiomegaly", -2.08, 0.5, {}),  # 12%
    ("Enlarged Cardiomediastinum", -3.33, 0.3, {"Cardiomegaly": 1.5}),  # 5%
    ("Edema", -2.53, 0.8, {"Cardiomegaly": 1.5}),  # 12%
    ("Pleural Effusion", -1.60, 0.8, {"Edema": 1.5, "Cardiomegaly": 0.8}),  # 25%
    ("Consolidation", -2.89, 0.6, {}),  # 6%
    ("Pneumonia", -3.75, 0.4, {"Consolidation": 2.5}),  # 4%
    ("Atelectasis", -2.28, 0.5, {"Pleural Effusion": 1.2}),  # 15%
    ("Lung Lesion", -3.19, 0.1, {}),  # 4%
    (
        "Lung Opacity",
        -1.86,
        0.5,
        {"Consolidation": 2.0, "Pneumonia": 2.0, "Edema": 1.5, "Atelectasis": 1.0, "Lung Lesion": 0.7},
    ),  # 25%
    ("Pneumothorax", -2.99, 0.4, {"Support Devices": 1.0, "Fracture": 1.5}),  # 8%
    ("Pleural Other", -3.89, 0.1, {}),  # 2%
)

# Chance that a report explicitly negates an absent finding (0) rather than not mentioning it (null).
_NEGATION_RATE: dict[str, float] = {
    "Enlarged Cardiomediastinum": 0.15,
    "Cardiomegaly": 0.35,
    "Lung Opacity": 0.15,
    "Lung Lesion": 0.10,
    "Edema": 0.30,
    "Consolidation": 0.35,
    "Pneumonia": 0.20,
    "Atelectasis": 0.10,
    "Pneumothorax": 0.55,
    "Pleural Effusion": 0.55,
    "Pleural Other": 0.05,
    "Fracture": 0.15,
    "Support Devices": 0.05,
}
UNCERTAIN_RATE = 0.10
# Findings a radiologist does not hedge on.
_NEVER_UNCERTAIN = frozenset({"Support Devices"})

# Which side a lateralised finding is on: P(right), P(left), P(bilateral).
_SIDE_PROBS: dict[str, tuple[float, float, float]] = {
    "Lung Opacity": (0.40, 0.35, 0.25),
    "Lung Lesion": (0.5, 0.5, 0.0),
    "Consolidation": (0.45, 0.40, 0.15),
    "Pneumonia": (0.45, 0.40, 0.15),
    "Atelectasis": (0.30, 0.35, 0.35),
    "Pneumothorax": (0.48, 0.48, 0.04),
    "Pleural Effusion": (0.35, 0.30, 0.35),
    "Pleural Other": (0.4, 0.4, 0.2),
    "Fracture": (0.5, 0.5, 0.0),
}
_ZONED = ("Lung Opacity", "Lung Lesion", "Consolidation", "Pneumonia")


@dataclass(frozen=True)
class Findings:
    """Per-row labels (N, 14; NaN = not mentioned) plus the attributes images and reports draw.

    ``side``, ``severity`` (0..2) and ``zone`` are (N, 14) int8 and meaningful only where the
    label is 1 or -1; ``devices`` is an (N,) bit mask of support devices.
    """

    labels: np.ndarray
    side: np.ndarray
    severity: np.ndarray
    zone: np.ndarray
    devices: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray | slice) -> Findings:
        return Findings(
            self.labels[index], self.side[index], self.severity[index], self.zone[index], self.devices[index]
        )

    @staticmethod
    def concat(parts: Sequence[Findings]) -> Findings:
        return Findings(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Findings)))


def sample_labels(n: int, rng: np.random.Generator, clamp: Mapping[str, float] | None = None) -> np.ndarray:
    """(n, 14) float32 labels: 1 / 0 / -1 / NaN. ``clamp`` fixes classes to 0 or 1 for every row.

    Clamped classes still drive the findings that depend on them, so e.g. clamping Consolidation
    to 1 raises the rate of Pneumonia and Lung Opacity as it would in real data.
    """
    clamp = dict(clamp or {})
    present = np.zeros((n, len(CHEXPERT_CLASSES)), dtype=bool)
    sickness = rng.standard_normal(n)
    draws = rng.random((n, len(_MODEL)))
    for j, (name, base, loading, parents) in enumerate(_MODEL):
        col = CLASS_INDEX[name]
        if name in clamp:
            present[:, col] = bool(clamp[name])
            continue
        logit = base + loading * sickness
        for parent, boost in parents.items():
            logit = logit + boost * present[:, CLASS_INDEX[parent]]
        present[:, col] = draws[:, j] < 1.0 / (1.0 + np.exp(-logit))

    labels = np.full(present.shape, np.nan, dtype=np.float32)
    labels[present] = 1.0
    mention = rng.random(present.shape)
    hedge = rng.random(present.shape)
    for name, rate in _NEGATION_RATE.items():
        col = CLASS_INDEX[name]
        labels[~present[:, col] & (mention[:, col] < rate), col] = 0.0
        if name not in _NEVER_UNCERTAIN and name not in clamp:
            labels[present[:, col] & (hedge[:, col] < UNCERTAIN_RATE), col] = -1.0
    return _with_no_finding(labels)


def _with_no_finding(labels: np.ndarray) -> np.ndarray:
    # No Finding is 1 exactly when no other finding is positive or uncertain, else 0 (always stated).
    others = np.delete(labels, CLASS_INDEX["No Finding"], axis=1)
    labels[:, CLASS_INDEX["No Finding"]] = np.where(np.any((others == 1) | (others == -1), axis=1), 0.0, 1.0)
    return labels


def sample_label_sets(n: int, rng: np.random.Generator, label_sets: int) -> np.ndarray:
    """(n, 14) labels restricted to ``label_sets`` distinct vectors drawn once from the realistic sampler.

    Rows pick one of the vectors uniformly, so there are few distinct label keys (hard data for the
    image-text-label loss, which treats rows with identical label vectors as positives).
    """
    distinct: dict[bytes, np.ndarray] = {}
    while len(distinct) < label_sets:
        for row in sample_labels(max(4 * label_sets, 256), rng):
            distinct.setdefault(np.nan_to_num(row, nan=9.0).tobytes(), row)
            if len(distinct) == label_sets:
                break
    vectors = np.stack(list(distinct.values()))
    return vectors[rng.integers(0, label_sets, size=n)]


def sample_attributes(labels: np.ndarray, rng: np.random.Generator) -> Findings:
    """Side, severity, zone and devices for each finding present (1) or uncertain (-1) in ``labels``."""
    n, k = labels.shape
    found = (labels == 1) | (labels == -1)
    side = np.zeros((n, k), dtype=np.int8)
    for name, probs in _SIDE_PROBS.items():
        side[:, CLASS_INDEX[name]] = rng.choice([RIGHT, LEFT, BILATERAL], size=n, p=probs)
    side[:, CLASS_INDEX["Edema"]] = BILATERAL
    zone = np.zeros((n, k), dtype=np.int8)
    for name in _ZONED:
        zone[:, CLASS_INDEX[name]] = np.where(rng.random(n) < 0.3, UPPER, LOWER)
    # Related findings share a location: pneumonia sits in the consolidation, opacity in its cause.
    for child, parents in (
        ("Pneumonia", ("Consolidation",)),
        ("Atelectasis", ("Pleural Effusion",)),
        ("Lung Opacity", ("Consolidation", "Pneumonia", "Atelectasis", "Lung Lesion")),
    ):
        c = CLASS_INDEX[child]
        for parent in reversed(parents):
            p = CLASS_INDEX[parent]
            take = found[:, p] & (rng.random(n) < 0.8)
            side[take, c] = side[take, p]
            zone[take, c] = zone[take, p]
    # Severity: mostly mild/small; uncertain findings are always the mildest grade (drawn faint).
    severity = rng.choice(np.array([0, 1, 2], dtype=np.int8), size=(n, k), p=[0.5, 0.33, 0.17])
    severity[labels == -1] = 0
    side[~found] = NO_SIDE
    severity[~found] = 0
    zone[~found] = LOWER
    return Findings(labels, side, severity, zone, _sample_devices(labels, side, rng))


def _sample_devices(labels: np.ndarray, side: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = len(labels)
    has = labels[:, CLASS_INDEX["Support Devices"]] == 1
    u = rng.random((n, 5))
    devices = np.zeros(n, dtype=np.uint8)
    devices |= np.where(u[:, 0] < 0.35, ET_TUBE, 0).astype(np.uint8)
    devices |= np.where(u[:, 1] < 0.40, ENTERIC_TUBE, 0).astype(np.uint8)
    # Central venous lines, from the right subclavian vein more often than the left.
    devices |= np.where(u[:, 2] < 0.45, np.where(u[:, 4] < 0.7, RIGHT_LINE, LEFT_LINE), 0).astype(np.uint8)
    devices |= np.where(u[:, 3] < 0.20, PACEMAKER, 0).astype(np.uint8)
    # A pneumothorax in a patient with devices is usually drained.
    ptx = (labels[:, CLASS_INDEX["Pneumothorax"]] == 1) & (side[:, CLASS_INDEX["Pneumothorax"]] != BILATERAL)
    devices |= np.where(ptx & (rng.random(n) < 0.6), CHEST_TUBE, 0).astype(np.uint8)
    # Every row with Support Devices has at least one device; no row without it has any.
    devices = np.where(has & (devices == 0), RIGHT_LINE, devices).astype(np.uint8)
    return np.where(has, devices, 0).astype(np.uint8)


def sample_findings(
    n: int, rng: np.random.Generator, label_sets: int | None = None, clamp: Mapping[str, float] | None = None
) -> Findings:
    """Labels plus attributes for ``n`` rows (see ``sample_labels`` and ``sample_label_sets``)."""
    labels = sample_labels(n, rng, clamp) if label_sets is None else sample_label_sets(n, rng, label_sets)
    return sample_attributes(labels, rng)
