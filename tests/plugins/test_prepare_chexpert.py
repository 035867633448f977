"""``umcl prepare chexpert`` and ``chexpert-5x200`` on a faithful miniature CheXpert."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from fixtures_real import (
    CHEXPERT_HEADER,
    CHEXPERT_TRAIN,
    CHEXPERT_VALID,
    CLEAN_PER_CLASS,
    COMPETITION,
    ChexpertFixture,
    assert_one_line_error,
    invoke,
    write_chexpert,
)

from umcl_cli.data.manifest import PreparedDataset

N_TRAIN, N_VALID = len(CHEXPERT_TRAIN), len(CHEXPERT_VALID)
ALL_UNCERTAIN = "patient00019/study1"  # -1 for the five competition classes and Lung Opacity


def prepare(name: str, fixture: ChexpertFixture, out: Path, *extra: str) -> PreparedDataset:
    result = invoke("prepare", name, "--root", str(fixture.root), "--out", str(out), *extra)
    assert result.exit_code == 0, result.output
    return PreparedDataset(out)


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory) -> ChexpertFixture:
    return write_chexpert(tmp_path_factory.mktemp("chexpert"))


@pytest.fixture(scope="module")
def five(fixture: ChexpertFixture, tmp_path_factory: pytest.TempPathFactory) -> PreparedDataset:
    return prepare("chexpert-5x200", fixture, tmp_path_factory.mktemp("five") / "c5", "--per-class", "2")


def row(ds: PreparedDataset, study: str, view: str = "view1_frontal.jpg") -> dict[str, object]:
    return ds.frame.filter(pl.col("csv_path").str.ends_with(f"{study}/{view}")).row(0, named=True)


def test_splits_ids_views_and_labels(fixture: ChexpertFixture, tmp_path: Path) -> None:
    ds = prepare("chexpert", fixture, tmp_path / "c")
    frame = ds.frame
    assert frame.height == N_TRAIN + N_VALID and ds.info["counts"]["test"] == N_VALID
    assert frame.filter(pl.col("split") == "test")["subject_id"].unique().sort().to_list() == [
        "patient64541",
        "patient64542",
    ]
    # 5% of the 20 train patients is one patient, all of whose images go to validate.
    validate = set(frame.filter(pl.col("split") == "validate")["subject_id"])
    assert len(validate) == 1 and not validate & set(frame.filter(pl.col("split") == "train")["subject_id"])
    lateral = row(ds, "patient00016/study1", "view2_lateral.jpg")
    assert lateral["view"] == "LATERAL" and lateral["study_id"] == "patient00016/study1"
    assert lateral["image_path"] == str(fixture.root.resolve() / lateral["csv_path"])
    assert Path(lateral["image_path"]).is_file() and lateral["text"] is None
    first = row(ds, "patient00001/study1")
    assert first["view"] == "PA" and first["Atelectasis"] == 1.0 and first["Fracture"] == 0.0
    assert first["Edema"] is None and first["No Finding"] is None  # blank stays "not mentioned"
    assert row(ds, "patient00018/study1")["No Finding"] == 1.0
    assert row(ds, ALL_UNCERTAIN)["Edema"] == -1.0  # default policy: ignore, kept as -1
    info = ds.info
    assert info["uncertain_policy"].startswith("ignore: kept as -1") and info["uncertain_map"] == {}
    assert info["validate_fraction"] == 0.05 and info["frontal_only"] is False and info["excluded_5x200"] is None
    assert info["task"] == "multilabel" and info["eval_classes"] == list(COMPETITION)
    assert "valid.csv → test" in info["splits"]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("ignore", {"Atelectasis": -1, "Cardiomegaly": -1, "Edema": -1, "Lung Opacity": -1}),
        ("ones", {"Atelectasis": 1, "Cardiomegaly": 1, "Edema": 1, "Lung Opacity": 1}),
        ("zeros", {"Atelectasis": 0, "Cardiomegaly": 0, "Edema": 0, "Lung Opacity": 0}),
        ("gloria", {"Atelectasis": 1, "Cardiomegaly": 0, "Consolidation": 0, "Edema": 1, "Lung Opacity": -1}),
    ],
)
def test_uncertain_policy_applied_and_recorded(
    fixture: ChexpertFixture, tmp_path: Path, policy: str, expected: dict[str, int]
) -> None:
    ds = prepare("chexpert", fixture, tmp_path / policy, "--uncertain", policy)
    values = row(ds, ALL_UNCERTAIN)
    assert {name: values[name] for name in expected} == expected
    assert ds.info["uncertain_policy"].startswith(policy) and row(ds, "patient00001/study1")["Edema"] is None


def test_frontal_only_and_validate_fraction_are_recorded(fixture: ChexpertFixture, tmp_path: Path) -> None:
    ds = prepare("chexpert", fixture, tmp_path / "f", "--frontal-only", "--validate-fraction", "0.25", "--seed", "3")
    assert set(ds.frame["Frontal/Lateral"]) == {"Frontal"} and ds.frame.height == N_TRAIN + N_VALID - 2
    assert ds.info["frontal_only"] is True and ds.info["laterals_dropped"] == 2
    assert ds.frame.filter(pl.col("split") == "validate")["subject_id"].n_unique() == 5
    again = prepare("chexpert", fixture, tmp_path / "g", "--frontal-only", "--validate-fraction", "0.25", "--seed", "3")
    assert again.frame["split"].to_list() == ds.frame["split"].to_list()


def test_full_size_prefix_and_root_given_as_the_dataset_folder(tmp_path: Path) -> None:
    full = write_chexpert(tmp_path / "full", small=False)
    ds = prepare("chexpert", ChexpertFixture(full.root / "CheXpert-v1.0", "CheXpert-v1.0"), tmp_path / "c")
    assert ds.info["version"] == "CheXpert-v1.0" and ds.frame["csv_path"][0].startswith("CheXpert-v1.0/train/")
    assert ds.info["source"]["root"] == str(full.root.resolve())


def test_both_sizes_present_asks_which(tmp_path: Path) -> None:
    write_chexpert(tmp_path, small=True)
    write_chexpert(tmp_path, small=False)
    assert_one_line_error(invoke("prepare", "chexpert", "--root", str(tmp_path)), "holds both", "--folder")
    result = invoke(
        "prepare", "chexpert", "--root", str(tmp_path), "--folder", "CheXpert-v1.0", "--out", str(tmp_path / "o")
    )
    assert result.exit_code == 0, result.output


def test_five_by_200_follows_glorias_rule(five: PreparedDataset) -> None:
    frame = five.frame
    assert five.info["task"] == "multiclass" and five.classes == list(COMPETITION) and five.info["per_class"] == 2
    assert frame.height == 10 and set(frame["split"]) == {"test"}
    assert set(frame["Frontal/Lateral"]) == {"Frontal"} and frame["text"].null_count() == 10
    assert frame.select(pl.sum_horizontal(COMPETITION)).to_series().to_list() == [1.0] * 10
    assert [frame.filter(pl.col(c) == 1).height for c in COMPETITION] == [2] * 5
    # Rows with an uncertain label, a second positive, or a lateral view never qualify.
    distractors = {"patient00016", "patient00017", "patient00018", "patient00019"}
    assert not distractors & set(frame["subject_id"])
    clean = {f"patient{p:05d}" for p in range(1, 1 + len(COMPETITION) * CLEAN_PER_CLASS)} | {"patient00020"}
    assert set(frame["subject_id"]) <= clean


def test_five_by_200_is_seeded(fixture: ChexpertFixture, five: PreparedDataset, tmp_path: Path) -> None:
    again = prepare("chexpert-5x200", fixture, tmp_path / "again", "--per-class", "2")
    assert again.frame["csv_path"].to_list() == five.frame["csv_path"].to_list()


def test_five_by_200_needs_enough_candidates(fixture: ChexpertFixture) -> None:
    result = invoke("prepare", "chexpert-5x200", "--root", str(fixture.root), "--per-class", "4")
    assert_one_line_error(result, "only 3 train.csv images qualify for Atelectasis", "--per-class to 3")


def test_chexpert_excludes_the_5x200_images(five: PreparedDataset, tmp_path: Path) -> None:
    # A full-size copy still matches a 5x200 set drawn from the small one (paths match below the folder).
    full = write_chexpert(tmp_path / "full", small=False)
    ds = prepare("chexpert", full, tmp_path / "c", "--exclude-5x200", str(five.root))
    selected = {p.split("/", 1)[1] for p in five.frame["csv_path"]}
    assert not selected & {p.split("/", 1)[1] for p in ds.frame["csv_path"]}
    assert ds.frame.height == N_TRAIN + N_VALID - 10
    assert ds.info["excluded_5x200"] == {"dir": str(five.root), "draws": 1, "images": 10}


def test_exclude_needs_a_5x200_directory(fixture: ChexpertFixture, tmp_path: Path) -> None:
    other = prepare("chexpert", fixture, tmp_path / "c")
    result = invoke("prepare", "chexpert", "--root", str(fixture.root), "--exclude-5x200", str(other.root))
    assert_one_line_error(result, "is a prepared 'chexpert' dataset, not chexpert-5x200")


def test_missing_csv_and_wrong_header(tmp_path: Path) -> None:
    assert_one_line_error(
        invoke("prepare", "chexpert", "--root", str(tmp_path)),
        "contains neither CheXpert-v1.0/train.csv nor CheXpert-v1.0-small/train.csv",
        "Stanford AIMI",
    )
    fixture = write_chexpert(tmp_path)
    train = tmp_path / fixture.folder / "train.csv"
    train.write_text(train.read_text().replace("Pleural Effusion", "Pleural_Effusion", 1))
    result = invoke("prepare", "chexpert", "--root", str(tmp_path))
    assert_one_line_error(result, "lacks columns ['Pleural Effusion']", "train.csv")


def test_missing_images_error_or_skip(tmp_path: Path) -> None:
    fixture = write_chexpert(tmp_path)
    (tmp_path / fixture.folder / "valid/patient64542/study1/view1_frontal.jpg").unlink()
    args = ("prepare", "chexpert", "--root", str(tmp_path), "--out", str(tmp_path / "o"))
    assert_one_line_error(invoke(*args), "1 of 25 images are missing", "patient64542", "--on-missing skip")
    assert invoke(*args, "--on-missing", "skip").exit_code == 0
    ds = PreparedDataset(tmp_path / "o")
    assert ds.info["counts"]["test"] == N_VALID - 1 and ds.info["missing_images_skipped"] == 1


def test_paths_cannot_escape_the_root(tmp_path: Path) -> None:
    fixture = write_chexpert(tmp_path)
    (tmp_path / fixture.folder / "valid.csv").write_text(
        CHEXPERT_HEADER + "\n../../etc/passwd,Male,50,Frontal,PA" + ",0.0" * 14 + "\n"
    )
    result = invoke("prepare", "chexpert", "--root", str(tmp_path))
    assert_one_line_error(result, "leave the dataset root", "../../etc/passwd")


def test_five_by_200_draws_are_seeded_and_all_excluded(fixture: ChexpertFixture, tmp_path: Path) -> None:
    first = prepare("chexpert-5x200", fixture, tmp_path / "c5", "--per-class", "2", "--draws", "3", "--seed", "4")
    assert first.info["draws"] == 3 and first.info["draw_dirs"] == ["draw-1", "draw-2"]
    draws = [first, *(PreparedDataset(first.root / d) for d in first.info["draw_dirs"])]
    assert [d.info["seed"] for d in draws] == [4, 5, 6]
    assert all(d.info["draw_dirs"] == [] and d.frame.height == 10 for d in draws[1:])
    # Each draw is the one a single-draw run with its seed gives.
    single = prepare("chexpert-5x200", fixture, tmp_path / "single", "--per-class", "2", "--seed", "5")
    assert draws[1].frame["csv_path"].to_list() == single.frame["csv_path"].to_list()
    ds = prepare("chexpert", fixture, tmp_path / "c", "--exclude-5x200", str(first.root))
    used = {p.split("/", 1)[1] for d in draws for p in d.frame["csv_path"]}
    kept = {p.split("/", 1)[1] for p in ds.frame["csv_path"]}
    assert not used & kept and ds.info["excluded_5x200"]["draws"] == 3
