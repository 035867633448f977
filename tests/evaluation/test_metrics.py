"""Metric functions checked against independent computations (sklearn, hand counts, brute force)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

from umcl_cli.evaluation.metrics import (
    binary_metrics,
    bootstrap_ci,
    multiclass_metrics,
    multilabel_auroc,
    retrieval_metrics,
    roc_curve_points,
)

AUROC_TOL = 1e-6  # torchmetrics accumulates the ROC curve in float32


# --------------------------------------------------------------------------- AUROC


def _multilabel_fixture(seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Heavily tied scores (one decimal), NaN / -1 exclusions, and a class with one valid label value."""
    rng = np.random.default_rng(seed)
    n, names = 300, ["atelectasis", "cardiomegaly", "edema", "effusion"]
    labels = (rng.random((n, len(names))) < 0.3).astype(np.float64)
    scores = np.round(np.clip(labels * 0.25 + rng.random(labels.shape) * 0.75, 0, 1), 1)
    labels[rng.random(n) < 0.15, 0] = np.nan
    labels[rng.random(n) < 0.15, 1] = -1
    labels[:, 3] = np.where(rng.random(n) < 0.5, np.nan, 0.0)  # only negatives remain valid
    return scores, labels, names


def test_multilabel_auroc_matches_sklearn_with_ties_and_exclusions() -> None:
    scores, labels, names = _multilabel_fixture()
    result = multilabel_auroc(torch.from_numpy(scores), torch.from_numpy(labels), names)
    expected = []
    for c, name in enumerate(names[:3]):
        valid = np.isin(labels[:, c], [0, 1])
        reference = roc_auc_score(labels[valid, c], scores[valid, c])
        expected.append(reference)
        entry = result["per_class"][name]
        assert entry["auroc"] == pytest.approx(reference, abs=AUROC_TOL)
        assert entry["n_pos"] == int(labels[valid, c].sum())
        assert entry["n_neg"] == int(valid.sum() - labels[valid, c].sum())
    single = result["per_class"]["effusion"]
    assert single["auroc"] is None and single["n_pos"] == 0 and single["n_neg"] > 0
    assert result["n_scored"] == 3
    assert result["mean_auroc"] == pytest.approx(np.mean(expected), abs=AUROC_TOL)


def test_auroc_is_not_distorted_by_logit_scale() -> None:
    # Scores far outside [0, 1] must not be squashed (a float32 sigmoid would tie 20 and 30).
    scores = np.array([20.0, 30.0, -5.0, 25.0, 40.0, 10.0], dtype=np.float32)
    labels = np.array([0, 1, 0, 0, 1, 1])
    expected = roc_auc_score(labels, scores)
    result = multilabel_auroc(scores[:, None], labels[:, None].astype(float), ["x"])
    assert result["per_class"]["x"]["auroc"] == pytest.approx(expected)
    assert binary_metrics(scores, labels, threshold=0.0)["auroc"] == pytest.approx(expected)


def test_multilabel_auroc_with_no_scorable_class() -> None:
    result = multilabel_auroc(torch.rand(5, 1), torch.ones(5, 1), ["only_pos"])
    assert result["mean_auroc"] is None and result["n_scored"] == 0


def test_roc_curve_points_match_sklearn() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.random(200) + 0.3 * labels, 1)
    fpr, tpr = roc_curve_points(torch.from_numpy(scores), torch.from_numpy(labels))
    ref_fpr, ref_tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr, atol=AUROC_TOL)
    np.testing.assert_allclose(tpr, ref_tpr, atol=AUROC_TOL)
    with pytest.raises(ValueError):
        roc_curve_points(scores, np.zeros(200))


# --------------------------------------------------------------------------- classification


def test_multiclass_metrics_match_sklearn_with_unpredicted_class() -> None:
    rng = np.random.default_rng(2)
    n, names = 250, ["normal", "pneumonia", "covid", "tb"]
    targets = rng.integers(0, 4, n)
    logits = rng.normal(size=(n, 4)) + 1.5 * np.eye(4)[targets]
    logits[:, 3] = -100.0  # class "tb" is never predicted but has support
    result = multiclass_metrics(torch.from_numpy(logits), torch.from_numpy(targets), names)
    preds = logits.argmax(1)
    assert 3 not in preds and 3 in targets
    assert result["accuracy"] == pytest.approx(accuracy_score(targets, preds))
    assert result["macro_f1"] == pytest.approx(f1_score(targets, preds, average="macro", zero_division=0))
    assert result["confusion_matrix"] == confusion_matrix(targets, preds, labels=range(4)).tolist()
    reference = precision_recall_fscore_support(targets, preds, labels=range(4), zero_division=0)
    precision, recall, f1, support = reference
    for c, name in enumerate(names):
        entry = result["per_class"][name]
        assert entry["precision"] == pytest.approx(precision[c])
        assert entry["recall"] == pytest.approx(recall[c])
        assert entry["f1"] == pytest.approx(f1[c])
        assert entry["support"] == support[c]
    assert result["per_class"]["tb"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": support[3]}


def test_macro_f1_ignores_class_absent_from_targets_and_predictions() -> None:
    targets = np.array([0, 1, 1, 0, 1])
    logits = np.eye(3)[[0, 1, 0, 0, 1]]
    result = multiclass_metrics(logits, targets, ["a", "b", "c"])
    assert result["macro_f1"] == pytest.approx(f1_score(targets, logits.argmax(1), average="macro"))
    assert result["per_class"]["c"]["support"] == 0


# --------------------------------------------------------------------------- binary


def test_binary_metrics_against_hand_count() -> None:
    scores = torch.tensor([0.9, 0.8, 0.5, 0.4, 0.3, 0.7, 0.2, 0.6, 0.1, 0.5])
    labels = torch.tensor([1, 1, 1, 1, 0, 0, 0, 0, 0, 1])
    # At threshold 0.5 (score >= 0.5 is positive): positives 0.9, 0.8, 0.5, 0.4, 0.5 -> TP 4, FN 1;
    # negatives 0.3, 0.7, 0.2, 0.6, 0.1 -> FP 2, TN 3.
    result = binary_metrics(scores, labels)
    assert result["sensitivity"] == pytest.approx(4 / 5)
    assert result["specificity"] == pytest.approx(3 / 5)
    assert result["accuracy"] == pytest.approx(7 / 10)
    assert result["threshold"] == 0.5
    assert result["auroc"] == pytest.approx(roc_auc_score(labels.numpy(), scores.numpy()), abs=AUROC_TOL)


def test_binary_metrics_undefined_ratios_are_none() -> None:
    result = binary_metrics(torch.tensor([0.2, 0.7]), torch.tensor([0, 0]))
    assert result["auroc"] is None and result["sensitivity"] is None
    assert result["specificity"] == 0.5
    with pytest.raises(ValueError):
        binary_metrics(torch.tensor([0.2, 0.7]), torch.tensor([0, 2]))


# --------------------------------------------------------------------------- retrieval


def _brute_force_retrieval(images: torch.Tensor, texts: torch.Tensor, ks, labels=None) -> dict[str, float]:
    """open_clip's get_clip_metrics recipe on the full N x N matrix, plus label-aware P@k."""
    logits_per_image = images.double() @ texts.double().T
    truth = torch.arange(len(images)).view(-1, 1)
    out = {}
    for name, logits in (("image_to_text", logits_per_image), ("text_to_image", logits_per_image.T)):
        ranking = torch.argsort(logits, descending=True, stable=True)
        preds = torch.where(ranking == truth)[1].numpy()
        out[f"{name}_mean_rank"] = preds.mean() + 1
        out[f"{name}_median_rank"] = np.floor(np.median(preds)) + 1
        for k in ks:
            out[f"{name}_R@{k}"] = np.mean(preds < k)
            if labels is not None:
                retrieved = labels[ranking[:, :k]]  # [N, k, C]
                same = (retrieved == labels[:, None, :]).all(dim=2)
                out[f"{name}_P@{k}"] = same.double().mean().item()
    return out


def _random_pairs(n: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    texts = images + 0.8 * torch.randn(n, dim, generator=gen, dtype=torch.float64)
    return torch.nn.functional.normalize(images, dim=1), torch.nn.functional.normalize(texts, dim=1)


@pytest.mark.parametrize("n", [60, 61])  # even and odd N exercise both median branches
def test_retrieval_matches_brute_force(n: int) -> None:
    images, texts = _random_pairs(n, 16, seed=n)
    ks = (1, 5, 10)
    expected = _brute_force_retrieval(images, texts, ks)
    result = retrieval_metrics(images, texts, ks=ks)
    assert set(result) == set(expected)
    for key, value in expected.items():
        assert result[key] == pytest.approx(value), key
    assert 0 < result["image_to_text_R@1"] < 1  # the fixture is neither trivial nor hopeless


def test_retrieval_chunked_equals_unchunked() -> None:
    images, texts = _random_pairs(100, 8, seed=3)
    labels = torch.randint(0, 2, (100, 3), generator=torch.Generator().manual_seed(3))
    whole = retrieval_metrics(images, texts, chunk_size=4096, labels=labels)
    assert retrieval_metrics(images, texts, chunk_size=7, labels=labels) == whole


def test_label_aware_precision_matches_brute_force() -> None:
    images, texts = _random_pairs(80, 8, seed=4)
    labels = torch.randint(0, 2, (80, 2), generator=torch.Generator().manual_seed(4)).float()
    ks = (1, 3, 10)
    expected = _brute_force_retrieval(images, texts, ks, labels)
    result = retrieval_metrics(images, texts, ks=ks, chunk_size=7, labels=labels)
    for key in (f"{d}_P@{k}" for d in ("image_to_text", "text_to_image") for k in ks):
        assert result[key] == pytest.approx(expected[key]), key


def test_retrieval_ties_follow_gallery_order_in_both_directions() -> None:
    # Every score ties: as with a stable sort, item i comes after items 0..i-1, so its rank is i.
    features = torch.ones(4, 3)
    result = retrieval_metrics(features, features, ks=(1,))
    for direction in ("image_to_text", "text_to_image"):
        assert result[f"{direction}_R@1"] == 0.25 and result[f"{direction}_mean_rank"] == 2.5


# --------------------------------------------------------------------------- bootstrap


def _auroc_metric(scores: torch.Tensor, labels: torch.Tensor) -> float | None:
    return binary_metrics(scores, labels)["auroc"]


def _auroc_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=gen)
    return torch.randn(n, generator=gen) + labels, labels


def test_bootstrap_contains_estimate_and_is_deterministic() -> None:
    scores, labels = _auroc_data(1000, seed=5)
    ci = bootstrap_ci(_auroc_metric, scores, labels, n=1000, seed=7)
    assert ci["estimate"] == pytest.approx(roc_auc_score(labels.numpy(), scores.numpy()), abs=AUROC_TOL)
    assert ci["low"] < ci["estimate"] < ci["high"]
    assert ci["n"] == 1000 and ci["skipped"] == 0
    assert bootstrap_ci(_auroc_metric, scores, labels, n=1000, seed=7) == ci
    assert bootstrap_ci(_auroc_metric, scores, labels, n=1000, seed=8) != ci


def test_bootstrap_interval_shrinks_with_n() -> None:
    small = bootstrap_ci(_auroc_metric, *_auroc_data(100, seed=6), n=300)
    large = bootstrap_ci(_auroc_metric, *_auroc_data(2000, seed=6), n=300)
    assert large["high"] - large["low"] < 0.5 * (small["high"] - small["low"])


def test_bootstrap_resamples_rows_jointly_and_counts_skips() -> None:
    values = np.arange(10.0)
    # Identical arrays stay identical under a joint resample, so the difference is always 0.
    ci = bootstrap_ci(lambda a, b: float(np.abs(a - b).max()), values, values.copy(), n=50)
    assert ci["low"] == ci["high"] == 0.0
    # With 1 positive in 6 rows, resamples missing it (or only holding it) leave AUROC undefined.
    scores, labels = torch.arange(6.0), torch.tensor([0, 0, 0, 0, 0, 1])
    ci = bootstrap_ci(_auroc_metric, scores, labels, n=400, seed=1)
    assert 0 < ci["skipped"] < 400
    expected_skip_rate = (5 / 6) ** 6 + (1 / 6) ** 6
    assert ci["skipped"] / 400 == pytest.approx(expected_skip_rate, abs=0.08)
    all_skipped = bootstrap_ci(lambda a: math.nan, values, n=5)
    assert all_skipped["low"] is None and all_skipped["high"] is None and all_skipped["skipped"] == 5
