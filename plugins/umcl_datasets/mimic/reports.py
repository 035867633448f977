"""Reading MIMIC-CXR reports from the unzipped folder or straight from ``mimic-cxr-reports.zip``.

227,835 small files are read and section-parsed in worker processes, chunk by chunk. Workers use
only the standard library (no polars), so a forked pool is safe even after polars has started its
threads in the parent. Each chunk comes back as a few long strings rather than thousands of small
ones, which keeps unpickling and building polars columns cheap in the parent.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from multiprocessing.pool import Pool
from pathlib import Path
from typing import NamedTuple

from umcl_cli.contracts import UsageError

from .sections import Sections, parse_report, report_text

DOWNLOAD = "MIMIC-CXR 2.0.0 (mimic-cxr-reports.zip) from PhysioNet"
CHUNK = 4096
SEP = "\x00"  # joins a chunk's texts; NUL never survives in a parsed text (see _decode)
# One open archive per worker process, keyed by path: opening reads the whole central directory.
_ARCHIVES: dict[str, tuple[zipfile.ZipFile, str]] = {}
_ABSENT = Sections(None, None, None)
_READ = 1 << 16  # reports are a few kB; one read usually takes the whole file


class Chunk(NamedTuple):
    """Text and sections of a run of reports, each column joined by ``SEP`` ("" for a missing value)."""

    text: str
    findings: str
    impression: str
    found: bytes  # one byte per report: 1 if the report exists


def report_path(subject_id: int, study_id: int) -> str:
    """``files/p10/p10000032/s50414267.txt``: where a study's report sits in the reports folder or zip."""
    subject = str(subject_id)
    return f"files/p{subject[:2]}/p{subject}/s{study_id}.txt"


def reports_source(reports: Path) -> Path:
    """The zip itself, or the folder that holds ``files/`` (given that folder or ``files/`` itself)."""
    if reports.is_file():
        if not zipfile.is_zipfile(reports):
            raise UsageError(
                f"--reports {reports} is a file but not a zip", f"pass the reports folder or the zip ({DOWNLOAD})"
            )
        return reports
    if (reports / "files").is_dir():
        return reports
    if reports.name == "files" and reports.is_dir():
        return reports.parent
    raise UsageError(
        f"--reports {reports} holds no files/ folder of reports",
        f"pass the unzipped mimic-cxr-reports folder (holding files/pXX/...) or the zip itself ({DOWNLOAD})",
    )


def start_reading(pool: Pool, source: Path, rel_paths: Sequence[str], strip_phi: bool, section: str) -> Iterator[Chunk]:
    """Queue every report on ``pool`` now; the iterator yields their ``Chunk``s in ``rel_paths`` order."""
    tasks = [(str(source), rel_paths[i : i + CHUNK], strip_phi, section) for i in range(0, len(rel_paths), CHUNK)]
    return pool.imap(_read_task, tasks)


def _read_task(task: tuple[str, Sequence[str], bool, str]) -> Chunk:
    return read_chunk(*task)


def read_chunk(source: str, rel_paths: Sequence[str], strip_phi: bool, section: str) -> Chunk:
    """Text (per ``--section``) and sections of each report in ``rel_paths`` (relative to the folder,
    or to the zip's files/ parent)."""
    raws = _zip_members(source, rel_paths) if os.path.isfile(source) else _folder_files(source, rel_paths)
    always_last = section == "last_paragraph"
    text, findings, impression, found = [], [], [], bytearray()
    for raw in raws:
        found.append(raw is not None)
        sections = parse_report(_decode(raw), strip_phi, always_last) if raw is not None else _ABSENT
        text.append(report_text(sections, section) or "")
        findings.append(sections.findings or "")
        impression.append(sections.impression or "")
    return Chunk(SEP.join(text), SEP.join(findings), SEP.join(impression), bytes(found))


def _decode(raw: bytes) -> str:
    # A stray NUL would shift every later row of the chunk, so it goes before parsing.
    return raw.replace(b"\x00", b"").decode("utf-8", errors="replace")


def _folder_files(source: str, rel_paths: Sequence[str]) -> Iterable[bytes | None]:
    # os.open/os.read: half the CPU of open() per small file, which adds up over 227,835 reports.
    for rel in rel_paths:
        try:
            fd = os.open(os.path.join(source, rel), os.O_RDONLY)
        except FileNotFoundError:
            yield None
            continue
        try:
            parts = [os.read(fd, _READ)]
            while len(parts[-1]) == _READ:  # longer than one read: keep going to the end
                parts.append(os.read(fd, _READ))
        finally:
            os.close(fd)
        yield b"".join(parts)


def _zip_members(source: str, rel_paths: Sequence[str]) -> Iterable[bytes | None]:
    if source not in _ARCHIVES:
        archive = zipfile.ZipFile(source)
        # The archive may wrap files/ in a top folder (mimic-cxr-reports/files/...); find that prefix.
        first = next((n for n in archive.namelist() if n.startswith("files/p") or "/files/p" in n), "files/")
        _ARCHIVES[source] = (archive, first[: first.index("files/")])
    archive, prefix = _ARCHIVES[source]
    for rel in rel_paths:
        try:
            yield archive.read(prefix + rel)
        except KeyError:
            yield None
