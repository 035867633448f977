"""Label vocabularies and the uncertain-label policy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from umcl_cli.data.manifest import CANONICAL_CLASSES
from umcl_cli.errors import UsageError


def class_phrase(classes: Sequence[str]) -> str:
    """The words a label set contributes to a prompt: lower-case class names, or "no finding"."""
    return ", ".join(c.lower() for c in classes) if classes else "no finding"


def check_canonical(dataset: str, classes: Sequence[str]) -> None:
    unknown = [c for c in classes if c not in CANONICAL_CLASSES]
    if unknown:
        raise UsageError(
            f"dataset {dataset}: class names {unknown} cannot be mapped to umcl's canonical vocabulary",
            f"rename them in the manifest to canonical names ({', '.join(CANONICAL_CLASSES)})",
        )


def union_classes(class_lists: Sequence[Sequence[str]]) -> list[str]:
    """Union of vocabularies in canonical order, so mixed-source label vectors line up."""
    present = {c for classes in class_lists for c in classes}
    return [c for c in CANONICAL_CLASSES if c in present]


def apply_policy(raw: np.ndarray, classes: Sequence[str], policy: str | Mapping[str, int | str]) -> np.ndarray:
    """Raw 1/0/-1/NaN labels → training labels: blank → 0, uncertain per policy (NaN = ignored).

    ``policy`` is ``ones``, ``zeros``, ``ignore`` or a per-class map (GLoRIA's style) whose
    unmapped classes are ignored.
    """
    out = np.nan_to_num(raw.astype(np.float32), nan=0.0)
    uncertain = raw == -1
    for j, name in enumerate(classes):
        rule = policy if isinstance(policy, str) else policy.get(name, "ignore")
        value = {"ones": 1.0, "zeros": 0.0, 1: 1.0, 0: 0.0}.get(rule, np.nan)
        out[uncertain[:, j], j] = value
    return out
