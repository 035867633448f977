"""``umcl prepare mimic`` on a faithful miniature MIMIC-CXR-JPG + reports, and one end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from e2e_helpers import RECIPES, TINY
from fixtures_real import (
    EXPECTED_SECTIONS,
    METADATA_HEADER,
    MIMIC_IMAGES,
    REPORTS,
    STUDY_WITHOUT_LABELS,
    STUDY_WITHOUT_REPORT,
    MimicFixture,
    assert_one_line_error,
    dicom_id,
    invoke,
    write_chexpert,
    write_gz_csv,
    write_mimic,
    zip_reports,
)

from umcl_cli.data.manifest import CHEXPERT_CLASSES, PreparedDataset
from umcl_datasets.mimic.sections import canonical_header, parse_report


def prepare(fixture: MimicFixture, out: Path, *extra: str) -> PreparedDataset:
    result = invoke(
        "prepare", "mimic", "--out", str(out), "--root", str(fixture.root), "--reports", str(fixture.reports), *extra
    )
    assert result.exit_code == 0, result.output
    return PreparedDataset(out)


def by_study(ds: PreparedDataset, column: str) -> dict[int, object]:
    return {int(s): v for s, v in zip(ds.frame["study_id"], ds.frame[column], strict=True)}


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory) -> MimicFixture:
    return write_mimic(tmp_path_factory.mktemp("mimic"))


@pytest.fixture(scope="module")
def default(fixture: MimicFixture, tmp_path_factory: pytest.TempPathFactory) -> PreparedDataset:
    return prepare(fixture, tmp_path_factory.mktemp("out") / "mimic")


@pytest.mark.parametrize("study", sorted(REPORTS))
def test_sections_of_each_report_quirk(study: int) -> None:
    assert tuple(parse_report(REPORTS[study])) == EXPECTED_SECTIONS[study]


def test_header_variants_and_phi_strip() -> None:
    assert [canonical_header(h) for h in ("CONCLUSION", "FINDINGS/IMPRESSION", "IMPRESSON", "FINDNGS")] == [
        "impression",
        "impression",
        "impression",
        "findings",
    ]
    assert canonical_header("COMPARISON") == "comparison"
    assert parse_report(REPORTS[53189527], strip_phi=True).findings == "Patchy opacity at the left base, new since."
    assert parse_report(REPORTS[50414267], always_last=True).last_paragraph == "No acute cardiopulmonary process."


def test_manifest_joins_images_splits_labels_and_reports(default: PreparedDataset, fixture: MimicFixture) -> None:
    frame = default.frame
    assert frame.height == len(MIMIC_IMAGES) and default.info["counts"] == {"train": 8, "validate": 1, "test": 2}
    assert frame["image_path"].to_list() == [str(fixture.image(i).resolve()) for i in range(len(MIMIC_IMAGES))]
    assert frame["dicom_id"].to_list() == [dicom_id(i) for i in range(len(MIMIC_IMAGES))]
    assert frame["view"].to_list() == [v or None for _, _, v, _ in MIMIC_IMAGES]
    assert frame["split"].to_list() == [s for *_, s in MIMIC_IMAGES]
    assert frame["subject_id"][0] == "10000032" and frame["source"].unique().to_list() == ["mimic-cxr"]
    assert frame["StudyTime"][0] == 80556.875 and frame["StudyDate"][0] == 21800506
    text = by_study(default, "text")
    assert text[50414267] == (
        "FINDINGS: The lungs are clear. There is no pleural effusion or pneumothorax. Heart size is normal.\n"
        "IMPRESSION: No acute cardiopulmonary process."
    )
    assert text[54567890] == "IMPRESSION: Moderate pulmonary edema."
    assert text[52345678] == "Endotracheal tube ends 4 cm above the carina. No pneumothorax."
    assert text[STUDY_WITHOUT_REPORT] is None
    assert by_study(default, "findings")[53456789] == EXPECTED_SECTIONS[53456789][0]
    assert by_study(default, "impression")[51234567] == "Small right effusion."
    # Labels are per study: both images of 50414267 carry them; a study without a row has none.
    assert by_study(default, "No Finding")[50414267] == 1.0
    assert by_study(default, "Pneumonia")[53189527] == -1.0 and by_study(default, "Consolidation")[53189527] == 0.0
    unlabelled = frame.filter(pl.col("study_id") == str(STUDY_WITHOUT_LABELS))
    assert unlabelled.select(pl.all_horizontal(pl.col(list(CHEXPERT_CLASSES)).is_null())).item()
    info = default.info
    assert info["uncertain_policy"] == "kept as -1" and info["labeler"] == "chexpert" and info["views"] == "all"
    assert info["section"] == "both" and info["phi"] == "keep" and info["on_missing"] == "error"
    assert info["task"] == "multilabel" and info["eval_classes"] == [
        "Atelectasis",
        "Cardiomegaly",
        "Consolidation",
        "Edema",
        "Pleural Effusion",
    ]
    assert info["studies_without_label_row"] == 1 and info["studies_without_report"] == 1
    assert info["reports_without_findings_or_impression"] == 1 and info["with_text"] == 10


def test_labeler_views_section_and_phi_options(fixture: MimicFixture, tmp_path: Path) -> None:
    negbio = prepare(fixture, tmp_path / "negbio", "--labeler", "negbio")
    assert by_study(negbio, "Pneumonia")[53189527] == 1.0
    views = prepare(fixture, tmp_path / "views", "--views", "PA,AP")
    assert sorted(set(views.frame["view"])) == ["AP", "PA"] and views.frame.height == 8
    assert views.info["views"] == ["PA", "AP"] and views.info["dropped_by_views"] == 3
    impression = by_study(prepare(fixture, tmp_path / "imp", "--section", "impression"), "text")
    assert impression[50414267] == "No acute cardiopulmonary process."
    assert impression[52345678] == "Endotracheal tube ends 4 cm above the carina. No pneumothorax."
    findings = by_study(prepare(fixture, tmp_path / "find", "--section", "findings"), "text")
    assert (
        findings[55678901] == "Linear opacity at the right base." and findings[54567890] == "Moderate pulmonary edema."
    )
    last = by_study(prepare(fixture, tmp_path / "last", "--section", "last_paragraph"), "text")
    assert last[57375967] == "CONCLUSION: Cardiomegaly without edema."
    stripped = prepare(fixture, tmp_path / "phi", "--phi", "strip")
    assert by_study(stripped, "findings")[53189527] == "Patchy opacity at the left base, new since."
    assert stripped.info["phi"] == "strip"


@pytest.mark.parametrize("prefix", ["", "mimic-cxr-reports/"])
def test_reports_read_from_the_zip(
    fixture: MimicFixture, default: PreparedDataset, tmp_path: Path, prefix: str
) -> None:
    archive = zip_reports(fixture.reports, tmp_path / "mimic-cxr-reports.zip", prefix)
    args = ("prepare", "mimic", "--out", str(tmp_path / "z"), "--root", str(fixture.root), "--reports", str(archive))
    assert invoke(*args).exit_code == 0
    zipped = PreparedDataset(tmp_path / "z")
    assert zipped.frame["text"].to_list() == default.frame["text"].to_list()


def test_rerun_replaces_the_manifest(fixture: MimicFixture, tmp_path: Path) -> None:
    prepare(fixture, tmp_path / "m", "--section", "findings")
    again = prepare(fixture, tmp_path / "m")
    assert (
        again.info["section"] == "both" and [p.name for p in (tmp_path / "m").iterdir() if p.name.startswith(".")] == []
    )


def test_missing_table_names_the_file_and_the_download(fixture: MimicFixture, tmp_path: Path) -> None:
    result = invoke("prepare", "mimic", "--root", str(tmp_path), "--reports", str(fixture.reports))
    assert_one_line_error(result, "mimic-cxr-2.0.0-metadata.csv.gz", "MIMIC-CXR-JPG 2.0.0 from PhysioNet")


def test_wrong_header_names_the_missing_column(tmp_path: Path) -> None:
    copy = write_mimic(tmp_path)
    write_gz_csv(copy.root / "mimic-cxr-2.0.0-metadata.csv.gz", METADATA_HEADER.replace("ViewPosition", "View"), [])
    result = invoke("prepare", "mimic", "--root", str(copy.root), "--reports", str(copy.reports))
    assert_one_line_error(result, "lacks columns ['ViewPosition']", "mimic-cxr-2.0.0-metadata.csv.gz")


def test_missing_images_error_or_skip(tmp_path: Path) -> None:
    copy = write_mimic(tmp_path)
    copy.image(4).unlink()
    args = ("prepare", "mimic", "--root", str(copy.root), "--reports", str(copy.reports), "--out", str(tmp_path / "o"))
    assert_one_line_error(invoke(*args), "1 of 11 images are missing", dicom_id(4), "--on-missing skip")
    result = invoke(*args, "--on-missing", "skip")
    assert result.exit_code == 0, result.output
    skipped = PreparedDataset(tmp_path / "o")
    assert skipped.frame.height == 10 and dicom_id(4) not in skipped.frame["dicom_id"].to_list()
    assert skipped.info["missing_images_skipped"] == 1


def test_dicom_id_cannot_escape_the_root(tmp_path: Path) -> None:
    copy = write_mimic(tmp_path)
    row = ["../../../../etc/passwd", 10000032, 50414267, "", "PA", 1, 1, 21800506, 1.5, "", "", ""]
    write_gz_csv(copy.root / "mimic-cxr-2.0.0-metadata.csv.gz", METADATA_HEADER, [row])
    result = invoke("prepare", "mimic", "--root", str(copy.root), "--reports", str(copy.reports))
    assert_one_line_error(result, "leave the dataset root", "../../../../etc/passwd")


def test_unknown_view_lists_the_ones_present(fixture: MimicFixture) -> None:
    result = invoke("prepare", "mimic", "--root", str(fixture.root), "--views", "PA,XX")
    assert_one_line_error(result, "--views XX not found", "'AP', 'LATERAL', 'LL', 'PA'")


def test_root_from_env_then_config_else_says_where_it_looked(
    fixture: MimicFixture, default: PreparedDataset, tmp_path: Path
) -> None:
    config_home = tmp_path / "config"
    env = {"UMCL_MIMIC_ROOT": None, "XDG_CONFIG_HOME": str(config_home)}
    reports = ("--reports", str(fixture.reports))
    result = invoke("prepare", "mimic", *reports, env=env)
    assert_one_line_error(
        result, "--root not given", "$UMCL_MIMIC_ROOT not set", str(config_home / "umcl/datasets.yaml")
    )
    out = ("--out", str(tmp_path / "o"))
    assert invoke("prepare", "mimic", *reports, *out, env={**env, "UMCL_MIMIC_ROOT": str(fixture.root)}).exit_code == 0
    (config_home / "umcl").mkdir(parents=True)
    (config_home / "umcl/datasets.yaml").write_text(f"mimic: {fixture.root}\n")
    assert invoke("prepare", "mimic", *reports, *out, env=env).exit_code == 0
    assert json.loads((tmp_path / "o/dataset.json").read_text())["source"]["root"] == str(fixture.root.resolve())
    result = invoke("prepare", "mimic", *reports, env={**env, "UMCL_MIMIC_ROOT": str(tmp_path / "nowhere")})
    assert_one_line_error(result, "nowhere (from $UMCL_MIMIC_ROOT) does not exist")


def test_reports_without_any_match_are_refused(fixture: MimicFixture, tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    result = invoke("prepare", "mimic", "--root", str(fixture.root), "--reports", str(tmp_path))
    assert_one_line_error(result, "none of the 9 studies has a report", "mimic-cxr-reports")


@pytest.mark.slow
def test_prepare_pretrain_zeroshot_end_to_end(tmp_path: Path) -> None:
    mimic = write_mimic(tmp_path / "src", real_images=True)
    chexpert = write_chexpert(tmp_path / "src", real_images=True)
    data = tmp_path / "data"
    for args in (
        ("mimic", "--root", str(mimic.root), "--reports", str(mimic.reports)),
        ("chexpert-5x200", "--root", str(chexpert.root), "--per-class", "2"),
    ):
        result = invoke("prepare", *args, "--data-root", str(data))
        assert result.exit_code == 0, result.output
    overrides = [
        *TINY,
        "data.datasets.0.name=mimic",
        "data.image_size=32",
        "train.max_steps=3",
        "train.batch_size=4",
        "train.warmup_steps=1",
    ]
    run = tmp_path / "run"
    args = ["pretrain", str(RECIPES / "demo.yaml"), "--out", str(run), "--data-root", str(data)]
    result = invoke(*args, *(a for s in overrides for a in ("--set", s)))
    assert result.exit_code == 0, result.output
    zs = tmp_path / "zs"
    result = invoke(
        "zeroshot", "--ckpt", str(run / "model.pt"), "--dataset", "chexpert-5x200", "--data-root", str(data),
        "--out", str(zs), "--bootstrap", "10",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((zs / "metrics.json").read_text())
    assert metrics["task"] == "multiclass" and metrics["n"] == 10 and metrics["dataset"] == "chexpert-5x200"
