"""Writing the IU X-ray manifest: one row per listed image, split by report."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl

from umcl_cli.contracts import UsageError, write_prepared
from umcl_datasets.common.checks import check_images, refuse_escaping, require_files
from umcl_datasets.common.locate import resolve_root
from umcl_datasets.common.split import group_split
from umcl_datasets.public import absolute, run_info

from .labels import CLASSES, FINDINGS, HEADING_TO_CLASS, heading, map_terms
from .options import IUXrayOptions
from .reports import DOWNLOAD, read_report

NAME = "iuxray"
REPORTS, IMAGES = "ecgen-radiology", "NLMCXR_png"
# The MeSH heading Open-i uses for reports nobody indexed: their labels are unknown, not negative.
NOT_INDEXED = "no indexing"


def build(options: IUXrayOptions, out: Path) -> Path:
    root = resolve_root(NAME, options.root, f"the IU X-ray folder (holding {REPORTS}/ and {IMAGES}/)")
    require_files(root, [REPORTS, IMAGES], DOWNLOAD)
    # Numeric order (2.xml before 10.xml) keeps the manifest in the order Open-i numbers reports.
    paths = sorted((root / REPORTS).glob("*.xml"), key=lambda p: (len(p.stem), p.stem))
    if not paths:
        raise UsageError(f"{root / REPORTS} holds no .xml reports", f"extract NLMCXR_reports.tgz from {DOWNLOAD}")

    rows: list[dict[str, Any]] = []
    unmapped: Counter[str] = Counter()
    tally = Counter({"without_images": 0, "without_findings": 0, "without_text": 0, "not_indexed": 0})
    for path in paths:
        report = read_report(path)
        if not report.images:
            tally["without_images"] += 1
            continue
        tally["without_findings"] += report.findings is None
        text = report.text(options.strip_deid)
        tally["without_text"] += text is None
        indexed = any(heading(t) != NOT_INDEXED for t in report.terms)
        tally["not_indexed"] += not indexed
        labels = _labels(map_terms(report.terms, unmapped), indexed, options)
        rows += [{"image": image, "report": report.report_id, "text": text, **labels} for image in report.images]

    schema = {"image": pl.String, "report": pl.String, "text": pl.String, **dict.fromkeys(CLASSES, pl.Float32)}
    reports = pl.DataFrame(rows, schema=schema)
    rel = (IMAGES + "/" + reports["image"] + ".png").alias("rel")
    refuse_escaping(rel, f"the <parentImage id> values under {root / REPORTS}")
    keep = check_images(root, rel, options.on_missing, DOWNLOAD)
    reports = reports.with_columns(rel, split=group_split(reports["report"], options.fractions(), options.seed))
    frame = reports.filter(pl.Series(keep)).select(
        absolute(root, pl.col("rel")),
        "text",
        "split",
        pl.lit(None, pl.String).alias("subject_id"),
        pl.col("report").alias("study_id"),
        pl.lit(None, pl.String).alias("view"),
        pl.lit(NAME).alias("source"),
        *CLASSES,
    )
    unmapped.pop(NOT_INDEXED, None)
    negative = options.unlisted == "negative"
    info = {
        "name": NAME,
        "version": "Open-i NLMCXR",
        "classes": list(CLASSES),
        "task": "multilabel",
        "eval_classes": list(FINDINGS),
        "uncertain_policy": f"none: 1 when a MeSH term names the class, else {'0' if negative else 'null'}; "
        "reports indexed 'No Indexing' have null labels",
        "source": DOWNLOAD,
        "text": "FINDINGS and IMPRESSION sections; XXXX " + ("removed" if options.strip_deid else "kept"),
        "term_mapping": HEADING_TO_CLASS,
        "unmapped_terms": dict(unmapped.most_common()),
        "reports_read": len(paths),
        "reports_skipped_without_images": tally["without_images"],
        "reports_without_findings": tally["without_findings"],
        "reports_without_text": tally["without_text"],
        "reports_not_indexed": tally["not_indexed"],
        "missing_images_skipped": int((~keep).sum()),
        "split_policy": "seeded by report (Open-i does not link reports of the same patient)",
        "view": "not recorded (Open-i does not say which image is frontal)",
        **run_info(options, root),
    }
    return write_prepared(out, frame, info)


def _labels(found: set[str], indexed: bool, options: IUXrayOptions) -> dict[str, float | None]:
    absent = 0.0 if indexed and options.unlisted == "negative" else None
    return {name: 1.0 if name in found else absent for name in CLASSES}
