"""``umcl prepare mimic``: MIMIC-CXR-JPG images + CheXpert/NegBio labels + MIMIC-CXR report sections."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import polars as pl

from umcl_cli.contracts import CHEXPERT_CLASSES, CHEXPERT_COMPETITION, DatasetPlugin, UsageError, write_prepared

from ..common.checks import decide_missing, list_present, refuse_escaping
from ..common.locate import resolve_root
from .columns import sections_frame
from .options import MimicOptions
from .reports import DOWNLOAD as REPORTS_DOWNLOAD
from .reports import report_path, reports_source, start_reading
from .sections import TEXT_RULES
from .tables import DOWNLOAD, join_split_and_labels, read_metadata, table_files

SOURCE = "mimic-cxr"
WHAT = "the MIMIC-CXR-JPG folder holding files/ and mimic-cxr-2.0.0-metadata.csv.gz"


class MimicDataset(DatasetPlugin[MimicOptions]):
    name = "mimic"
    summary = "MIMIC-CXR-JPG 2.0.0 images with CheXpert (or NegBio) labels and MIMIC-CXR report sections"
    Options = MimicOptions

    def prepare(self, opts: MimicOptions, out: Path) -> list[Path]:
        root = resolve_root("mimic", opts.root, WHAT)
        source = reports_source(opts.reports.expanduser().resolve() if opts.reports else root)
        tables = table_files(root, opts.labeler)
        # Built in a helper so its intermediate tables are freed before the manifest is written.
        manifest, stats = _manifest(opts, root, source, tables)
        info = {
            "name": "mimic",
            "version": "MIMIC-CXR-JPG 2.0.0 + MIMIC-CXR 2.0.0 reports",
            "classes": list(CHEXPERT_CLASSES),
            "task": "multilabel",
            "eval_classes": list(CHEXPERT_COMPETITION),
            "uncertain_policy": "kept as -1",
            "blank_labels": "null (not mentioned); studies without a label row are null for every class",
            "labeler": opts.labeler,
            "views": opts.view_list() or "all",
            "section": opts.section,
            "text_rule": TEXT_RULES[opts.section],
            "phi": opts.phi,
            "on_missing": opts.on_missing,
            "image_paths": "absolute",
            "source": {"root": str(root), "reports": str(source), **{k: str(v) for k, v in tables.items()}},
            **stats,
            "options": opts.model_dump(mode="json"),
        }
        return [write_prepared(out, manifest, info)]


def _manifest(
    opts: MimicOptions, root: Path, source: Path, tables: dict[str, Path]
) -> tuple[pl.DataFrame, dict[str, Any]]:
    # Fork before the big tables exist, so workers start small; they use only the standard library.
    with multiprocessing.get_context("fork").Pool(opts.workers) as pool:
        images, dropped_views = read_metadata(tables["metadata"], opts.view_list())
        refuse_escaping(images["image_path"], tables["metadata"].name)
        studies = images.select("subject_id", "study_id").unique("study_id", keep="first")
        reading = start_reading(
            pool,
            source,
            [report_path(a, b) for a, b in studies.iter_rows()],
            opts.phi == "strip",
            opts.section,
        )
        frame, unlabelled = join_split_and_labels(images, tables["split"], tables["labels"])
        listed = images.height
        del images  # the joined frame has its own copy; peak memory is what the benchmark watches
        # Checked here while the workers read reports: both take seconds at full scale.
        present = list_present(root, frame["image_path"])
        keep = decide_missing(frame["image_path"], present, opts.on_missing, root, DOWNLOAD)
        parsed = sections_frame(studies["study_id"], reading)
    found = int(parsed["report_found"].sum())
    if found == 0:
        raise UsageError(
            f"none of the {studies.height} studies has a report under {source}",
            f"pass --reports with the mimic-cxr-reports folder or zip ({REPORTS_DOWNLOAD})",
        )
    stats = {
        "images_in_metadata": listed + dropped_views,
        "dropped_by_views": dropped_views,
        "missing_images_skipped": int((~keep).sum()),
        "studies_without_label_row": unlabelled,
        "studies_without_report": studies.height - found,
        "reports_without_findings_or_impression": parsed.filter(
            pl.col("report_found") & pl.col("findings").is_null() & pl.col("impression").is_null()
        ).height,
    }
    parsed = parsed.drop("report_found")
    manifest = (
        frame.filter(pl.Series(keep))
        .join(parsed, on="study_id", how="left", maintain_order="left")
        .select(
            pl.concat_str(pl.lit(f"{root}/"), pl.col("image_path")).alias("image_path"),
            "text",
            "findings",
            "impression",
            "split",
            pl.col("subject_id").cast(pl.String),
            pl.col("study_id").cast(pl.String),
            pl.col("ViewPosition").alias("view"),
            pl.lit(SOURCE).alias("source"),
            "dicom_id",
            "StudyDate",
            "StudyTime",
            *CHEXPERT_CLASSES,
        )
    )
    return manifest, stats
