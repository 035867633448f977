"""Findings and impression of a MIMIC-CXR free-text report, following MIT-LCP's section conventions.

A report is a centred ``FINAL REPORT`` line, then sections whose headers start a line with one
space (`` FINDINGS:``). Addenda sit at the top, above a line of underscores; sections are read from
the report below the last such line. Header variants are normalised (``CONCLUSION`` and
``FINDINGS/IMPRESSION`` are impressions; near-misses such as ``IMPRESSON`` too). The impression stops
at an inline ``RECOMMENDATION(S):`` or ``NOTIFICATION:``. When a report has neither section, its last
paragraph stands in (``last_paragraph``).
"""

from __future__ import annotations

import difflib
import re
from typing import NamedTuple

_HEADER = re.compile(r"\n ([A-Z ()/,-]+):\s")
_STOP = re.compile(r"RECOMMENDATIONS?:|RECOMMENDATION\(S\):|NOTIFICATION:")
_PARAGRAPH = re.compile(r"\n[ \t]*\n")
_PHI = re.compile(r"\s*_{3,}")  # the mark and the space before it: "since ___." → "since."
# Ten underscores never occur as a PHI mark (three) but always in an addendum separator (a line).
_SEPARATOR = "_" * 10

_IMPRESSION_ALIASES = frozenset(
    {
        "impression",
        "impressions",
        "conclusion",
        "conclusions",
        "findings/impression",
        "findings/impressions",
        "impression/findings",
        "findings and impression",
        "impression and findings",
        "impression and recommendation",
        "impression and recommendations",
    }
)
_FINDINGS_ALIASES = frozenset({"findings", "finding", "findings and comparison"})


class Sections(NamedTuple):
    findings: str | None
    impression: str | None
    last_paragraph: str | None  # set when the report has neither findings nor impression (or on request)


_CANONICAL: dict[str, str] = {}  # header as written → canonical name (a few hundred distinct ones)
_WANTED = ("findings", "impression")


def canonical_header(name: str) -> str:
    """``IMPRESSON`` → ``impression``; ``CONCLUSION`` → ``impression``; other headers lower-cased."""
    known = _CANONICAL.get(name)
    if known is None:
        known = _CANONICAL[name] = _canonical(name)
    return known


def _canonical(name: str) -> str:
    name = " ".join(name.lower().split())
    if name in _IMPRESSION_ALIASES:
        return "impression"
    if name in _FINDINGS_ALIASES:
        return "findings"
    # Typos: one or two letters off a section name (``impresson``, ``findngs``).
    for target in _WANTED:
        if difflib.SequenceMatcher(None, name, target).ratio() >= 0.85:
            return target
    return name


def parse_report(text: str, strip_phi: bool = False, always_last: bool = False) -> Sections:
    """Whitespace-collapsed findings and impression (``None`` when absent or empty).

    ``last_paragraph`` is filled when the report has neither section, or always with ``always_last``.
    ``strip_phi`` removes the ``___`` marks that replaced protected health information.
    """
    cut = text.rfind(_SEPARATOR)
    if cut >= 0:
        # The report proper starts on the line after the separator; addenda above it are left out.
        newline = text.find("\n", cut)
        text = "" if newline < 0 else text[newline:]
    found: dict[str, str] = {}
    name, start = None, 0
    for m in _HEADER.finditer(text):
        if name is not None:
            found[name] = text[start : m.start()]  # a repeated section keeps its last occurrence
        name = canonical_header(m.group(1))
        name = name if name in _WANTED else None
        start = m.end()
    if name is not None:
        found[name] = text[start:]
    impression = found.get("impression")
    if impression is not None:
        stop = _STOP.search(impression)
        if stop:
            impression = impression[: stop.start()]
    findings = _clean(found.get("findings"), strip_phi)
    impression = _clean(impression, strip_phi)
    last = None
    if always_last or (findings is None and impression is None):
        last = _clean(_PARAGRAPH.split(text.strip())[-1], strip_phi)
    return Sections(findings, impression, last)


# With ``both`` the text keeps its FINDINGS:/IMPRESSION: headers, so the training recipe's
# ``data.text_section`` can still pick one section (umcl_cli.data.reports.select_text reads them).
TEXT_RULES = {
    "both": "'FINDINGS: <findings>\\nIMPRESSION: <impression>' (sections present only); "
    "neither section: the last paragraph",
    "findings": "findings; else impression; else the last paragraph",
    "impression": "impression (cut at RECOMMENDATION(S):/NOTIFICATION:); else findings; else the last paragraph",
    "last_paragraph": "the report's last paragraph",
}


def report_text(sections: Sections, section: str) -> str | None:
    """The manifest's text for one report under ``--section`` (see ``TEXT_RULES``)."""
    findings, impression, last = sections
    if section == "last_paragraph":
        return last
    if section == "findings":
        return findings or impression or last
    if section == "impression":
        return impression or findings or last
    if findings and impression:
        return f"FINDINGS: {findings}\nIMPRESSION: {impression}"
    if findings:
        return f"FINDINGS: {findings}"
    return f"IMPRESSION: {impression}" if impression else last


def _clean(body: str | None, strip_phi: bool) -> str | None:
    if body is None:
        return None
    if strip_phi:
        body = _PHI.sub("", body)
    return " ".join(body.split()) or None
