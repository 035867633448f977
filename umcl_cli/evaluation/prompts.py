"""Hand-written prompt ensembles and the other prompt sources zero-shot can use.

Ensembles follow the GLoRIA/MedCLIP idea of several phrasings (severity, location, synonym) per
finding inside a few sentence templates; each class's text embedding is the normalised mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from umcl_cli.errors import UsageError

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

PHRASES: dict[str, tuple[str, ...]] = {
    "No Finding": ("no acute cardiopulmonary process", "normal chest radiograph", "the lungs are clear"),
    "Enlarged Cardiomediastinum": ("enlarged cardiomediastinum", "widened mediastinum", "mediastinal widening"),
    "Cardiomegaly": ("cardiomegaly", "mild cardiomegaly", "moderate cardiomegaly", "enlarged cardiac silhouette"),
    "Lung Opacity": ("lung opacity", "airspace opacity", "patchy opacity", "opacities in the lung"),
    "Lung Lesion": ("lung lesion", "pulmonary nodule", "lung mass"),
    "Edema": ("pulmonary edema", "mild pulmonary edema", "interstitial edema", "vascular congestion and edema"),
    "Consolidation": ("consolidation", "focal consolidation", "lobar consolidation", "airspace consolidation"),
    "Pneumonia": ("pneumonia", "multifocal pneumonia", "infectious process"),
    "Atelectasis": ("atelectasis", "bibasilar atelectasis", "subsegmental atelectasis", "plate-like atelectasis"),
    "Pneumothorax": ("pneumothorax", "small pneumothorax", "apical pneumothorax"),
    "Pleural Effusion": (
        "pleural effusion",
        "small pleural effusion",
        "left pleural effusion",
        "right pleural effusion",
    ),
    "Pleural Other": ("pleural thickening", "pleural abnormality"),
    "Fracture": ("fracture", "rib fracture"),
    "Support Devices": ("support devices", "endotracheal tube", "central venous catheter", "pacemaker"),
    "Pleural Thickening": ("pleural thickening",),
    "COVID-19": ("covid-19 pneumonia", "bilateral peripheral opacities"),
}


def class_prompts(name: str) -> list[str]:
    phrases = PHRASES.get(name, (name.lower(),))
    return [t.format(p) for t in TEMPLATES for p in phrases]


def negative_prompts(name: str) -> list[str]:
    phrases = PHRASES.get(name, (name.lower(),))
    if name == "No Finding":  # "no no finding" means nothing; an abnormal study is its negative
        return ["acute cardiopulmonary abnormality", "abnormal chest radiograph"]
    return [t.format(p) for t in NEGATIVE_TEMPLATES for p in phrases]


def load_prompt_file(path: Path, classes: Sequence[str]) -> dict[str, dict[str, list[str]]]:
    """User YAML: ``{class: [positive prompts]}`` or ``{class: {positive: [...], negative: [...]}}``."""
    try:
        tree = yaml.safe_load(Path(path).read_text())
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
