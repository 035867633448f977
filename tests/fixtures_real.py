"""Faithful miniature copies of real downloads (MIMIC-CXR-JPG + reports, CheXpert), written into a tmp dir,
and the two CLI helpers the tests of real-dataset plugins share.

Headers are byte-exact, MIMIC's tables are gzipped, and the quirks the parsers must survive are
here on purpose: float StudyTime, a blank ViewPosition, addenda above a line of underscores, a
report without findings or impression, a typo'd and a combined section header, inline
RECOMMENDATION(S)/NOTIFICATION, non-ASCII text, a study missing from the label file, a study without
a report, CheXpert's small and full-size prefixes, No Finding only 1.0 or blank, -1.0 labels.
Nothing here is real patient data: every report and label is made up.
"""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from umcl_cli.cli.app import app
from umcl_cli.data.manifest import CHEXPERT_CLASSES

MIMIC_LABELS = tuple(sorted(CHEXPERT_CLASSES))  # MIMIC's label files list them alphabetically
METADATA_HEADER = (
    "dicom_id,subject_id,study_id,PerformedProcedureStepDescription,ViewPosition,Rows,Columns,StudyDate,"
    "StudyTime,ProcedureCodeSequence_CodeMeaning,ViewCodeSequence_CodeMeaning,"
    "PatientOrientationCodeSequence_CodeMeaning"
)
CHEXPERT_HEADER = (
    "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,Lung Opacity,"
    "Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,Pleural Effusion,Pleural Other,"
    "Fracture,Support Devices"
)
CHEXPERT_LABELS = tuple(CHEXPERT_HEADER.split(",")[5:])
COMPETITION = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
_runner = CliRunner()


def invoke(*args: str, env: dict[str, str | None] | None = None):
    """``umcl ARGS`` in-process; ``env`` values of None unset a variable for the call."""
    return _runner.invoke(app, list(args), env={"UMCL_DEBUG": "", **(env or {})}, terminal_width=200)


def assert_one_line_error(result, *fragments: str) -> str:
    """Exit code 2 and one ``error: ...`` line holding every fragment."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def dicom_id(i: int) -> str:
    """Five dash-separated groups of 8 hex digits, like MIMIC's."""
    return "-".join(f"{(i * 2_654_435_761 + k * 40_503) % 16**8:08x}" for k in range(5))


# (subject_id, study_id, ViewPosition, split) per image; "" is a blank ViewPosition.
MIMIC_IMAGES = (
    (10000032, 50414267, "PA", "train"),
    (10000032, 50414267, "LATERAL", "train"),
    (10000032, 53189527, "AP", "train"),
    (10000764, 57375967, "", "train"),
    (11000011, 51234567, "PA", "train"),
    (12000022, 52345678, "AP", "train"),
    (13000033, 53456789, "PA", "train"),
    (14000044, 54567890, "AP", "test"),
    (14000044, 54567890, "LL", "test"),
    (15000055, 55678901, "PA", "validate"),
    (16000066, 56789012, "AP", "train"),
)
STUDY_WITHOUT_LABELS = 53456789
STUDY_WITHOUT_REPORT = 56789012

_TOP = " " * 33 + "FINAL REPORT\n"
_HEAD = (
    " EXAMINATION:  CHEST (PA AND LAT)\n \n INDICATION:  ___M with cough and fever  // eval for pneumonia\n \n"
    " TECHNIQUE:  Chest PA and lateral\n \n COMPARISON:  ___\n \n"
)
REPORTS = {
    50414267: _TOP
    + _HEAD
    + " FINDINGS: \n \n The lungs are clear.  There is no pleural effusion or\n pneumothorax.  Heart size is"
    " normal.\n \n IMPRESSION: \n \n No acute cardiopulmonary process.\n",
    53189527: _TOP + _HEAD + " FINDINGS: \n \n Patchy opacity at the left base, new since ___.\n \n IMPRESSION: \n \n"
    " Left basilar opacity, possibly pneumonia.  RECOMMENDATION(S):  Follow-up\n radiograph in six weeks.\n",
    57375967: _TOP + " FINDINGS:  Mild enlargement of the cardiac silhouette.\n \n"
    " CONCLUSION:  Cardiomegaly without edema.\n",
    51234567: " " * 32
    + "FINAL ADDENDUM\n ADDENDUM:\n \n IMPRESSION:  Findings were discussed with Dr. ___ at\n 10:20.\n \n "
    + "_" * 78
    + "\n"
    + _TOP
    + _HEAD
    + " FINDINGS:  Small right pleural effusion.\n \n IMPRESSON:  Small right effusion.\n",
    52345678: _TOP + " CHEST RADIOGRAPH, SINGLE AP VIEW:\n \n Comparison is made with the prior study.\n \n"
    " Endotracheal tube ends 4 cm above the carina.  No\n pneumothorax.\n",
    53456789: _TOP
    + _HEAD
    + " FINDINGS:  A 1.2 × 0.9 cm nodule projects over the right upper lobe (café\n coloured marker"
    " noted).\n \n IMPRESSION:  Right upper lobe nodule.\n",
    54567890: _TOP + " FINDINGS/IMPRESSION:  Moderate pulmonary edema.  NOTIFICATION:  Dr. ___ was\n paged.\n",
    55678901: _TOP
    + _HEAD
    + " FINDINGS:  Linear opacity at the right base.\n \n IMPRESSION:  Right basilar atelectasis.\n",
}
# Expected (findings, impression, last paragraph) after parsing, PHI kept.
EXPECTED_SECTIONS = {
    50414267: (
        "The lungs are clear. There is no pleural effusion or pneumothorax. Heart size is normal.",
        "No acute cardiopulmonary process.",
        None,
    ),
    53189527: ("Patchy opacity at the left base, new since ___.", "Left basilar opacity, possibly pneumonia.", None),
    57375967: ("Mild enlargement of the cardiac silhouette.", "Cardiomegaly without edema.", None),
    51234567: ("Small right pleural effusion.", "Small right effusion.", None),
    52345678: (None, None, "Endotracheal tube ends 4 cm above the carina. No pneumothorax."),
    53456789: (
        "A 1.2 × 0.9 cm nodule projects over the right upper lobe (café coloured marker noted).",
        "Right upper lobe nodule.",
        None,
    ),
    54567890: (None, "Moderate pulmonary edema.", None),
    55678901: ("Linear opacity at the right base.", "Right basilar atelectasis.", None),
}
# Per study, the labels present (others blank). negbio differs for 53189527's Pneumonia.
MIMIC_STUDY_LABELS = {
    50414267: {"No Finding": 1.0},
    53189527: {"Pneumonia": -1.0, "Lung Opacity": 1.0, "Consolidation": 0.0},
    57375967: {"Cardiomegaly": 1.0, "Edema": 0.0},
    51234567: {"Pleural Effusion": 1.0},
    52345678: {"Support Devices": 1.0, "Pneumothorax": 0.0},
    54567890: {"Edema": 1.0},
    55678901: {"Atelectasis": -1.0},
    56789012: {"No Finding": 1.0},
}


@dataclass(frozen=True)
class MimicFixture:
    root: Path  # the MIMIC-CXR-JPG folder
    reports: Path  # the unzipped mimic-cxr-reports folder (holding files/)

    def image(self, i: int) -> Path:
        subject, study, _, _ = MIMIC_IMAGES[i]
        return self.root / f"files/p{str(subject)[:2]}/p{subject}/s{study}/{dicom_id(i)}.jpg"


def write_gz_csv(path: Path, header: str, rows: list[list[object]]) -> None:
    """A gzipped CSV with ``header`` written verbatim and blank cells for ``None``."""
    buffer = io.StringIO()
    buffer.write(header + "\n")
    csv.writer(buffer, lineterminator="\n").writerows([["" if v is None else v for v in row] for row in rows])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(buffer.getvalue().encode()))


def write_image(path: Path, real: bool, seed: int) -> None:
    """A 32-px grayscale JPEG (``real``), or an empty file where only existence matters."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not real:
        path.touch()
        return
    pixels = np.random.default_rng(seed).integers(0, 256, size=(32, 32), dtype=np.uint8)
    Image.fromarray(pixels, mode="L").save(path, format="JPEG")


def write_mimic(base: Path, real_images: bool = False) -> MimicFixture:
    """``base/mimic-cxr-jpg`` (tables + images) and ``base/mimic-cxr-reports`` (files/…/sNNN.txt)."""
    fixture = MimicFixture(base / "mimic-cxr-jpg", base / "mimic-cxr-reports")
    meta, split = [], []
    for i, (subject, study, view, name) in enumerate(MIMIC_IMAGES):
        # StudyTime as MIMIC has it: hhmmss.fff as a float, leading zero lost (08:05:56.875).
        code_meaning = "postero-anterior" if view == "PA" else ""
        meta.append([dicom_id(i), subject, study, "CHEST (PA AND LAT)", view, 3056, 2544, 21800506, 80556.875 + i])
        meta[-1].extend(["CHEST (PA AND LAT)", code_meaning, "Erect"])
        split.append([dicom_id(i), study, subject, name])
        write_image(fixture.image(i), real_images, i)
    write_gz_csv(fixture.root / "mimic-cxr-2.0.0-metadata.csv.gz", METADATA_HEADER, meta)
    write_gz_csv(fixture.root / "mimic-cxr-2.0.0-split.csv.gz", "dicom_id,study_id,subject_id,split", split)
    subjects = {study: subject for subject, study, _, _ in MIMIC_IMAGES}
    for labeler in ("chexpert", "negbio"):
        rows = []
        for study, values in MIMIC_STUDY_LABELS.items():
            if labeler == "negbio" and study == 53189527:
                values = {**values, "Pneumonia": 1.0}
            rows.append([subjects[study], study, *(values.get(name) for name in MIMIC_LABELS)])
        header = "subject_id,study_id," + ",".join(MIMIC_LABELS)
        write_gz_csv(fixture.root / f"mimic-cxr-2.0.0-{labeler}.csv.gz", header, rows)
    for study, text in REPORTS.items():
        subject = subjects[study]
        path = fixture.reports / f"files/p{str(subject)[:2]}/p{subject}/s{study}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for name in ("LICENSE.txt", "README", "SHA256SUMS.txt", "IMAGE_FILENAMES"):
        (fixture.root / name).write_text("")
    return fixture


def zip_reports(reports: Path, target: Path, prefix: str = "") -> Path:
    """``mimic-cxr-reports.zip`` of the reports folder, members ``{prefix}files/pXX/...``."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(reports.rglob("*.txt")):
            archive.write(path, prefix + path.relative_to(reports).as_posix())
    return target


# CheXpert train.csv rows as (patient, study, view file, Frontal/Lateral, AP/PA, {label: value}).
def _clean(label: str) -> dict[str, float]:
    """One competition class positive, a couple of others explicitly 0, the rest blank."""
    return {label: 1.0, "Fracture": 0.0, "Support Devices": 0.0}


CLEAN_PER_CLASS = 3
CHEXPERT_TRAIN: list[tuple[int, int, str, str, str, dict[str, float]]] = [
    (1 + k * CLEAN_PER_CLASS + j, 1, "view1_frontal.jpg", "Frontal", "AP" if j % 2 else "PA", _clean(label))
    for k, label in enumerate(COMPETITION)
    for j in range(CLEAN_PER_CLASS)
] + [
    (16, 1, "view1_frontal.jpg", "Frontal", "AP", {"Atelectasis": 1.0, "Edema": -1.0}),  # uncertain: not 5x200
    (16, 1, "view2_lateral.jpg", "Lateral", "", {"Cardiomegaly": 1.0}),  # lateral: not 5x200
    (17, 1, "view1_frontal.jpg", "Frontal", "PA", {"Consolidation": 1.0, "Pneumonia": 1.0}),  # two positives
    (18, 1, "view1_frontal.jpg", "Frontal", "PA", {"No Finding": 1.0}),
    (18, 2, "view1_frontal.jpg", "Frontal", "AP", {"Pleural Effusion": 1.0, "Support Devices": 1.0}),
    (
        19,
        1,
        "view1_frontal.jpg",
        "Frontal",
        "AP",
        {c: -1.0 for c in (*COMPETITION, "Lung Opacity")},  # every policy shows here
    ),
    (20, 1, "view1_frontal.jpg", "Frontal", "PA", {"Edema": 1.0, "No Finding": None}),
]
CHEXPERT_VALID = [
    (64541, 1, "view1_frontal.jpg", "Frontal", "PA", {"Cardiomegaly": 1.0, "Edema": 0.0}),
    (64541, 1, "view2_lateral.jpg", "Lateral", "", {"Cardiomegaly": 1.0, "Edema": 0.0}),
    (64542, 1, "view1_frontal.jpg", "Frontal", "AP", {"No Finding": 1.0}),
]


@dataclass(frozen=True)
class ChexpertFixture:
    root: Path  # the folder that CONTAINS the dataset folder
    folder: str  # CheXpert-v1.0-small or CheXpert-v1.0


def chexpert_path(folder: str, split: str, patient: int, study: int, view: str) -> str:
    return f"{folder}/{split}/patient{patient:05d}/study{study}/{view}"


def write_chexpert(base: Path, small: bool = True, real_images: bool = False) -> ChexpertFixture:
    """``base/CheXpert-v1.0-small`` (or ``-v1.0``) with train.csv, valid.csv and the images they list."""
    folder = "CheXpert-v1.0-small" if small else "CheXpert-v1.0"
    for name, split, rows in (("train.csv", "train", CHEXPERT_TRAIN), ("valid.csv", "valid", CHEXPERT_VALID)):
        lines = [CHEXPERT_HEADER]
        for i, (patient, study, view, frontal, ap_pa, labels) in enumerate(rows):
            path = chexpert_path(folder, split, patient, study, view)
            # valid.csv has 0/1 everywhere; train.csv leaves unmentioned findings blank.
            values = [labels.get(c, 0.0 if split == "valid" else None) for c in CHEXPERT_LABELS]
            cells = [path, "Female" if i % 2 else "Male", str(40 + i), frontal, ap_pa]
            cells += ["" if v is None else f"{v:.1f}" for v in values]
            lines.append(",".join(cells))
            write_image(base / path, real_images, 1000 + i)
        (base / folder).mkdir(parents=True, exist_ok=True)
        (base / folder / name).write_text("\n".join(lines) + "\n")
    return ChexpertFixture(base, folder)
