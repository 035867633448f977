"""Prompt sensitivity: the same zero-shot protocol under many prompt styles, and the spread between them.

A *style* turns a class into one positive and one negative prompt: a sentence template for each, and
the class's wording (its name, lower-cased, or a lay synonym such as "enlarged heart"). Medical
zero-shot is known to swing with such choices; the spread (max − min and population std over styles)
says how much a reported number owes to the prompt, and the learned prompts (or any ``--prompts``
source) are placed in that distribution.

User styles: a YAML mapping ``{style: {positive: "template with {}", negative: "template with {}",
wording: name | synonym}}`` (``negative`` and ``wording`` optional), or ``{style: {CLASS: {positive:
[...], negative: [...]}}}`` listing the prompts of every class.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from umcl_cli.errors import UsageError
from umcl_cli.evaluation.prompt_sources import ClassTexts, from_text_prompts
from umcl_cli.model.dual_encoder import DualEncoder
from umcl_cli.safe_yaml import load_bounded

# Lay or alternative wordings, written for umcl; a class without one keeps its name.
SYNONYMS: dict[str, str] = {
    "No Finding": "a normal chest",
    "Enlarged Cardiomediastinum": "widened mediastinum",
    "Cardiomegaly": "enlarged heart",
    "Lung Opacity": "hazy lung opacity",
    "Lung Lesion": "lung nodule or mass",
    "Edema": "fluid in the lungs",
    "Consolidation": "airspace filling",
    "Pneumonia": "lung infection",
    "Atelectasis": "collapsed lung tissue",
    "Pneumothorax": "air around the lung",
    "Pleural Effusion": "fluid around the lung",
    "Pleural Other": "pleural thickening",
    "Fracture": "broken bone",
    "Support Devices": "tubes and lines",
}
# "no no finding" means nothing: the negative of a normal study is an abnormal one.
NO_FINDING_NEGATIVE = "acute cardiopulmonary abnormality"


@dataclass(frozen=True)
class Style:
    name: str
    positive: str
    negative: str = "no {}"
    wording: str = "name"


BUILTIN_STYLES: tuple[Style, ...] = (
    Style("plain", "{}", "no {}"),
    Style("chest x-ray", "a chest x-ray showing {}", "a chest x-ray showing no {}"),
    Style("findings", "findings consistent with {}", "no evidence of {}"),
    Style("there is", "there is {}", "there is no {}"),
    Style("impression", "impression: {}.", "impression: no {}."),
    Style("present / absent", "{} is present", "{} is absent"),
    Style("negative for", "positive for {}", "negative for {}"),
    Style("without", "with {}", "without {}"),
    Style("possible", "possible {}", "no {}"),
    Style("severe", "severe {}", "no {}"),
    Style("synonym", "{}", "no {}", "synonym"),
    Style("synonym, chest x-ray", "a chest x-ray showing {}", "a chest x-ray showing no {}", "synonym"),
)


def wording(name: str, kind: str) -> str:
    return SYNONYMS.get(name, name).lower() if kind == "synonym" else name.lower()


def style_table(style: Style, classes: Sequence[str]) -> dict[str, dict[str, list[str]]]:
    """``{class: {positive: [prompt], negative: [prompt]}}`` of one style."""
    table = {}
    for c in classes:
        negative = (
            style.positive.format(NO_FINDING_NEGATIVE)
            if c == "No Finding"
            else style.negative.format(wording(c, style.wording))
        )
        table[c] = {"positive": [style.positive.format(wording(c, style.wording))], "negative": [negative]}
    return table


def _template(value: Any, where: str) -> str:
    if not isinstance(value, str) or value.count("{}") != 1:
        raise UsageError(f"{where} must be a string with exactly one {{}}", "write e.g. 'a chest x-ray showing {}'")
    return value


def load_styles(path: Path, classes: Sequence[str]) -> dict[str, dict[str, dict[str, list[str]]]]:
    """Styles from a user YAML file (see the module doc), as per-class prompt tables."""
    try:
        tree = load_bounded(Path(path).read_text(), f"styles file {path}")  # no alias bombs
    except yaml.YAMLError as exc:
        raise UsageError(f"styles file {path} is not valid YAML", "fix its syntax") from exc
    if not isinstance(tree, dict) or not tree:
        raise UsageError(f"styles file {path} must map style names to styles", "see README: prompt sensitivity")
    out = {}
    for name, spec in tree.items():
        if not isinstance(spec, dict):
            raise UsageError(f"styles file {path}: style '{name}' is not a mapping", "see README: prompt sensitivity")
        if "positive" in spec and isinstance(spec["positive"], str):
            kind = spec.get("wording", "name")
            if kind not in ("name", "synonym"):
                raise UsageError(f"styles file {path}: '{name}' wording {kind!r}", "use wording: name or synonym")
            style = Style(
                str(name),
                _template(spec["positive"], f"styles file {path}: '{name}' positive"),
                _template(spec.get("negative", "no {}"), f"styles file {path}: '{name}' negative"),
                kind,
            )
            out[str(name)] = style_table(style, classes)
            continue
        missing = [c for c in classes if c not in spec]
        if missing:
            raise UsageError(f"styles file {path}: style '{name}' has no prompts for {missing}", "add every class")
        table = {}
        for c in classes:
            entry = spec[c]
            if not isinstance(entry, dict) or not entry.get("positive"):
                raise UsageError(f"styles file {path}: '{name}' / '{c}' needs a 'positive' list", "see README")
            table[c] = {
                "positive": [str(p) for p in entry["positive"]],
                "negative": [str(p) for p in entry.get("negative", [f"no {c.lower()}"])],
            }
        out[str(name)] = table
    return out


def spread(per_style: dict[str, dict[str, float | None]]) -> dict[str, dict[str, Any]]:
    """Per metric: min, max, range (max − min), population std and the best and worst style."""
    out = {}
    for key in next(iter(per_style.values())):
        values = {s: m[key] for s, m in per_style.items() if m.get(key) is not None}
        if not values:
            out[key] = {"min": None, "max": None, "range": None, "std": None, "best": None, "worst": None}
            continue
        numbers = np.array(list(values.values()))
        out[key] = {
            "min": float(numbers.min()),
            "max": float(numbers.max()),
            "range": float(numbers.max() - numbers.min()),
            "std": float(numbers.std()),
            "best": max(values, key=values.get),
            "worst": min(values, key=values.get),
        }
    return out


def standing(value: float | None, per_style: Sequence[float | None]) -> dict[str, Any]:
    """Where ``value`` stands among the style values: styles it beats, and that as a share."""
    kept = [v for v in per_style if v is not None]
    if value is None or not kept:
        return {"value": value, "beats": None, "of": len(kept), "percentile": None}
    beats = sum(v < value for v in kept)
    return {"value": value, "beats": beats, "of": len(kept), "percentile": beats / len(kept)}


def run_styles(
    model: DualEncoder,
    tables: dict[str, dict[str, dict[str, list[str]]]],
    score: Callable[[ClassTexts], dict[str, float | None]],
) -> dict[str, dict[str, float | None]]:
    """Headline metrics of every style (``score`` maps class embeddings to metrics)."""
    with torch.no_grad():
        return {name: score(from_text_prompts(model, table, f"style:{name}")) for name, table in tables.items()}
