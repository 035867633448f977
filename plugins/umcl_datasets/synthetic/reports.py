"""Radiology-style reports (``FINDINGS: ...`` / ``IMPRESSION: ...``) written from sampled findings.

Each report states every positive finding (with side and severity), hedges every uncertain one,
negates the findings labelled 0 and says nothing about those not mentioned (null), so labels and
text agree the way a report labeller would read them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from .labels import (
    BILATERAL,
    CHEST_TUBE,
    CLASS_INDEX,
    ENTERIC_TUBE,
    ET_TUBE,
    LEFT_LINE,
    LOWER,
    NO_SIDE,
    PACEMAKER,
    RIGHT,
    RIGHT_LINE,
    Findings,
)

# Noun phrases the generator names positive and uncertain findings with (severity and side words go
# in front); negations are whole sentences of their own (``_NEGATIONS``).
TRAINING_PHRASES: dict[str, list[str]] = {
    "Enlarged Cardiomediastinum": [
        "enlargement of the cardiomediastinal silhouette",
        "mediastinal widening",
        "widening of the mediastinum",
        "prominence of the cardiomediastinal contour",
    ],
    "Cardiomegaly": [
        "cardiomegaly",
        "enlargement of the cardiac silhouette",
        "cardiac enlargement",
    ],
    "Lung Opacity": ["opacity", "airspace opacity", "patchy opacity", "hazy opacity", "opacification"],
    "Lung Lesion": ["pulmonary nodule", "nodule", "lung nodule", "rounded density", "lung lesion"],
    "Edema": [
        "pulmonary edema",
        "interstitial edema",
        "pulmonary vascular congestion",
        "interstitial pulmonary edema",
    ],
    "Consolidation": ["consolidation", "airspace consolidation", "lobar consolidation"],
    "Pneumonia": ["pneumonia", "bronchopneumonia", "infectious process"],
    "Atelectasis": [
        "atelectasis",
        "subsegmental atelectasis",
        "plate-like atelectasis",
        "atelectatic change",
    ],
    "Pneumothorax": ["pneumothorax", "apical pneumothorax"],
    "Pleural Effusion": ["pleural effusion", "effusion", "layering pleural effusion"],
    "Pleural Other": ["pleural thickening", "pleural scarring", "pleural-based thickening"],
    "Fracture": ["rib fracture", "lateral rib fracture", "rib fracture deformity"],
    "Support Devices": [
        "support devices",
        "lines and tubes",
        "endotracheal tube",
        "ET tube",
        "enteric tube",
        "nasogastric tube",
        "NG tube",
        "central venous catheter",
        "central line",
        "pacemaker",
        "chest tube",
    ],
}

# Synonyms the generator never writes, for evaluating zero-shot transfer to unseen phrasings.
HELD_OUT_PHRASES: dict[str, list[str]] = {
    "Atelectasis": ["collapse of the lung", "lung collapse", "airless lung tissue"],
    "Cardiomegaly": ["enlarged heart", "heart enlargement", "big heart"],
    "Consolidation": ["airspace filling", "solidification of the lung parenchyma", "dense alveolar filling"],
    "Edema": ["fluid overload in the lungs", "water in the lungs", "congested lungs"],
    "Pleural Effusion": ["fluid in the pleural space", "fluid around the lung", "pleural fluid collection"],
}

# Words that mark a finding as uncertain; every uncertain finding is written with one of them.
HEDGES: tuple[str, ...] = (
    "possible",
    "cannot exclude",
    "not excluded",
    "cannot be excluded",
    "questionable",
    "may represent",
    "suspicious for",
    "probable",
)

_SEVERITY: dict[str, tuple[str, str, str]] = {
    "Enlarged Cardiomediastinum": ("mild", "moderate", "marked"),
    "Cardiomegaly": ("mild", "moderate", "severe"),
    "Lung Opacity": ("faint", "moderate", "dense"),
    "Lung Lesion": ("small", "moderate-sized", "large"),
    "Edema": ("mild", "moderate", "severe"),
    "Consolidation": ("focal", "moderate", "extensive"),
    "Pneumonia": ("mild", "moderate", "extensive"),
    "Atelectasis": ("mild", "moderate", "severe"),
    "Pneumothorax": ("small", "moderate", "large"),
    "Pleural Effusion": ("small", "moderate", "large"),
    "Pleural Other": ("mild", "moderate", "marked"),
    "Fracture": ("nondisplaced", "minimally displaced", "displaced"),
}

# Findings section order: lungs, pleura, heart and mediastinum, bones.
_ORDER: tuple[str, ...] = (
    "Lung Opacity",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Edema",
    "Lung Lesion",
    "Pleural Effusion",
    "Pneumothorax",
    "Pleural Other",
    "Cardiomegaly",
    "Enlarged Cardiomediastinum",
    "Fracture",
)
_LOBAR = frozenset({"Lung Opacity", "Consolidation", "Pneumonia", "Lung Lesion", "Atelectasis"})
_COUNTABLE = frozenset({"Lung Opacity", "Lung Lesion", "Pneumothorax", "Pleural Effusion", "Fracture"})
_LUNG_OR_PLEURA = frozenset(_ORDER[:9])

_POSITIVE = (
    "{Mod} {phrase}.",
    "There is {a}{mod} {phrase}.",
    "{Mod} {phrase} is present.",
    "{Mod} {phrase} is noted.",
    "{Mod} {phrase} is again seen.",
    "Findings consistent with {mod} {phrase}.",
)
_POSITIVE_LOCATED = (
    "{Sev} {phrase} {loc}.",
    "There is {a}{sev} {phrase} {loc}.",
    "{Sev} {phrase} is seen {loc}.",
)
_UNCERTAIN = (
    "Possible {mod} {phrase}.",
    "Cannot exclude {mod} {phrase}.",
    "{Mod} {phrase} is not excluded.",
    "Questionable {mod} {phrase}.",
    "Findings may represent {mod} {phrase}.",
    "Findings suspicious for {mod} {phrase}.",
    "Probable {mod} {phrase}.",
)
_UNCERTAIN_IMPRESSION = ("Possible {mod} {phrase}.", "{Mod} {phrase} cannot be excluded.")

_NEGATIONS: dict[str, tuple[str, ...]] = {
    "Enlarged Cardiomediastinum": (
        "The cardiomediastinal silhouette is normal.",
        "Mediastinal contours are within normal limits.",
        "No mediastinal widening.",
    ),
    "Cardiomegaly": (
        "Heart size is normal.",
        "The cardiac silhouette is normal in size.",
        "No cardiomegaly.",
        "Normal heart size.",
    ),
    "Lung Opacity": ("No focal opacity.", "No airspace opacity."),
    "Lung Lesion": ("No pulmonary nodules or masses.", "No suspicious pulmonary nodule."),
    "Edema": ("No pulmonary edema.", "No evidence of edema.", "No vascular congestion."),
    "Consolidation": ("No focal consolidation.", "No consolidation."),
    "Pneumonia": ("No evidence of pneumonia.", "No pneumonia."),
    "Atelectasis": ("No atelectasis.",),
    "Pneumothorax": ("No pneumothorax.", "There is no pneumothorax.", "No evidence of pneumothorax."),
    "Pleural Effusion": ("No pleural effusion.", "No pleural effusions.", "There is no pleural effusion."),
    "Pleural Other": ("No pleural thickening.",),
    "Fracture": ("No acute fracture.", "No displaced rib fracture.", "No acute osseous abnormality."),
    "Support Devices": ("No lines or tubes.", "No support devices."),
}
# Short nouns for merged negations ("No pleural effusion, pneumothorax, or focal consolidation.").
_NEGATION_NOUNS: dict[str, str] = {
    "Pleural Effusion": "pleural effusion",
    "Pneumothorax": "pneumothorax",
    "Consolidation": "focal consolidation",
    "Edema": "pulmonary edema",
    "Pneumonia": "pneumonia",
    "Lung Opacity": "focal opacity",
    "Atelectasis": "atelectasis",
    "Lung Lesion": "suspicious nodule",
    "Pleural Other": "pleural thickening",
}
_NORMAL_LUNGS = (
    "The lungs are clear.",
    "Lungs are well expanded and clear.",
    "The lungs are clear bilaterally.",
)
_NORMAL_IMPRESSION = (
    "No acute cardiopulmonary process.",
    "No acute cardiopulmonary abnormality.",
    "Normal chest radiograph.",
    "No acute intrathoracic abnormality.",
)
_DEVICES_IMPRESSION = (
    "Support devices in place.",
    "Lines and tubes as described.",
    "Medical devices as above.",
)


_DEVICES: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        ET_TUBE,
        (
            "Endotracheal tube terminates {cm} cm above the carina.",
            "An endotracheal tube is in standard position.",
            "ET tube in appropriate position.",
        ),
    ),
    (
        ENTERIC_TUBE,
        (
            "Enteric tube courses below the diaphragm.",
            "A nasogastric tube terminates in the stomach.",
            "NG tube tip is in the stomach.",
        ),
    ),
    (
        RIGHT_LINE,
        (
            "Right subclavian central venous catheter ends in the superior vena cava.",
            "A right-sided central line terminates in the SVC.",
            "Right central venous catheter tip projects over the cavoatrial junction.",
        ),
    ),
    (
        LEFT_LINE,
        (
            "Left subclavian central venous catheter ends in the superior vena cava.",
            "A left-sided central line terminates in the SVC.",
            "Left central venous catheter tip projects over the cavoatrial junction.",
        ),
    ),
    (
        PACEMAKER,
        (
            "Left chest wall pacemaker with leads in the right atrium and right ventricle.",
            "Dual-chamber pacemaker in place.",
            "A cardiac pacemaker is present with intact leads.",
        ),
    ),
    (CHEST_TUBE, ("{Side} chest tube in place.", "A {side}-sided chest tube is present.")),
)


def write_reports(findings: Findings, rng: np.random.Generator) -> list[str]:
    """One report per row of ``findings``; deterministic for a given ``rng`` state."""
    rnd = random.Random(int(rng.integers(2**63)))
    return [write_report(findings, i, rnd) for i in range(len(findings))]


def write_report(findings: Findings, row: int, rnd: random.Random) -> str:
    """The report for one row: devices, findings in anatomical order, negations, then an impression."""
    labels = findings.labels[row]
    present = [n for n in _ORDER if labels[CLASS_INDEX[n]] == 1]
    uncertain = [n for n in _ORDER if labels[CLASS_INDEX[n]] == -1]
    mentioned = set(present) | set(uncertain)
    # Pathology first, in anatomical order; now and then a radiologist leads with something else.
    stated = [n for n in _ORDER if n in mentioned]
    if len(stated) > 1 and rnd.random() < 0.3:
        rnd.shuffle(stated)

    sentences = _device_sentences(findings, row, rnd)
    sentences += [_mention(findings, row, n, rnd, certain=n in present, impression=False) for n in stated]
    negations = _negations([n for n in _NEGATIONS if labels[CLASS_INDEX[n]] == 0], rnd)
    # Clear lungs are usually said outright, and always when the section would otherwise be empty.
    if not mentioned & _LUNG_OR_PLEURA and (rnd.random() < 0.7 or not sentences + negations):
        sentences.append(rnd.choice(_NORMAL_LUNGS))
    sentences += negations

    impression = [_mention(findings, row, n, rnd, certain=n in present, impression=True) for n in stated[:3]]
    if labels[CLASS_INDEX["Support Devices"]] == 1 and rnd.random() < 0.5:
        impression.append(rnd.choice(_DEVICES_IMPRESSION))
    if not mentioned:
        # "Normal chest radiograph" only where there is truly nothing, devices included.
        normal = _NORMAL_IMPRESSION if labels[CLASS_INDEX["No Finding"]] == 1 else _NORMAL_IMPRESSION[:2]
        impression.append(rnd.choice(normal))
    return f"FINDINGS: {' '.join(sentences)}\nIMPRESSION: {' '.join(impression)}"


def _mention(findings: Findings, row: int, name: str, rnd: random.Random, certain: bool, impression: bool) -> str:
    col = CLASS_INDEX[name]
    side = int(findings.side[row, col])
    lower = findings.zone[row, col] == LOWER
    sev = _SEVERITY[name][findings.severity[row, col]] if rnd.random() < 0.85 else ""
    words = {
        "sev": sev,
        "side": _side_word(name, side, lower, rnd),
        "phrase": rnd.choice(TRAINING_PHRASES[name]),
    }
    loc = _location(name, side, lower, rnd)
    if certain:
        if loc and not impression and rnd.random() < 0.5:
            template = rnd.choice(_POSITIVE_LOCATED)
            return _fill(template, words | {"loc": loc}, countable=name in _COUNTABLE)
        template = rnd.choice(_POSITIVE[:2] if impression else _POSITIVE)
    else:
        template = rnd.choice(_UNCERTAIN_IMPRESSION if impression else _UNCERTAIN)
    return _fill(template, words, countable=name in _COUNTABLE)


def _fill(template: str, words: dict[str, str], countable: bool) -> str:
    """Fill a template: ``mod`` is severity + side, ``a`` the article countable findings take."""
    mod = " ".join(w for w in (words["sev"], words["side"]) if w)
    following = (words["sev"] if "{a}{sev}" in template else mod) or words["phrase"]
    article = ("an " if following[0] in "aeiou" else "a ") if countable else ""
    text = template.format(
        Mod=mod,
        mod=mod,
        Sev=words["sev"],
        sev=words["sev"],
        phrase=words["phrase"],
        a=article,
        loc=words.get("loc", ""),
    )
    text = " ".join(text.split()).replace(" .", ".")  # empty slots leave double spaces
    return text[0].upper() + text[1:]


def _side_word(name: str, side: int, lower: bool, rnd: random.Random) -> str:
    if side == NO_SIDE or (name == "Edema" and rnd.random() < 0.7):
        return ""
    if side == BILATERAL:
        return "bibasilar" if lower and name in _LOBAR and rnd.random() < 0.5 else "bilateral"
    word = "right" if side == RIGHT else "left"
    return word + "-sided" if rnd.random() < 0.2 else word


def _location(name: str, side: int, lower: bool, rnd: random.Random) -> str:
    """A prepositional location for lobar findings ("in the left lower lobe"), or ""."""
    if name not in _LOBAR or side == NO_SIDE:
        return ""
    if side == BILATERAL:
        return rnd.choice(("at both lung bases", "in both lower lobes")) if lower else "in both upper lobes"
    which = "right" if side == RIGHT else "left"
    zone = "lower" if lower else "upper"
    base = "base" if lower else "apex"
    return rnd.choice((f"in the {which} {zone} lobe", f"at the {which} {base}", f"in the {which} {zone} zone"))


def _device_sentences(findings: Findings, row: int, rnd: random.Random) -> list[str]:
    devices = int(findings.devices[row])
    side = "right" if findings.side[row, CLASS_INDEX["Pneumothorax"]] == RIGHT else "left"  # chest tube
    return [
        rnd.choice(options).format(cm=rnd.randint(3, 6), side=side, Side=side.capitalize())
        for bit, options in _DEVICES
        if devices & bit
    ]


def _negations(names: Sequence[str], rnd: random.Random) -> list[str]:
    """Negated findings, some merged into one sentence, the rest in their own words."""
    mergeable = [n for n in names if n in _NEGATION_NOUNS]
    merged: list[str] = []
    if len(mergeable) >= 2 and rnd.random() < 0.5:
        merged = rnd.sample(mergeable, k=min(len(mergeable), rnd.randint(2, 3)))
    out = [rnd.choice(_NEGATIONS[n]) for n in names if n not in merged]
    if merged:
        nouns = [_NEGATION_NOUNS[n] for n in merged]
        listed = f"{nouns[0]} or {nouns[1]}" if len(nouns) == 2 else f"{nouns[0]}, {nouns[1]}, or {nouns[2]}"
        out.insert(rnd.randint(0, len(out)), rnd.choice(("No ", "There is no ")) + listed + ".")
    return out
