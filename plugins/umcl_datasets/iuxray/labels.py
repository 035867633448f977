"""IU X-ray MeSH terms → canonical classes.

A term is ``Heading/qualifier/qualifier…`` (``Opacity/lung/base/left/mild``); only the heading names
the finding, so qualifiers are dropped before lookup. ``<automatic>`` terms are lower-case free
text ("atelectases"), hence the plural and lay spellings below. Terms that name no canonical class
(granulomas, degenerative spine, hyperinflation, …) are ignored and counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from umcl_cli.contracts import CANONICAL_CLASSES

HEADING_TO_CLASS: dict[str, str] = {
    "normal": "No Finding",
    "cardiomegaly": "Cardiomegaly",
    "opacity": "Lung Opacity",
    "airspace disease": "Lung Opacity",
    "pulmonary edema": "Edema",
    "edema": "Edema",
    "consolidation": "Consolidation",
    "pneumonia": "Pneumonia",
    "pulmonary atelectasis": "Atelectasis",
    "atelectasis": "Atelectasis",
    "atelectases": "Atelectasis",
    "pneumothorax": "Pneumothorax",
    "pleural effusion": "Pleural Effusion",
    "pleural effusions": "Pleural Effusion",
    "fractures, bone": "Fracture",
    "fracture": "Fracture",
    "fractures": "Fracture",
    "catheters, indwelling": "Support Devices",
    "tube, inserted": "Support Devices",
    "pacemaker, artificial": "Support Devices",
    "medical device": "Support Devices",
    "implanted medical device": "Support Devices",
    "infiltrate": "Infiltration",
    "infiltration": "Infiltration",
    "mass": "Mass",
    "nodule": "Nodule",
    "pulmonary nodule": "Nodule",
    "pulmonary emphysema": "Emphysema",
    "emphysema": "Emphysema",
    "pulmonary fibrosis": "Fibrosis",
    "fibrosis": "Fibrosis",
    "pleural thickening": "Pleural Thickening",
    "hernia, hiatal": "Hernia",
    "hernia, diaphragmatic": "Hernia",
    "hernia": "Hernia",
}
# Every class the mapping can produce, in canonical order, so the manifest's columns never depend
# on which terms a particular copy happens to contain.
CLASSES: tuple[str, ...] = tuple(c for c in CANONICAL_CLASSES if c in set(HEADING_TO_CLASS.values()))
FINDINGS: tuple[str, ...] = tuple(c for c in CLASSES if c != "No Finding")


def heading(term: str) -> str:
    """``Cardiomegaly/mild`` → ``cardiomegaly``."""
    return " ".join(term.split("/", 1)[0].split()).lower()


def map_terms(terms: Iterable[str], unmapped: Counter[str]) -> set[str]:
    """Classes named by ``terms``; headings that name none are added to ``unmapped``."""
    found: set[str] = set()
    for term in terms:
        name = heading(term)
        if name in HEADING_TO_CLASS:
            found.add(HEADING_TO_CLASS[name])
        else:
            unmapped[name] += 1
    return found
