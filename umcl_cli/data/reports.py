"""Choosing the training text from a report: findings, impression, both, or one random sentence."""

from __future__ import annotations

import random
import re

_SECTION = re.compile(r"(?im)^\s*(findings|impression)\s*:\s*")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def sections(report: str) -> dict[str, str]:
    """``{"findings": …, "impression": …}`` for the sections present (lower-case keys)."""
    marks = list(_SECTION.finditer(report))
    out: dict[str, str] = {}
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(report)
        body = " ".join(report[m.end() : end].split())
        if body:
            out[m.group(1).lower()] = body
    return out


def select_text(report: str, section: str, rng: random.Random | None = None) -> str:
    """The text to train on; falls back to the whole report when the section is absent."""
    found = sections(report)
    whole = " ".join(report.split())
    if section == "findings":
        return found.get("findings") or found.get("impression") or whole
    if section == "impression":
        return found.get("impression") or found.get("findings") or whole
    body = " ".join(v for v in (found.get("findings"), found.get("impression")) if v) or whole
    if section == "both":
        return body
    sentences = [s for s in _SENTENCE.split(body) if s.strip()]
    return (rng or random).choice(sentences) if sentences else body
