"""The ``synthetic`` dataset plugin: structure, determinism, label/report agreement, visible findings."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from umcl_cli.data.manifest import CHEXPERT_CLASSES, CHEXPERT_COMPETITION, PreparedDataset
from umcl_datasets.synthetic import (
    HELD_OUT_PHRASES,
    TRAINING_PHRASES,
    SyntheticDataset,
    SyntheticOptions,
    render_images,
    sample_findings,
    write_reports,
)
from umcl_datasets.synthetic.labels import CLASS_INDEX, LEFT, RIGHT, sample_attributes, sample_labels
from umcl_datasets.synthetic.reports import HEDGES

N, PER_CLASS = 400, 20


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> tuple[PreparedDataset, PreparedDataset]:
    out = tmp_path_factory.mktemp("synthetic")
    dirs = SyntheticDataset().prepare(SyntheticOptions(n=N, per_class=PER_CLASS), out)
    assert dirs == [out, out / "5x200"]
    return PreparedDataset(dirs[0]), PreparedDataset(dirs[1])


@pytest.fixture(scope="module")
def reports() -> tuple[np.ndarray, list[str]]:
    findings = sample_findings(4000, np.random.default_rng(7))
    return findings.labels, write_reports(findings, np.random.default_rng(8))


def _image_bytes(ds: PreparedDataset) -> list[bytes]:
    return [ds.image_file(p).read_bytes() for p in ds.frame["image_path"]]


def _auc(positive: np.ndarray, negative: np.ndarray) -> float:
    above = (positive[:, None] > negative[None]).mean()
    return float(above + 0.5 * (positive[:, None] == negative[None]).mean())


def _render(name: str | None, seed: int, side: int | None = None, n: int = 120) -> np.ndarray:
    """``n`` 64-px images with exactly one positive finding (or none), as floats in [0, 1]."""
    labels = np.full((n, len(CHEXPERT_CLASSES)), np.nan, dtype=np.float32)
    labels[:, CLASS_INDEX["No Finding"]] = 1.0 if name is None else 0.0
    if name is not None:
        labels[:, CLASS_INDEX[name]] = 1.0
    rng = np.random.default_rng(seed)
    findings = sample_attributes(labels, rng)
    if side is not None:
        findings.side[:, CLASS_INDEX[name]] = side
    return render_images(findings, rng, size=64).astype(np.float32) / 255


def _region(images: np.ndarray, u: tuple[float, float], v: tuple[float, float]) -> np.ndarray:
    """Mean of a box given in normalised coordinates (-1..1; u left to right, v top to bottom)."""
    size = images.shape[-1]

    def px(t: float) -> int:
        return round((t + 1) / 2 * size)

    return images[:, px(v[0]) : px(v[1]), px(u[0]) : px(u[1])].mean(axis=(1, 2))


def test_main_manifest_follows_the_contract(prepared) -> None:
    main, _ = prepared
    frame = main.frame
    assert main.name == "synthetic" and main.task == "multilabel"
    assert main.classes == list(CHEXPERT_CLASSES)
    assert main.eval_classes == list(CHEXPERT_COMPETITION)
    assert main.info["uncertain_policy"] == "kept as -1" and main.info["options"]["n"] == N
    assert frame.height == N
    assert set(frame["view"].unique()) <= {"PA", "AP"}
    assert frame["source"].unique().to_list() == ["synthetic"]
    assert frame["study_id"].n_unique() == N
    for name in CHEXPERT_CLASSES:
        assert frame.schema[name] == pl.Float32
        assert set(frame[name].drop_nulls().unique()) <= {-1.0, 0.0, 1.0}
    paths = frame["image_path"].to_list()
    assert all(p.startswith("images/") and p.endswith(".png") for p in paths)
    assert all(main.image_file(p).is_file() for p in paths[:50])


def test_splits_are_by_subject_and_label_only_rows_are_train(prepared) -> None:
    frame = prepared[0].frame
    counts = {s: frame.filter(pl.col("split") == s).height for s in ("train", "validate", "test")}
    # Whole patients (at most 4 studies) fill each split, so counts overshoot by at most 3 rows.
    assert 0 <= counts["test"] - 0.2 * N <= 3 and 0 <= counts["validate"] - 0.1 * N <= 3
    assert frame.group_by("subject_id").agg(pl.col("split").n_unique())["split"].max() == 1
    no_text = frame.filter(pl.col("text").is_null())
    assert no_text["split"].unique().to_list() == ["train"]
    assert no_text.height == round(0.4 * counts["train"])
    assert no_text.select(pl.any_horizontal(pl.col(list(CHEXPERT_CLASSES)).is_not_null())).to_series().all()


def test_no_finding_is_one_exactly_when_nothing_else_is_found(prepared) -> None:
    labels = prepared[0].frame.select(CHEXPERT_CLASSES).to_numpy()
    others = np.delete(labels, CLASS_INDEX["No Finding"], axis=1)
    found = np.any((others == 1) | (others == -1), axis=1)
    no_finding = labels[:, CLASS_INDEX["No Finding"]]
    assert not np.isnan(no_finding).any()
    assert np.array_equal(no_finding == 1, ~found)


def test_five_by_200_has_one_positive_competition_class_per_image(prepared) -> None:
    _, five = prepared
    frame = five.frame
    assert five.name == "synthetic-5x200" and five.task == "multiclass"
    assert five.classes == list(CHEXPERT_COMPETITION) == five.eval_classes
    assert not set(CHEXPERT_CLASSES) - set(CHEXPERT_COMPETITION) & set(frame.columns)
    assert frame.height == 5 * PER_CLASS and frame["split"].unique().to_list() == ["test"]
    labels = frame.select(CHEXPERT_COMPETITION).to_numpy()
    assert set(np.unique(labels)) == {0.0, 1.0}
    assert (labels.sum(axis=1) == 1).all()
    assert (labels.sum(axis=0) == PER_CLASS).all()
    assert frame["text"].is_not_null().all()
    assert all(five.image_file(p).is_file() for p in frame["image_path"])
    assert five.image_file(frame["image_path"][0]).parent == five.root / "images"


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    def make(name: str, seed: int) -> tuple[PreparedDataset, PreparedDataset]:
        options = SyntheticOptions(n=80, per_class=4, size=32, seed=seed)
        main, five = SyntheticDataset().prepare(options, tmp_path / name)
        return PreparedDataset(main), PreparedDataset(five)

    a, b, c = make("a", 3), make("b", 3), make("c", 4)
    for first, second in zip(a, b, strict=True):
        assert (first.root / "manifest.parquet").read_bytes() == (second.root / "manifest.parquet").read_bytes()
        assert first.frame.equals(second.frame)
        assert _image_bytes(first) == _image_bytes(second)
    assert not a[0].frame.equals(c[0].frame)
    assert _image_bytes(a[0]) != _image_bytes(c[0])


def test_label_sets_restrict_distinct_label_vectors(tmp_path: Path) -> None:
    findings = sample_findings(2000, np.random.default_rng(0), label_sets=6)
    assert len(np.unique(np.nan_to_num(findings.labels, nan=9.0), axis=0)) == 6
    main, _ = SyntheticDataset().prepare(SyntheticOptions(n=100, per_class=1, size=16, label_sets=3), tmp_path)
    frame = PreparedDataset(main).frame.select(CHEXPERT_CLASSES)
    assert frame.fill_null(9.0).unique().height == 3


def test_prevalence_and_co_occurrence_are_realistic() -> None:
    labels = sample_labels(20000, np.random.default_rng(1))
    found = (labels == 1) | (labels == -1)

    def rate(name: str, where: np.ndarray | None = None) -> float:
        column = found[:, CLASS_INDEX[name]]
        return float(column.mean() if where is None else column[where].mean())

    for name, target in {
        "Support Devices": 0.25,
        "Pleural Effusion": 0.25,
        "Cardiomegaly": 0.12,
        "Fracture": 0.03,
    }.items():
        assert abs(rate(name) - target) < 0.015, name
    cardiomegaly = found[:, CLASS_INDEX["Cardiomegaly"]]
    consolidation = found[:, CLASS_INDEX["Consolidation"]]
    assert rate("Edema", cardiomegaly) > 2 * rate("Edema", ~cardiomegaly)
    assert rate("Pneumonia", consolidation) > 4 * rate("Pneumonia", ~consolidation)
    uncertain = (labels == -1).sum() / found.sum()
    assert 0.05 < uncertain < 0.15
    assert np.isnan(labels).any() and (labels == 0).any()


def test_reports_have_sections_and_name_every_positive_finding(reports) -> None:
    labels, texts = reports
    for row, text in zip(labels, texts, strict=True):
        assert re.fullmatch(r"FINDINGS: .+\nIMPRESSION: .+", text)
        lower = text.lower()
        for name, phrases in TRAINING_PHRASES.items():
            if row[CLASS_INDEX[name]] == 1:
                assert any(p.lower() in lower for p in phrases), (name, text)
    assert any("moderate left pleural effusion" in t.lower() for t in texts)
    assert any("no pneumothorax" in t.lower() for t in texts)
    assert any("the lungs are clear" in t.lower() for t in texts)


def test_uncertain_findings_are_hedged(reports) -> None:
    labels, texts = reports
    uncertain_rows = np.flatnonzero((labels == -1).any(axis=1))
    assert len(uncertain_rows) > 100
    for row in uncertain_rows:
        assert any(h in texts[row].lower() for h in HEDGES), texts[row]


def test_held_out_phrases_never_occur_in_reports(reports) -> None:
    _, texts = reports
    corpus = "\n".join(texts).lower()
    assert set(CHEXPERT_COMPETITION) <= set(HELD_OUT_PHRASES)
    for name, phrases in HELD_OUT_PHRASES.items():
        assert len(phrases) >= 2
        for phrase in phrases:
            assert phrase.lower() not in corpus, (name, phrase)
            assert all(phrase.lower() not in p.lower() for p in TRAINING_PHRASES[name])


def test_pleural_effusion_is_visible_on_its_side() -> None:
    # The patient's left is the image's right: the left costophrenic region brightens with fluid.
    none, left, right = (
        _render(None, 1),
        _render("Pleural Effusion", 2, LEFT),
        _render("Pleural Effusion", 3, RIGHT),
    )
    box = {"u": (0.55, 0.75), "v": (0.3, 0.45)}
    assert _auc(_region(left, **box), _region(none, **box)) > 0.9
    assert _auc(_region(left, **box), _region(right, **box)) > 0.9


def test_cardiomegaly_widens_the_heart() -> None:
    def heart_width(images: np.ndarray) -> np.ndarray:
        # Count columns at heart level brighter than halfway between lung and heart.
        size = images.shape[-1]
        band = images[:, round(0.6 * size) : round(0.7 * size), round(0.15 * size) : round(0.85 * size)].mean(1)
        threshold = (np.percentile(band, 95, axis=1) + np.percentile(band, 5, axis=1)) / 2
        return (band > threshold[:, None]).sum(axis=1)

    assert _auc(heart_width(_render("Cardiomegaly", 4)), heart_width(_render(None, 5))) > 0.9


def test_bad_options_give_clear_messages() -> None:
    for bad, field in [
        ({"n": 10}, "n"),
        ({"size": 8}, "size"),
        ({"size": 1024}, "size"),
        ({"label_only_fraction": 1.5}, "label_only_fraction"),
        ({"label_sets": 0}, "label_sets"),
        ({"per_class": 0}, "per_class"),
        ({"validate_fraction": -0.1}, "validate_fraction"),
        ({"colour": True}, "colour"),
    ]:
        with pytest.raises(ValidationError, match=field):
            SyntheticOptions(**bad)
    with pytest.raises(ValidationError, match="leaves too little for train"):
        SyntheticOptions(validate_fraction=0.3, test_fraction=0.6)
    assert all(f.description for f in SyntheticOptions.model_fields.values())
