"""Hand-written prompt ensembles, and user prompt files, for zero-shot classification.

For the CheXpert competition classes (GLoRIA's and MedCLIP's 5x200 classes) each positive prompt
combines a severity, a subtype and a location phrase, the way GLoRIA and MedCLIP build theirs, inside a
sentence template; a seeded, fixed-size sample of those combinations keeps the ensemble affordable for
large text encoders. Every other class uses its own name inside the templates. A class's text
embedding is the normalised mean of its prompts' embeddings. The phrases below are umcl's own.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

from umcl_cli.errors import UsageError
from umcl_cli.safe_yaml import load_bounded

TEMPLATES: tuple[str, ...] = (
    "{}",
    "a chest x-ray showing {}",
    "findings consistent with {}",
    "there is {}",
)
NEGATIVE_TEMPLATES: tuple[str, ...] = (
    "no {}",
    "a chest x-ray showing no {}",
    "there is no {}",
    "no evidence of {}",
)

# Per class: (severities, subtypes, locations); "" leaves a part out. Subtypes double as the
# phrases negative prompts deny, so they read well after "no".
PHRASE_PARTS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "Atelectasis": (
        ("", "mild", "minimal", "moderate"),
        ("atelectasis", "subsegmental atelectasis", "plate-like atelectasis", "linear atelectasis"),
        ("", "at the left lung base", "at the right lung base", "at both lung bases", "in the lingula"),
    ),
    "Cardiomegaly": (
        ("", "mild", "moderate", "marked"),
        ("cardiomegaly", "cardiac enlargement", "enlargement of the cardiac silhouette"),
        ("",),
    ),
    "Consolidation": (
        ("", "focal", "patchy", "dense"),
        ("consolidation", "airspace consolidation", "consolidative opacity"),
        (
            "",
            "in the right lower lobe",
            "in the left lower lobe",
            "in the right upper lobe",
            "in the right middle lobe",
        ),
    ),
    "Edema": (
        ("", "mild", "moderate", "severe"),
        ("pulmonary edema", "interstitial edema", "perihilar edema", "alveolar edema"),
        ("", "in both lungs"),
    ),
    "Pleural Effusion": (
        ("", "trace", "small", "moderate", "large"),
        ("pleural effusion", "layering pleural effusion", "loculated pleural effusion"),
        ("", "on the left", "on the right", "on both sides"),
    ),
}
# Most positive prompts one class gets; all combinations would be hundreds per class.
MAX_PROMPTS = 40
NO_FINDING_NEGATIVES: tuple[str, ...] = ("acute cardiopulmonary abnormality", "abnormal chest radiograph")


def phrase_combinations(name: str) -> list[str]:
    """Every severity x subtype x location phrase of a class (its lower-cased name if it has no parts)."""
    if name not in PHRASE_PARTS:
        return [name.lower()]
    return [" ".join(w for w in words if w) for words in itertools.product(*PHRASE_PARTS[name])]


def class_prompts(name: str, max_prompts: int = MAX_PROMPTS) -> list[str]:
    """Positive prompts: templates x phrase combinations, a seeded sample of at most ``max_prompts``."""
    prompts = [t.format(p) for t in TEMPLATES for p in phrase_combinations(name)]
    if len(prompts) <= max_prompts:
        return prompts
    keep = np.random.default_rng(0).choice(len(prompts), size=max_prompts, replace=False)
    return [prompts[i] for i in sorted(keep)]


def negative_prompts(name: str) -> list[str]:
    if name == "No Finding":  # "no no finding" means nothing; an abnormal study is its negative
        return list(NO_FINDING_NEGATIVES)
    subtypes = PHRASE_PARTS[name][1] if name in PHRASE_PARTS else (name.lower(),)
    return [t.format(p) for t in NEGATIVE_TEMPLATES for p in subtypes]


def load_prompt_file(path: Path, classes: Sequence[str]) -> dict[str, dict[str, list[str]]]:
    """User YAML: ``{class: [positive prompts]}`` or ``{class: {positive: [...], negative: [...]}}``."""
    try:
        tree = load_bounded(Path(path).read_text(), f"prompts file {path}")  # no alias bombs
    except yaml.YAMLError as exc:
        raise UsageError(f"prompts file {path} is not valid YAML", "fix its syntax") from exc
    if not isinstance(tree, dict):
        raise UsageError(f"prompts file {path} must map class names to prompts", "see README: custom prompts")
    unknown = [k for k in tree if k not in classes]
    if unknown:
        raise UsageError(
            f"prompts file {path} names classes {unknown} that the dataset does not have",
            f"use the dataset's class names: {', '.join(classes)}",
        )
    missing = [c for c in classes if c not in tree]
    if missing:
        raise UsageError(f"prompts file {path} has no prompts for {missing}", "add a list of prompts for every class")
    out = {}
    for name, value in tree.items():
        if isinstance(value, list):
            out[name] = {"positive": [str(v) for v in value], "negative": negative_prompts(name)}
        elif isinstance(value, dict) and "positive" in value:
            out[name] = {
                "positive": [str(v) for v in value["positive"]],
                "negative": [str(v) for v in value.get("negative", negative_prompts(name))],
            }
        else:
            raise UsageError(f"prompts file {path}: '{name}' must be a list or have a 'positive' list", "see README")
    return out
