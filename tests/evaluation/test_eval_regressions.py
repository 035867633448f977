"""Regression tests for the six evaluation bugs of issue 9 (A–F), plus the bootstrap unit and seed.

Each test names the bug it pins; each fails on the code before the fix (noted per test).
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import torch
from sklearn.metrics import roc_auc_score

from umcl_cli.cli.errors import report
from umcl_cli.errors import UsageError
from umcl_cli.evaluation import metrics as M
from umcl_cli.evaluation.labels import bootstrap_units, comparable_rows, label_matrix, multiclass_targets
from umcl_cli.evaluation.prompt_sources import ClassTexts, resolve
from umcl_cli.evaluation.zeroshot import headline_metrics, pair_probability, task_scores
from umcl_cli.model.prompt_learner import PromptLearner


def _unit(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x, dim=-1)


def _pair_texts(n_classes: int, dim: int, seed: int) -> ClassTexts:
    gen = torch.Generator().manual_seed(seed)
    pos = _unit(torch.randn(n_classes, dim, generator=gen))
    neg = _unit(torch.randn(n_classes, dim, generator=gen))
    return ClassTexts(pos, neg, "test", {})


# --------------------------------------------------------------------------- A: saturation


def test_a_zero_shot_auroc_does_not_depend_on_the_logit_scale(tiny_model) -> None:
    # Before: a float32 softmax over [scale·pos, scale·neg] rounded a third of the scores to 1.0 at
    # scale 100, and the ties changed the AUROC.
    gen = torch.Generator().manual_seed(0)
    texts = _pair_texts(3, 16, seed=1)
    labels = (torch.rand(400, 3, generator=gen) < 0.3).float()
    features = _unit(torch.randn(400, 16, generator=gen) + 0.6 * labels @ (texts.positive - texts.negative))
    gap = (features.double() @ texts.positive.double().T - features.double() @ texts.negative.double().T).numpy()
    expected = [roc_auc_score(labels[:, c], gap[:, c]) for c in range(3)]
    tiny_model.logit_scale_max = 1e4
    for scale in (14.3, 100.0, 1000.0):
        tiny_model.logit_scale.data.fill_(math.log(scale))
        scores = task_scores(tiny_model, features, texts, "multilabel")
        result = M.multilabel_auroc(scores, labels, ["a", "b", "c"])
        assert [result["per_class"][c]["auroc"] for c in "abc"] == pytest.approx(expected, abs=1e-6), scale
    # The saturation this guards against: the displayed probability does tie at scale 1000.
    assert torch.unique(pair_probability(features, texts, 1000.0).float()).numel() < features.shape[0] * 3


# --------------------------------------------------------------------------- B: NaN argmax


def test_b_multiclass_targets_never_let_nan_win() -> None:
    # Before: labels.argmax put the target of row 0 on its NaN column, so a perfect scorer got 0.667.
    labels = torch.tensor([[1.0, math.nan, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert multiclass_targets(labels).tolist() == [0, 1, 2]
    headline = headline_metrics("multiclass", ["a", "b", "c"], [], labels.numpy())
    assert headline(torch.eye(3), labels)["accuracy"] == 1.0


def test_b_a_row_without_exactly_one_positive_is_refused() -> None:
    with pytest.raises(UsageError, match="1 of 2 rows do not have exactly one positive"):
        multiclass_targets(torch.tensor([[1.0, 0.0], [1.0, 1.0]]))


# --------------------------------------------------------------------------- C: bootstrap class set


def test_c_bootstrap_of_a_mean_auroc_skips_resamples_that_lose_a_class() -> None:
    # Before: a resample where the rare class had no positive averaged two classes instead of three
    # and was not counted as skipped.
    rng = np.random.default_rng(0)
    n = 60
    labels = np.zeros((n, 3))
    labels[:30, 0] = 1
    labels[::2, 1] = 1
    labels[[5, 40], 2] = 1  # a rare class: 2 positives
    scores = labels * 0.5 + rng.random((n, 3))
    classes = ["common", "half", "rare"]
    headline = headline_metrics("multilabel", classes, classes, labels)
    ci = M.bootstrap_cis(headline, torch.from_numpy(scores), torch.from_numpy(labels), n=300, seed=4)
    # Reference: the same resamples, a mean over all three classes, undefined when one is unscorable.
    reference = []
    for index in np.random.default_rng(4).integers(0, n, size=(300, n)):
        y, s = labels[index], scores[index]
        if any(y[:, c].min() == y[:, c].max() for c in range(3)):
            continue
        reference.append(np.mean([roc_auc_score(y[:, c], s[:, c]) for c in range(3)]))
    entry = ci["mean_auroc"]
    assert entry["skipped"] == 300 - len(reference) > 0
    assert entry["low"] == pytest.approx(np.percentile(reference, 2.5), abs=1e-6)
    assert entry["high"] == pytest.approx(np.percentile(reference, 97.5), abs=1e-6)


# --------------------------------------------------------------------------- D: duplicate reports


def test_d_an_identical_report_of_another_pair_is_not_credited_in_either_direction() -> None:
    # Before: image 1 tied its own text with the identical text 0 and got rank 0 (credited), while
    # text→image was strictly per instance. Now both directions follow the same stable-sort rule.
    images = _unit(torch.tensor([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 0.0, 1.0]]))
    texts = _unit(torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))  # 0 and 1 identical
    instance = M.retrieval_metrics(images, texts, ks=(1,))
    assert instance["image_to_text_R@1"] == pytest.approx(2 / 3)  # image 1 loses to the earlier copy
    # Report-level: the two copies are one item, so image 1 finds its report at rank 1.
    ids = M.report_items(["No acute findings.", "no  acute findings.", "Effusion."])
    assert ids.tolist() == [0, 0, 1]
    report_level = M.retrieval_metrics(images, texts, ks=(1,), report_ids=ids)
    assert report_level["image_to_text_report_R@1"] == 1.0
    assert report_level["text_to_image_report_R@1"] == 1.0


def test_d_views_of_one_study_and_copies_of_a_report_merge_transitively() -> None:
    texts = ["a", "b", "a", "c", "d"]
    studies = ["s1", "s2", "s3", "s2", None]
    # 0~2 (same text), 1~3 (same study); 4 alone.
    assert M.report_items(texts, studies).tolist() == [0, 1, 0, 1, 2]


# --------------------------------------------------------------------------- E: NaN scores


def test_e_nan_scores_are_refused_with_a_count() -> None:
    # Before: NaN compared as "not greater" and ranked above everything: AUROC 1.0.
    scores, labels = torch.tensor([0.1, math.nan, 0.3, 0.4]), torch.tensor([0, 1, 0, 1])
    with pytest.raises(M.NonFiniteScores, match="1 NaN and 0 infinite values out of 4"):
        M.binary_metrics(scores, labels)
    with pytest.raises(M.NonFiniteScores, match="0 NaN and 1 infinite"):
        M.multilabel_auroc(torch.tensor([[math.inf], [0.0]]), torch.tensor([[1.0], [0.0]]), ["x"])
    features = torch.eye(3)
    features[0, 0] = math.nan
    with pytest.raises(M.NonFiniteScores, match="image features hold 1 NaN"):
        M.retrieval_metrics(features, torch.eye(3))
    with pytest.raises(M.NonFiniteScores):
        M.multiclass_metrics(torch.tensor([[math.nan, 0.0]]), torch.tensor([0]), ["a", "b"])


def test_e_the_refusal_is_one_line_with_a_fix(capsys: pytest.CaptureFixture[str]) -> None:
    try:
        M.binary_metrics(torch.tensor([math.nan, 0.0]), torch.tensor([1, 0]))
    except M.NonFiniteScores as exc:
        assert report(exc) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "1 NaN" in lines[0] and "retrain" in lines[0]


# --------------------------------------------------------------------------- F: blank labels


def test_f_blank_labels_are_negatives_for_every_command() -> None:
    # Before: retrieve mapped blank to -9 (a value of its own) while zero-shot mapped it to 0, so a
    # "not mentioned" row and a "negative" row were different label sets for P@K only.
    frame = pl.DataFrame({"A": [1.0, None, 0.0, -1.0], "B": [0.0, 0.0, None, -1.0]})
    labels = label_matrix(frame, ["A", "B"])
    np.testing.assert_array_equal(labels[:3], [[1, 0], [0, 0], [0, 0]])
    assert np.isnan(labels[3]).all()
    rows = comparable_rows(labels)
    assert (rows[1] == rows[2]).all() and not (rows[3] == rows[2]).any()
    # P@1 with identical features for rows 1 and 2: each retrieves a row with the same labels.
    features = _unit(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    result = M.retrieval_metrics(features, features, ks=(1,), labels=torch.from_numpy(rows))
    assert result["image_to_text_P@1"] == 1.0


# --------------------------------------------------------------------------- bootstrap unit and seed


def test_bootstrap_by_patient_keeps_each_patients_rows_together() -> None:
    values = np.repeat(np.arange(10.0), 3)  # 10 patients, 3 images each
    patients = np.repeat(np.arange(10), 3)

    def whole_patients(v: np.ndarray) -> dict[str, float]:
        counts = np.unique(v, return_counts=True)[1]
        return {"whole": float((counts % 3 == 0).all()), "size": float(len(v))}

    ci = M.bootstrap_cis(whole_patients, values, n=50, seed=2, clusters=patients)
    assert ci["whole"]["low"] == ci["whole"]["high"] == 1.0
    assert ci["size"]["low"] == ci["size"]["high"] == 30.0  # 10 patients drawn, 3 rows each
    by_image = M.bootstrap_cis(whole_patients, values, n=50, seed=2)
    assert by_image["whole"]["low"] == 0.0


def test_bootstrap_seed_changes_the_interval_and_is_reproducible() -> None:
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (200,), generator=gen)
    scores = torch.randn(200, generator=gen) + labels

    def auroc(s: torch.Tensor, y: torch.Tensor) -> float | None:
        return M.binary_metrics(s, y)["auroc"]

    first = M.bootstrap_ci(auroc, scores, labels, n=100, seed=1)
    assert M.bootstrap_ci(auroc, scores, labels, n=100, seed=1) == first
    assert M.bootstrap_ci(auroc, scores, labels, n=100, seed=2) != first


def test_bootstrap_unit_prefers_patient_then_study_then_image() -> None:
    frame = pl.DataFrame({"subject_id": ["p1", "p1", None], "study_id": ["s1", "s2", "s3"]})
    ids, unit = bootstrap_units(frame)
    assert unit == "patient" and ids[0] == ids[1] != ids[2]
    assert bootstrap_units(frame.drop("subject_id"))[1] == "study"
    assert bootstrap_units(frame, "image") == (None, "image")
    with pytest.raises(UsageError, match="needs a 'study_id' column"):
        bootstrap_units(frame.drop("study_id"), "study")


def test_auto_prompts_fall_back_to_templates_where_class_specific_contexts_lack_a_class(tiny_model) -> None:
    model = tiny_model.eval()
    seen, unseen = ["Cardiomegaly", "Edema"], ["Cardiomegaly", "Nodule"]
    assert resolve(model, unseen, "auto").source == "learned"  # a shared context prompts any name
    model.prompt_learner = PromptLearner(model.text_encoder, model.classes, csc=True)
    assert resolve(model, seen, "auto").source == "learned"
    assert resolve(model, unseen, "auto").source == "templates"
    with pytest.raises(UsageError, match="no context for"):
        resolve(model, unseen, "learned")  # asked for explicitly: the one-line error stays
