"""Wall time and peak memory of `umcl prepare mimic` (manifest only) at MIMIC-CXR scale.

python benchmarks/prepare_mimic.py                       # 377,110 images, 227,835 reports
python benchmarks/prepare_mimic.py --images 20000 --reports 12000   # a quick, smaller run

Generates a MIMIC-CXR-JPG-shaped folder (gzipped metadata / split / chexpert CSVs with the real
headers, empty .jpg files in files/pXX/pXXXXXXXX/sXXXXXXXX/) and a mimic-cxr-reports folder (one
wrapped report per study, with addenda, missing sections, a typo'd header, non-ASCII text) under
/tmp/umcl-mimic-bench/<images>-<reports>/. Generation takes minutes at full scale; the folder is kept
and reused. Each timed run reads it once untimed first, so the page cache is warm.

Timed, each in a fresh subprocess: wall time, CPU time (user + sys, worker processes included: on
a shared machine it varies less than wall time) and peak RSS (the child's rusage from wait4, which
covers its worker processes too: the largest of them, like getrusage(RUSAGE_CHILDREN)):
1. the `umcl` command line, as a user runs it (includes importing the CLI, which pulls in torch);
2. the plugin alone (options validated and prepare() called, no CLI import);
3. if pandas is installed, a plain single-process pandas version of the same job, for comparison.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from umcl_cli.data.manifest import CHEXPERT_CLASSES

CACHE = Path("/tmp/umcl-mimic-bench")
FULL_IMAGES, FULL_REPORTS, FULL_PATIENTS = 377_110, 227_835, 65_379
LABELS = tuple(sorted(CHEXPERT_CLASSES))  # MIMIC's label files list them alphabetically
FINDINGS = (
    "The lungs are clear without focal consolidation, pleural effusion or pneumothorax.",
    "Heart size is normal. The mediastinal and hilar contours are unremarkable.",
    "There is mild pulmonary vascular congestion without overt pulmonary edema.",
    "Moderate right pleural effusion with adjacent compressive atelectasis is noted.",
    "Endotracheal tube terminates approximately 4 cm above the carina.",
    "An enteric tube courses below the diaphragm and out of the field of view.",
    "Patchy opacity in the left lower lobe could reflect atelectasis or early pneumonia.",
    "The cardiac silhouette is moderately enlarged, unchanged from the prior study.",
    "No acute osseous abnormality. Degenerative changes of the thoracic spine are seen.",
    "Right internal jugular central venous catheter tip projects over the mid SVC.",
    "Compared to the prior radiograph from ___, there is no significant interval change.",
    "Small bilateral pleural effusions are similar, with bibasilar atelectasis.",
)
IMPRESSIONS = (
    "No acute cardiopulmonary process.",
    "Mild pulmonary edema, slightly improved from the prior study.",
    "Left lower lobe opacity, concerning for pneumonia in the appropriate clinical setting.",
    "Moderate right pleural effusion.",
    "Support devices in standard position.",
    "Stable cardiomegaly without acute superimposed process.",
)


def _wrap(text: str, width: int = 78) -> list[str]:
    """Greedy word wrap (the reports' 79 columns, each line starting with one space)."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(" " + line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, " " + line] if line else lines


def _report(rng: np.random.Generator, kind: float) -> str:
    lines = [" " * 33 + "FINAL REPORT"]
    lines += [" EXAMINATION:  CHEST (PA AND LAT)", " ", " INDICATION:  ___ year old with cough  // eval pna", " "]
    lines += [" TECHNIQUE:  Chest PA and lateral", " ", " COMPARISON:  ___", " "]
    findings = " ".join(FINDINGS[i] for i in rng.choice(len(FINDINGS), size=int(rng.integers(3, 8)), replace=False))
    impression = " ".join(
        IMPRESSIONS[i] for i in rng.choice(len(IMPRESSIONS), size=int(rng.integers(1, 3)), replace=False)
    )
    if kind < 0.03:  # neither section: the last paragraph stands in
        lines += [" PA AND LATERAL VIEWS OF THE CHEST:", " ", *_wrap(findings), " ", *_wrap(impression)]
    else:
        header = "IMPRESSON" if kind < 0.04 else "CONCLUSION" if kind < 0.06 else "IMPRESSION"
        lines += [" FINDINGS: ", " ", *_wrap(findings), " ", f" {header}: ", " ", *_wrap(impression)]
        if kind > 0.97:
            lines += [" ", " NOTIFICATION:  The findings were discussed with Dr. ___ by telephone at ___."]
    if 0.06 <= kind < 0.07:
        lines[-1] += " Diamètre 3 × 4 cm."  # a few reports are non-ASCII UTF-8
    if 0.07 <= kind < 0.12:  # addendum above a line of underscores
        lines = [
            " " * 32 + "FINAL ADDENDUM",
            " ADDENDUM:  Findings discussed with Dr. ___ on ___.",
            " ",
            " " + "_" * 78,
            *lines,
        ]
    return "\n" + "\n".join(lines) + "\n"


def _gzip_csv(frame: pl.DataFrame, path: Path) -> None:
    buffer = io.BytesIO()
    frame.write_csv(buffer)
    path.write_bytes(gzip.compress(buffer.getvalue(), compresslevel=1))


def generate(folder: Path, n_images: int, n_reports: int) -> None:
    """A MIMIC-CXR-JPG-shaped root (``folder/jpg``) and reports folder (``folder/reports``)."""
    rng = np.random.default_rng(0)
    n_patients = max(1, round(n_reports * FULL_PATIENTS / FULL_REPORTS))
    subjects = np.sort(rng.choice(np.arange(10_000_000, 20_000_000), n_patients, replace=False))
    study_owner = np.concatenate([np.arange(n_patients), rng.integers(0, n_patients, n_reports - n_patients)])
    study_ids = rng.choice(np.arange(50_000_000, 60_000_000), n_reports, replace=False)
    image_study = np.sort(np.concatenate([np.arange(n_reports), rng.integers(0, n_reports, n_images - n_reports)]))
    hexes = rng.integers(0, 2**32, size=(n_images, 5), dtype=np.uint64)
    dicom = ["-".join(f"{int(x):08x}" for x in row) for row in hexes]
    subject_of_image = subjects[study_owner[image_study]]
    study_of_image = study_ids[image_study]
    views = rng.choice(["PA", "AP", "LATERAL", "LL", ""], size=n_images, p=[0.4, 0.35, 0.2, 0.03, 0.02])
    seconds = rng.integers(0, 86_400, n_reports)
    study_time = (seconds // 3600) * 10_000 + (seconds // 60 % 60) * 100 + seconds % 60 + rng.random(n_reports).round(3)
    study_date = 21_000_101 + rng.integers(0, 30, n_reports) * 10_000 + rng.integers(0, 12, n_reports) * 100
    jpg, reports = folder / "jpg", folder / "reports"
    jpg.mkdir(parents=True, exist_ok=True)
    meta = pl.DataFrame(
        {
            "dicom_id": dicom,
            "subject_id": subject_of_image,
            "study_id": study_of_image,
            "PerformedProcedureStepDescription": "CHEST (PA AND LAT)",
            "ViewPosition": views,
            "Rows": 3056,
            "Columns": 2544,
            "StudyDate": study_date[image_study],
            "StudyTime": study_time[image_study],
            "ProcedureCodeSequence_CodeMeaning": "CHEST (PA AND LAT)",
            "ViewCodeSequence_CodeMeaning": "postero-anterior",
            "PatientOrientationCodeSequence_CodeMeaning": "Erect",
        }
    ).with_columns(pl.col("ViewPosition").replace("", None))
    _gzip_csv(meta, jpg / "mimic-cxr-2.0.0-metadata.csv.gz")
    patient_split = rng.choice(["train", "validate", "test"], size=n_patients, p=[0.98, 0.008, 0.012])
    split = patient_split[study_owner[image_study]]
    _gzip_csv(
        pl.DataFrame({"dicom_id": dicom, "study_id": study_of_image, "subject_id": subject_of_image, "split": split}),
        jpg / "mimic-cxr-2.0.0-split.csv.gz",
    )
    labelled = rng.random(n_reports) > 0.005  # some studies have no label row
    values = rng.choice([1.0, 0.0, -1.0, np.nan], size=(int(labelled.sum()), len(LABELS)), p=[0.1, 0.1, 0.05, 0.75])
    labels = {"subject_id": subjects[study_owner[labelled]], "study_id": study_ids[labelled]}
    labels.update({name: values[:, j] for j, name in enumerate(LABELS)})
    _gzip_csv(pl.DataFrame(labels).fill_nan(None), jpg / "mimic-cxr-2.0.0-chexpert.csv.gz")

    kinds = rng.random(n_reports)
    for s in range(n_reports):
        subject = subjects[study_owner[s]]
        patient_dir = f"files/p{str(subject)[:2]}/p{subject}"
        (jpg / patient_dir / f"s{study_ids[s]}").mkdir(parents=True, exist_ok=True)
        (reports / patient_dir).mkdir(parents=True, exist_ok=True)
        (reports / patient_dir / f"s{study_ids[s]}.txt").write_text(_report(rng, kinds[s]), encoding="utf-8")
    for i in range(n_images):
        path = jpg / f"files/p{str(subject_of_image[i])[:2]}/p{subject_of_image[i]}/s{study_of_image[i]}/{dicom[i]}.jpg"
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
    (folder / "complete").touch()  # a generation cut short is redone, not reused


def warm(folder: Path) -> None:
    """Read every file once so the timed runs find the page cache warm."""
    for directory, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(directory, name), "rb") as handle:
                handle.read()


def timed(command: list[str]) -> tuple[float, float, float, int, str]:
    """(wall s, CPU s, peak RSS MiB, exit code, output tail) of one subprocess, from wait4's rusage."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode, output[-1500:]


PLUGIN_ONLY = """
import sys
from pathlib import Path
from umcl_cli import registry
plugin = registry.load("datasets", "mimic")
options = plugin.Options(root=sys.argv[1], reports=sys.argv[2])
plugin().prepare(options, Path(sys.argv[3]))
"""

PANDAS_BASELINE = """
import os, sys
import pandas as pd
from umcl_datasets.mimic.sections import parse_report, report_text
root, reports = sys.argv[1], sys.argv[2]
meta = pd.read_csv(os.path.join(root, "mimic-cxr-2.0.0-metadata.csv.gz"))
split = pd.read_csv(os.path.join(root, "mimic-cxr-2.0.0-split.csv.gz"))
labels = pd.read_csv(os.path.join(root, "mimic-cxr-2.0.0-chexpert.csv.gz"))
frame = meta.merge(split[["dicom_id", "split"]], on="dicom_id").merge(
    labels.drop(columns="subject_id"), on="study_id", how="left")
study_dir = ("files/p" + frame.subject_id.astype(str).str[:2] + "/p" + frame.subject_id.astype(str)
             + "/s" + frame.study_id.astype(str))
frame["image_path"] = study_dir + "/" + frame.dicom_id + ".jpg"
frame = frame[[os.path.exists(os.path.join(root, p)) for p in frame.image_path]]
studies = frame.drop_duplicates("study_id")
rows = []
for subject, study in zip(studies.subject_id.astype(str), studies.study_id.astype(str)):
    path = os.path.join(reports, "files", "p" + subject[:2], "p" + subject, "s" + study + ".txt")
    with open(path, encoding="utf-8") as handle:
        sections = parse_report(handle.read())
    rows.append((int(study), report_text(sections, "both"), sections.findings, sections.impression))
parsed = pd.DataFrame(rows, columns=["study_id", "text", "findings", "impression"])
frame = frame.merge(parsed, on="study_id", how="left")
print(len(frame), "rows (pandas baseline; parquet writing left out: pyarrow is not a dependency)")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=FULL_IMAGES)
    parser.add_argument("--reports", type=int, default=FULL_REPORTS, help="studies (one report each)")
    args = parser.parse_args()
    if not 0 < args.reports <= args.images:
        parser.error("need 0 < --reports <= --images (every study has at least one image)")
    folder = CACHE / f"{args.images}-{args.reports}"
    if not (folder / "complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        print(f"generating {args.images} images / {args.reports} reports under {folder} (kept for reuse) ...")
        start = time.perf_counter()
        generate(folder, args.images, args.reports)
        print(f"generated in {time.perf_counter() - start:.0f} s")
    warm(folder)
    jpg, reports = str(folder / "jpg"), str(folder / "reports")
    umcl = shutil.which("umcl") or str(Path(sys.executable).with_name("umcl"))
    with tempfile.TemporaryDirectory(prefix="umcl-mimic-bench-out-") as out:
        runs = {
            "umcl prepare mimic (CLI)": [
                umcl,
                "prepare",
                "mimic",
                "--out",
                f"{out}/cli",
                "--root",
                jpg,
                "--reports",
                reports,
            ],
            "plugin only (no CLI import)": [sys.executable, "-c", PLUGIN_ONLY, jpg, reports, f"{out}/plugin"],
        }
        if importlib.util.find_spec("pandas") is not None:
            runs["pandas, single process"] = [sys.executable, "-c", PANDAS_BASELINE, jpg, reports]
        else:
            print("pandas is not installed: skipping the single-process pandas baseline")
        print(f"{args.images} images, {args.reports} reports, {os.cpu_count()} CPUs")
        for name, command in runs.items():
            wall, cpu, peak, code, output = timed(command)
            print(f"{name:30s} wall {wall:5.1f} s  CPU {cpu:5.1f} s  peak RSS {peak:5.0f} MiB  exit {code}")
            if code:
                print(output, file=sys.stderr)
        written = pl.read_parquet(f"{out}/plugin/manifest.parquet", columns=["text"])
        print(f"manifest: {written.height} rows, {written['text'].is_not_null().sum()} with text")


if __name__ == "__main__":
    main()
