"""Reading one Open-i report (``ecgen-radiology/N.xml``): sections, MeSH terms and listed images."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from umcl_cli.contracts import UsageError

DOWNLOAD = "IU X-ray from Open-i (NLMCXR_reports.tgz and NLMCXR_png.tgz, https://openi.nlm.nih.gov/faq)"
# Open-i replaced identifying words with this token ("x-XXXX", "XXXX XXXX").
DEID_TOKEN = re.compile(r"X{4,}")


@dataclass(frozen=True)
class Report:
    report_id: str
    findings: str | None
    impression: str | None
    terms: tuple[str, ...]  # MeSH <major> then <automatic>, as written
    images: tuple[str, ...]  # <parentImage id> values

    def text(self, strip_deid: bool) -> str | None:
        """``FINDINGS: …`` / ``IMPRESSION: …`` lines for the sections present; None when both are empty."""
        lines = [
            f"{name}: {body}" for name, body in (("FINDINGS", self.findings), ("IMPRESSION", self.impression)) if body
        ]
        if strip_deid:
            lines = [" ".join(DEID_TOKEN.sub("", line).split()) for line in lines]
        return "\n".join(lines) or None


def read_report(path: Path) -> Report:
    try:
        tree = ET.parse(path)
    except ET.ParseError as exc:
        raise UsageError(f"{path} is not valid XML ({exc})", f"extract the reports again from {DOWNLOAD}") from exc
    sections = {
        (node.get("Label") or "").upper(): " ".join("".join(node.itertext()).split()) or None
        for node in tree.iter("AbstractText")
    }
    uid = tree.find("uId")
    mesh = tree.find("MeSH")
    terms = [] if mesh is None else [(n.text or "").strip() for tag in ("major", "automatic") for n in mesh.iter(tag)]
    return Report(
        report_id=uid.get("id", path.stem) if uid is not None else path.stem,
        findings=sections.get("FINDINGS"),
        impression=sections.get("IMPRESSION"),
        terms=tuple(t for t in terms if t),
        images=tuple(p.get("id", "") for p in tree.iter("parentImage") if p.get("id")),
    )
