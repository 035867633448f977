"""``umcl prepare`` for the public datasets, on miniature copies of their real files."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from fixtures_public import (
    NIH_HEADER,
    SIIM_IMAGES,
    SIIM_RLE,
    make_chestxray14,
    make_covidx,
    make_iuxray,
    make_rsna,
    make_siim,
)
from typer.testing import CliRunner

from umcl_cli.cli.app import app
from umcl_cli.data.manifest import PreparedDataset
from umcl_cli.errors import UsageError
from umcl_datasets.chestxray14 import ChestXray14Dataset
from umcl_datasets.covidx import COVIDxDataset
from umcl_datasets.dicom import read_dicom_gray, reader_note
from umcl_datasets.iuxray import IUXrayDataset
from umcl_datasets.iuxray.labels import heading
from umcl_datasets.rsna import RSNADataset
from umcl_datasets.siim import SIIMDataset

runner = CliRunner()
NIH_FINDINGS = [
    "Atelectasis",
    "Cardiomegaly",
    "Pleural Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural Thickening",
    "Hernia",
]
SIIM = list(SIIM_IMAGES)


@pytest.fixture(autouse=True)
def _no_user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the user's ~/.config/umcl/datasets.yaml and UMCL_*_ROOT out of the tests."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for name in ("CHESTXRAY14", "IUXRAY", "RSNA", "SIIM", "COVIDX"):
        monkeypatch.delenv(f"UMCL_{name}_ROOT", raising=False)


def invoke(name: str, *args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, ["prepare", name, *args], env={"UMCL_DEBUG": "", **(env or {})}, terminal_width=200)


def prepare(name: str, root: Path, out: Path, *args: str) -> PreparedDataset:
    result = invoke(name, "--out", str(out), "--root", str(root), *args)
    assert result.exit_code == 0, result.output
    return PreparedDataset(out)


def one_line_error(result, *fragments: str) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def row(ds: PreparedDataset, column: str, value: str) -> dict:
    rows = ds.frame.filter(pl.col(column) == value).to_dicts()
    assert len(rows) == 1, rows
    return rows[0]


def positives(record: dict, classes: list[str]) -> set[str]:
    return {c for c in classes if record[c] == 1}


def assert_absolute_existing(ds: PreparedDataset) -> None:
    for path in ds.frame["image_path"]:
        assert Path(path).is_absolute() and Path(path).is_file(), path


# --- chestxray14 ------------------------------------------------------------------------------------
def test_chestxray14_v2020_labels_splits_and_info(tmp_path: Path) -> None:
    root = make_chestxray14(tmp_path / "nih")
    ds = prepare("chestxray14", root, tmp_path / "out", "--validate-fraction", "0.34")
    assert ds.classes == ["No Finding", *NIH_FINDINGS]
    assert ds.eval_classes == NIH_FINDINGS and ds.task == "multilabel"
    assert ds.frame.height == 10 and ds.info["not_in_split_lists"] == 1  # 00000009 is in neither list
    assert ds.frame["text"].null_count() == 10
    assert_absolute_existing(ds)

    assert positives(row(ds, "study_id", "00000003_001"), ds.classes) == {"Pleural Effusion", "Pleural Thickening"}
    assert positives(row(ds, "study_id", "00000002_000"), ds.classes) == {"No Finding"}
    assert positives(row(ds, "study_id", "00000007_000"), ds.classes) == {
        "Consolidation",
        "Edema",
        "Fibrosis",
        "Pneumonia",
    }
    r = row(ds, "study_id", "00000003_001")
    assert (r["subject_id"], r["view"], r["sex"], r["age"], r["source"]) == ("3", "AP", "F", 74.0, "chestxray14")
    assert r["image_path"] == str(root.resolve() / "images" / "00000003_001.png")
    # Every class is 1 or 0: the NIH labels have no uncertain or unmentioned values.
    assert ds.frame.select(pl.col(ds.classes).is_in([0.0, 1.0]).all()).row(0) == (True,) * 15

    by_split = {s: set(ds.split(s)["subject_id"]) for s in ("train", "validate", "test")}
    assert set(ds.split("test")["study_id"]) == {"00000007_000", "00000008_000"}
    assert len(by_split["validate"]) == 2  # round(0.34 × 6 train_val patients), whole patients
    assert by_split["train"] | by_split["validate"] == {"1", "2", "3", "4", "5", "6"}
    assert not by_split["train"] & by_split["validate"]
    assert ds.info["options"] == {
        "root": str(root.resolve()),
        "on_missing": "error",
        "seed": 0,
        "validate_fraction": 0.34,
    }
    assert ds.info["label_file"] == "Data_Entry_2017_v2020.csv" and ds.info["image_layout"] == "images/"


def test_chestxray14_2017_file_and_kaggle_layout_match_v2020(tmp_path: Path) -> None:
    old = make_chestxray14(tmp_path / "old", variant="2017", layout="kaggle")
    raw = (old / "Data_Entry_2017.csv").read_bytes()
    assert raw.startswith(NIH_HEADER.encode() + b",\r\n") and b",058Y,M,PA," in raw
    new = make_chestxray14(tmp_path / "new")
    a = prepare("chestxray14", old, tmp_path / "a")
    b = prepare("chestxray14", new, tmp_path / "b")
    assert a.info["label_file"] == "Data_Entry_2017.csv"
    assert a.info["image_layout"] == "images_*/images/ (Kaggle)"
    assert row(a, "study_id", "00000001_000")["age"] == 58.0
    assert row(a, "study_id", "00000001_001")["image_path"].endswith("images_002/images/00000001_001.png")
    assert_absolute_existing(a)
    columns = ["study_id", "split", "subject_id", "view", "sex", "age", *a.classes]
    assert a.frame.select(columns).equals(b.frame.select(columns))


def test_chestxray14_split_depends_on_seed_only(tmp_path: Path) -> None:
    root = make_chestxray14(tmp_path / "nih")
    splits = [
        prepare("chestxray14", root, tmp_path / f"s{seed}", "--seed", str(seed), "--validate-fraction", "0.5")
        .frame["split"]
        .to_list()
        for seed in (0, 0, 1, 2)
    ]
    assert splits[0] == splits[1]
    assert any(s != splits[0] for s in splits[2:])


def test_chestxray14_missing_image_error_or_skip(tmp_path: Path) -> None:
    root = make_chestxray14(tmp_path / "nih", drop_images=["00000005_000.png"])
    out = tmp_path / "out"
    one_line_error(
        invoke("chestxray14", "--root", str(root), "--out", str(out)),
        "1 of 10 images are missing",
        "images/00000005_000.png",
        "--on-missing skip",
    )
    assert not out.exists()
    ds = prepare("chestxray14", root, out, "--on-missing", "skip")
    assert ds.frame.height == 9 and ds.info["missing_images_skipped"] == 1
    assert "00000005_000" not in ds.frame["study_id"].to_list()


def test_chestxray14_header_and_file_errors(tmp_path: Path) -> None:
    root = make_chestxray14(tmp_path / "nih")
    entries = root / "Data_Entry_2017_v2020.csv"
    entries.write_text(entries.read_text().replace("Patient ID", "PatientID", 1))
    one_line_error(invoke("chestxray14", "--root", str(root)), "lacks columns ['Patient ID']", "Data_Entry_2017_v2020")

    root = make_chestxray14(tmp_path / "nih2")
    (root / "test_list.txt").unlink()
    one_line_error(invoke("chestxray14", "--root", str(root)), "lacks test_list.txt", "NIH ChestX-ray14")

    root = make_chestxray14(tmp_path / "nih3")
    entries = root / "Data_Entry_2017_v2020.csv"
    entries.write_text(entries.read_text().replace("Infiltration", "Infiltrate"))
    one_line_error(invoke("chestxray14", "--root", str(root)), "outside the 15 NIH labels: ['Infiltrate']")


# --- iuxray -----------------------------------------------------------------------------------------
def test_iuxray_rows_text_and_labels(tmp_path: Path) -> None:
    root = make_iuxray(tmp_path / "iu")
    ds = prepare("iuxray", root, tmp_path / "out", "--validate-fraction", "0.25", "--test-fraction", "0.25")
    assert ds.frame["study_id"].to_list() == ["CXR1", "CXR1", "CXR2", "CXR4", "CXR10"]
    assert ds.info["reports_read"] == 5 and ds.info["reports_skipped_without_images"] == 1
    assert ds.info["reports_without_findings"] == 1 and ds.info["reports_not_indexed"] == 1
    assert ds.info["unmapped_terms"] == {"calcified granuloma": 1, "thoracic vertebrae": 1}
    assert_absolute_existing(ds)
    assert ds.frame["image_path"][0].endswith("NLMCXR_png/CXR1_1_IM-0001-3001.png")

    first = ds.frame.row(0, named=True)
    assert first["text"] == (
        "FINDINGS: The cardiac silhouette and mediastinum size are within normal limits. "
        "There are no XXXX of a pleural effusion.\nIMPRESSION: Normal chest x-XXXX."
    )
    assert row(ds, "study_id", "CXR4")["text"] == "IMPRESSION: Left basilar opacity."
    assert positives(first, ds.classes) == {"No Finding"}
    cxr2 = row(ds, "study_id", "CXR2")
    assert positives(cxr2, ds.classes) == {"Cardiomegaly", "Pleural Effusion", "Atelectasis"}
    assert cxr2["Edema"] == 0.0 and cxr2["No Finding"] == 0.0
    assert positives(row(ds, "study_id", "CXR4"), ds.classes) == {"Lung Opacity"}
    assert all(v is None for k, v in row(ds, "study_id", "CXR10").items() if k in ds.classes)

    # Split by report: the two images of CXR1 stay together; 4 reports → 1 test, 1 validate, 2 train.
    reports = ds.frame.unique("study_id").group_by("split").len()
    assert dict(reports.iter_rows()) == {"train": 2, "validate": 1, "test": 1}
    assert ds.frame.filter(pl.col("study_id") == "CXR1")["split"].n_unique() == 1


def test_iuxray_options_strip_deid_and_unlisted_null(tmp_path: Path) -> None:
    root = make_iuxray(tmp_path / "iu")
    ds = prepare("iuxray", root, tmp_path / "out", "--strip-deid", "--unlisted", "null")
    assert ds.frame["text"][0] == (
        "FINDINGS: The cardiac silhouette and mediastinum size are within normal limits. "
        "There are no of a pleural effusion.\nIMPRESSION: Normal chest x-."
    )
    assert "XXXX" not in "".join(ds.frame["text"].drop_nulls())
    cxr2 = row(ds, "study_id", "CXR2")
    assert cxr2["Cardiomegaly"] == 1.0 and cxr2["Edema"] is None
    assert ds.info["options"]["strip_deid"] is True and ds.info["options"]["unlisted"] == "null"
    assert heading("Opacity/lung/base/left/mild") == "opacity" and heading("Fractures, Bone/ribs") == "fractures, bone"


def test_iuxray_missing_folder_and_image(tmp_path: Path) -> None:
    root = make_iuxray(tmp_path / "iu", drop_images=["CXR4_IM-2050-1001"])
    line = one_line_error(invoke("iuxray", "--root", str(root)), "1 of 5 images are missing", "--on-missing skip")
    assert "NLMCXR_png/CXR4_IM-2050-1001.png" in line
    assert prepare("iuxray", root, tmp_path / "out", "--on-missing", "skip").frame.height == 4
    root = tmp_path / "empty"
    (root / "NLMCXR_png").mkdir(parents=True)
    one_line_error(invoke("iuxray", "--root", str(root)), "lacks ecgen-radiology", "NLMCXR_reports.tgz")


# --- rsna -------------------------------------------------------------------------------------------
def test_rsna_one_row_per_patient(tmp_path: Path) -> None:
    root = make_rsna(tmp_path / "rsna")
    ds = prepare("rsna", root, tmp_path / "out")
    assert ds.classes == ["Pneumonia"] and ds.task == "binary"
    assert ds.frame.height == 10 and ds.frame["subject_id"].n_unique() == 10
    assert set(ds.frame.filter(pl.col("Pneumonia") == 1)["subject_id"]) == {
        "00436515-870c-4b36-a041-de91049b9ab4",
        "00704310-78a8-4b38-8475-49f4573b2dbb",
        "00aecb01-a116-45a2-956c-08d2fa55433f",
        "00c0b293-48e7-4e16-ac76-9269ba535a62",
    }
    assert ds.info["boxes"] == 8
    assert ds.info["detailed_classes"] == {"Lung Opacity": 4, "No Lung Opacity / Not Normal": 4, "Normal": 2}
    assert ds.info["counts"] == {"train": 7, "validate": 1, "test": 2}
    assert row(ds, "subject_id", "0004cfab-14fd-4e49-80ba-63a80b6bddd6")["image_path"] == str(
        root.resolve() / "stage_2_train_images" / "0004cfab-14fd-4e49-80ba-63a80b6bddd6.dcm"
    )


def test_rsna_without_details_or_pydicom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pydicom", None)  # as if pydicom were not installed
    root = make_rsna(tmp_path / "rsna", details=False)
    ds = prepare("rsna", root, tmp_path / "out")
    assert "pip install umcl[dicom]" in ds.info["images"]
    assert ds.info["detailed_classes"] == "stage_2_detailed_class_info.csv not found (optional)"


def test_rsna_wrong_header(tmp_path: Path) -> None:
    root = make_rsna(tmp_path / "rsna")
    labels = root / "stage_2_train_labels.csv"
    labels.write_text(labels.read_text().replace("Target", "label", 1))
    one_line_error(invoke("rsna", "--root", str(root)), "lacks columns ['Target']", "rsna-pneumonia-detection")


# --- siim -------------------------------------------------------------------------------------------
def test_siim_duplicates_negatives_and_layout(tmp_path: Path) -> None:
    root = make_siim(tmp_path / "siim")
    assert (root / "train-rle.csv").read_text().startswith("ImageId, EncodedPixels\n")
    ds = prepare("siim", root, tmp_path / "out")
    assert ds.classes == ["Pneumothorax"] and ds.frame.height == 4
    labels = dict(zip([Path(p).stem for p in ds.frame["image_path"]], ds.frame["Pneumothorax"], strict=True))
    assert labels == {SIIM[0]: 0.0, SIIM[1]: 1.0, SIIM[2]: 0.0, SIIM[3]: 1.0}
    assert ds.info["masks"] == 3 and ds.info["dicoms_without_labels"] == 1
    study, series = SIIM_IMAGES[SIIM[1]]
    r = row(ds, "study_id", study)
    assert r["image_path"] == str(root.resolve() / "dicom-images-train" / study / series / f"{SIIM[1]}.dcm")
    assert_absolute_existing(ds)


def test_siim_header_without_space_and_wrong_header(tmp_path: Path) -> None:
    root = make_siim(tmp_path / "siim")
    (root / "train-rle.csv").write_text(SIIM_RLE.replace("ImageId, EncodedPixels", "ImageId,EncodedPixels"))
    ds = prepare("siim", root, tmp_path / "out")
    assert ds.frame["Pneumothorax"].sum() == 2
    (root / "train-rle.csv").write_text(SIIM_RLE.replace(" EncodedPixels", " Mask"))
    one_line_error(invoke("siim", "--root", str(root)), "lacks columns ['EncodedPixels']")


def test_siim_missing_dicom(tmp_path: Path) -> None:
    root = make_siim(tmp_path / "siim", drop_images=[SIIM[2]])
    one_line_error(invoke("siim", "--root", str(root)), "1 of 4 images are missing", f"{SIIM[2]}.dcm")
    ds = prepare("siim", root, tmp_path / "out", "--on-missing", "skip")
    assert ds.frame.height == 3 and ds.info["missing_images_skipped"] == 1


# --- covidx -----------------------------------------------------------------------------------------
def test_covidx_four_field_lists(tmp_path: Path) -> None:
    root = make_covidx(tmp_path / "covidx")
    ds = prepare("covidx", root, tmp_path / "out", "--validate-fraction", "0.4")
    assert ds.classes == ["No Finding", "Pneumonia", "COVID-19"] and ds.task == "multiclass"
    assert ds.frame.height == 9 and ds.info["counts"]["test"] == 3
    spaced = row(ds, "subject_id", "COVID 00012 b")
    assert positives(spaced, ds.classes) == {"COVID-19"}
    assert spaced["image_path"] == str(root.resolve() / "train" / "12-covid-pa.png")
    normal = row(ds, "subject_id", "Normal patient 7")
    assert (normal["split"], positives(normal, ds.classes)) == ("test", {"No Finding"})
    # One class per row; patient 379's two images share a split; 2 of 5 train patients validate.
    assert ds.frame.select(pl.sum_horizontal(ds.classes) == 1).to_series().all()
    assert ds.frame.filter(pl.col("subject_id") == "379")["split"].n_unique() == 1
    assert ds.frame.filter(pl.col("split") == "validate")["subject_id"].n_unique() == 2
    assert ds.info["origins"] == {"rsna": 4, "cohen": 2, "actmed": 1, "ricord": 1, "sirm": 1}
    assert ds.info["train_file"] == "train_COVIDx9A.txt"
    assert_absolute_existing(ds)


def test_covidx_three_field_and_binary_lists(tmp_path: Path) -> None:
    old = prepare("covidx", make_covidx(tmp_path / "old", "old"), tmp_path / "a")
    assert old.frame["subject_id"].to_list() == ["3", "patient 4 a", "8a88cdd0-fd7a-4d0c-8c4a-2ee8a1e5e4aa", "9"]
    assert old.frame["study_id"][1] == "covid-4a.jpg" and old.info["origins"] == {"not given": 4}
    assert positives(row(old, "subject_id", "9"), old.classes) == {"Pneumonia"}

    binary = prepare("covidx", make_covidx(tmp_path / "bin", "binary"), tmp_path / "b")
    assert binary.classes == ["COVID-19"] and binary.task == "binary"
    assert binary.frame["COVID-19"].to_list() == [1.0, 1.0, 0.0, 0.0, 1.0]


def test_covidx_errors(tmp_path: Path) -> None:
    root = make_covidx(tmp_path / "c", "9A")
    make_covidx(root, "binary")  # a second release in the same folder
    one_line_error(invoke("covidx", "--root", str(root)), "several train lists", "--train-file")
    result = invoke(
        "covidx", "--root", str(root), "--train-file", "train_COVIDx9A.txt", "--test-file", "test_COVIDx-CXR4.txt"
    )
    one_line_error(result, "mix three-class labels")

    root = make_covidx(tmp_path / "d")
    (root / "test_COVIDx9A.txt").write_text("7 ../../secret.png normal sirm\n")
    one_line_error(invoke("covidx", "--root", str(root)), "leave the dataset root", "../../secret.png")
    (root / "test_COVIDx9A.txt").write_text("7 normal\n")
    one_line_error(invoke("covidx", "--root", str(root)), "test_COVIDx9A.txt line 1")
    (root / "test_COVIDx9A.txt").unlink()
    one_line_error(invoke("covidx", "--root", str(root)), "lacks test_*.txt", "COVIDx")


# --- all plugins ------------------------------------------------------------------------------------
@pytest.mark.parametrize("plugin", [ChestXray14Dataset, IUXrayDataset, RSNADataset, SIIMDataset, COVIDxDataset])
def test_every_option_is_described_and_shown(plugin) -> None:
    assert all(field.description for field in plugin.Options.model_fields.values())
    result = invoke(plugin.name, "--show-options")
    assert result.exit_code == 0 and "--on-missing" in result.output and "--root" in result.output


def test_root_from_environment_and_missing_root(tmp_path: Path) -> None:
    root = make_covidx(tmp_path / "covidx")
    out = tmp_path / "out"
    assert invoke("covidx", "--out", str(out), env={"UMCL_COVIDX_ROOT": str(root)}).exit_code == 0
    assert PreparedDataset(out).info["root"] == str(root.resolve())
    one_line_error(invoke("siim"), "no data folder for 'siim'", "UMCL_SIIM_ROOT")


# --- DICOM reader -----------------------------------------------------------------------------------
def test_dicom_reader_without_pydicom_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pydicom", None)
    with pytest.raises(UsageError) as caught:
        read_dicom_gray(tmp_path / "x.dcm")
    assert "pip install umcl[dicom]" in caught.value.one_line()
    assert "pip install umcl[dicom]" in reader_note()


def _write_dicom(path: Path, pixels: np.ndarray, photometric: str) -> None:
    pydicom = pytest.importorskip("pydicom", minversion="3.0")
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    bits = pixels.dtype.itemsize * 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
    ds.PixelData = pixels.tobytes()
    pydicom.dcmwrite(path, ds, enforce_file_format=True)


def test_read_dicom_gray(tmp_path: Path) -> None:
    pixels = np.array([[0, 1000], [2000, 4000]], dtype=np.uint16)
    _write_dicom(tmp_path / "m2.dcm", pixels, "MONOCHROME2")
    _write_dicom(tmp_path / "m1.dcm", pixels, "MONOCHROME1")
    _write_dicom(tmp_path / "u8.dcm", np.array([[3, 200]], dtype=np.uint8), "MONOCHROME2")
    m2 = read_dicom_gray(tmp_path / "m2.dcm")
    assert m2.dtype == np.uint8 and m2.tolist() == [[0, 64], [128, 255]]
    assert read_dicom_gray(tmp_path / "m1.dcm").tolist() == [[255, 191], [128, 0]]
    assert read_dicom_gray(tmp_path / "u8.dcm").tolist() == [[3, 200]]
    (tmp_path / "bad.dcm").write_bytes(b"not a dicom")
    with pytest.raises(UsageError, match="is not a DICOM file"):
        read_dicom_gray(tmp_path / "bad.dcm")
    assert "pydicom" in reader_note() and "installed" in reader_note()
