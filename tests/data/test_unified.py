"""The unified stream: pairs and label-only rows from several datasets, policies, text choice, sampling."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image
from typer.testing import CliRunner

from umcl_cli.cli.app import app
from umcl_cli.data.labels import apply_policy
from umcl_cli.data.manifest import PreparedDataset, write_prepared
from umcl_cli.data.reports import sections, select_text
from umcl_cli.data.transforms import ImageTransform
from umcl_cli.data.unified import SourceSpec, UnifiedDataset, WeightedDistributedSampler
from umcl_cli.errors import UsageError

REPORT = "FINDINGS: Mild cardiomegaly. No effusion.\nIMPRESSION: Cardiomegaly. Otherwise normal."


def make_dataset(root: Path, name: str, classes: list[str], rows: list[tuple[str | None, list[float | None]]]) -> Path:
    out = root / name
    (out / "images").mkdir(parents=True)
    records = []
    for i, (text, labels) in enumerate(rows):
        Image.fromarray(np.full((16, 16), 10 * i % 255, dtype=np.uint8)).save(out / "images" / f"{i}.png")
        records.append(
            {
                "image_path": f"images/{i}.png",
                "text": text,
                "split": "train",
                "subject_id": str(i),
                "study_id": str(i),
                "view": "PA",
                "source": name,
                **dict(zip(classes, labels, strict=True)),
            }
        )
    write_prepared(out, pl.DataFrame(records), {"name": name, "classes": classes})
    return out


def stream(sources: list[SourceSpec], **kw) -> UnifiedDataset:
    return UnifiedDataset(sources, transform=ImageTransform(16, (0.5,), (0.5,)), **kw)


@pytest.fixture
def two_sources(tmp_path: Path) -> tuple[PreparedDataset, PreparedDataset]:
    pairs = make_dataset(
        tmp_path,
        "pairs",
        ["Cardiomegaly", "Edema"],
        [(REPORT, [1.0, 0.0]), (REPORT, [None, None]), ("FINDINGS: Edema.", [0.0, -1.0])],
    )
    labels_only = make_dataset(
        tmp_path,
        "labels",
        ["Edema", "Pleural Effusion"],
        [(None, [1.0, 1.0]), (None, [0.0, 0.0]), (None, [-1.0, None]), (None, [None, None])],
    )
    return PreparedDataset(pairs), PreparedDataset(labels_only)


def test_pairs_and_label_rows_train_together(two_sources) -> None:
    pairs, labels_only = two_sources
    ds = stream([SourceSpec(pairs), SourceSpec(labels_only)])
    # Union vocabulary in canonical order; the row with neither text nor labels is dropped.
    assert ds.classes == ["Cardiomegaly", "Edema", "Pleural Effusion"]
    assert len(ds) == 6
    items = [ds[i] for i in range(len(ds))]
    assert items[0]["text"] == "Mild cardiomegaly. No effusion. Cardiomegaly. Otherwise normal."
    assert items[1]["has_labels"] is False  # a pair with no labels is only its own positive
    assert [it["text"] for it in items[3:]] == [None, None, None]  # label-only: text comes from prompts
    assert items[3]["phrase"] == "edema, pleural effusion" and items[3]["class_set"] == [1, 2]
    assert items[4]["phrase"] == "no finding"
    # Classes a source lacks are unknown (NaN), not negative.
    assert math.isnan(float(items[0]["labels"][2])) and math.isnan(float(items[3]["labels"][0]))


def test_template_and_drop_modes(two_sources) -> None:
    pairs, labels_only = two_sources
    templated = stream([SourceSpec(pairs), SourceSpec(labels_only)], label_text="template", template="xray: {}")
    assert templated[3]["text"] == "xray: edema, pleural effusion"
    dropped = stream([SourceSpec(pairs)], label_text="drop")
    assert len(dropped) == 3 and all(dropped[i]["text"] is not None for i in range(3))
    with pytest.raises(UsageError, match="dataset labels gives no trainable rows"):
        stream([SourceSpec(pairs), SourceSpec(labels_only)], label_text="drop")


def test_uncertain_policies() -> None:
    raw = np.array([[1.0, -1.0, np.nan], [-1.0, 0.0, -1.0]], dtype=np.float32)
    classes = ["Atelectasis", "Cardiomegaly", "Edema"]
    assert apply_policy(raw, classes, "ones").tolist() == [[1, 1, 0], [1, 0, 1]]
    assert apply_policy(raw, classes, "zeros").tolist() == [[1, 0, 0], [0, 0, 0]]
    ignored = apply_policy(raw, classes, "ignore")
    assert np.isnan(ignored[0, 1]) and ignored[0, 2] == 0  # blank is "not mentioned" → 0
    gloria = apply_policy(raw, classes, {"Atelectasis": 1, "Cardiomegaly": 0})
    assert gloria[1, 0] == 1 and gloria[0, 1] == 0 and np.isnan(gloria[1, 2])


def test_report_sections_and_random_sentence() -> None:
    assert sections(REPORT) == {
        "findings": "Mild cardiomegaly. No effusion.",
        "impression": "Cardiomegaly. Otherwise normal.",
    }
    assert select_text(REPORT, "findings") == "Mild cardiomegaly. No effusion."
    assert select_text(REPORT, "impression") == "Cardiomegaly. Otherwise normal."
    assert select_text("No sections here.", "impression") == "No sections here."
    import random

    picks = {select_text(REPORT, "random_sentence", random.Random(s)) for s in range(40)}
    assert picks == {"Mild cardiomegaly.", "No effusion.", "Cardiomegaly.", "Otherwise normal."}


def test_sampling_follows_dataset_weights(two_sources) -> None:
    pairs, labels_only = two_sources
    ds = stream([SourceSpec(pairs, weight=3.0), SourceSpec(labels_only, weight=1.0)])
    sampler = WeightedDistributedSampler(ds.weights, seed=0)
    drawn = []
    for epoch in range(400):
        sampler.set_epoch(epoch)
        drawn += list(sampler)
    share = np.mean(ds.origin[np.array(drawn)] == 0)
    assert abs(share - 0.75) < 0.02


def test_uniform_sampler_shards_a_permutation_across_ranks() -> None:
    ranks = [WeightedDistributedSampler(np.ones(10), rank=r, world_size=2, seed=3) for r in (0, 1)]
    for s in ranks:
        s.set_epoch(1)
    a, b = list(ranks[0]), list(ranks[1])
    assert len(a) == len(b) == 5 and sorted(a + b) == list(range(10))
    ranks[0].set_epoch(1, skip=2)
    assert list(ranks[0]) == a[2:]


def test_unmappable_class_names_are_refused_naming_dataset_and_names(tmp_path: Path) -> None:
    out = tmp_path / "nih"
    (out).mkdir()
    pl.DataFrame(
        {"image_path": ["a.png"], "text": [None], "split": ["train"], "Effusion": [1.0], "Infiltrate": [0.0]},
        schema_overrides={"text": pl.String},
    ).write_parquet(out / "manifest.parquet")
    (out / "dataset.json").write_text('{"name": "nih", "classes": ["Effusion", "Infiltrate"]}')
    with pytest.raises(UsageError) as info:
        stream([SourceSpec(PreparedDataset(out))])
    assert "dataset nih" in info.value.problem and "['Effusion', 'Infiltrate']" in info.value.problem


def test_recipe_with_nothing_to_train_on_is_refused(tmp_path: Path) -> None:
    recipe = Path(__file__).parents[2] / "recipes" / "demo.yaml"
    result = CliRunner().invoke(
        app,
        [
            "pretrain",
            str(recipe),
            "--set",
            "data.datasets.0.use_text=false",
            "--set",
            "data.datasets.0.use_labels=false",
        ],
        env={"UMCL_DEBUG": ""},
    )
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "data.datasets.0 (synthetic)" in lines[0] and "nothing to train on" in lines[0]


def test_dataset_without_text_or_labels_is_refused(tmp_path: Path) -> None:
    empty = make_dataset(tmp_path, "blank", ["Edema"], [(None, [None]), (None, [None])])
    with pytest.raises(UsageError) as info:
        stream([SourceSpec(PreparedDataset(empty))])
    assert "dataset blank gives no trainable rows" in info.value.problem


def test_random_sentence_is_a_function_of_seed_epoch_and_row(tmp_path: Path) -> None:
    report = "FINDINGS: " + " ".join(f"Finding number {k} is here." for k in range(12))
    pairs = PreparedDataset(make_dataset(tmp_path, "many", ["Edema"], [(report, [1.0])] * 4))

    def picks(seed: int, epoch: int) -> list[str]:
        ds = stream([SourceSpec(pairs)], text_section="sentence", seed=seed)
        ds.set_epoch(epoch)
        return [ds[i]["text"] for i in range(4)]

    assert picks(0, 0) == picks(0, 0)  # a fresh copy (a worker, a resumed run) picks the same
    assert picks(0, 0) != picks(0, 1) and picks(0, 0) != picks(1, 0)
    assert len(set(picks(0, 0) + picks(0, 1) + picks(0, 2))) > 3


def test_weighted_epochs_draw_each_row_floor_or_ceil_of_its_share() -> None:
    # 30 rows of dataset A weighted 3:1 against 70 rows of B: A's rows are due 75/30 = 2.5 draws an
    # epoch, B's 25/70 = 0.36. Drawing with replacement would repeat B rows and skip A rows.
    weights = np.concatenate([np.full(30, 3.0 / 30), np.full(70, 1.0 / 70)])
    sampler = WeightedDistributedSampler(weights, seed=5)
    for epoch in range(5):
        sampler.set_epoch(epoch)
        counts = np.bincount(list(sampler), minlength=100)
        assert counts.sum() == 100
        assert set(counts[:30]) <= {2, 3} and counts[:30].sum() in (74, 75, 76)
        assert set(counts[30:]) <= {0, 1} and counts[30:].sum() in (24, 25, 26)
    first, second = (list(sampler.set_epoch(e) or sampler) for e in (0, 1))
    assert first != second  # a new draw each epoch


def test_weighted_draws_shard_across_ranks_and_resume() -> None:
    weights = np.concatenate([np.full(7, 2.0), np.full(6, 1.0)])
    ranks = [WeightedDistributedSampler(weights, rank=r, world_size=2, seed=1) for r in (0, 1)]
    for s in ranks:
        s.set_epoch(3)
    a, b = list(ranks[0]), list(ranks[1])
    assert len(a) == len(b) == 7
    counts = np.bincount(a + b, minlength=13)
    assert set(counts[:7]) <= {1, 2} and set(counts[7:]) <= {0, 1} and counts.sum() == 14
    ranks[0].set_epoch(3, skip=4)
    assert list(ranks[0]) == a[4:]
