"""Evaluation math without a model: shared-resample bootstraps, seed averages, retrieval CIs, prompts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from umcl_cli.data.manifest import CHEXPERT_CLASSES, CHEXPERT_COMPETITION
from umcl_cli.evaluation import metrics as M
from umcl_cli.evaluation.prompts import MAX_PROMPTS, PHRASE_PARTS, class_prompts, negative_prompts


def _data(seed: int = 0, n: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=gen)
    return torch.randn(n, generator=gen) + labels, labels


def test_bootstrap_cis_matches_one_scalar_bootstrap_per_metric() -> None:
    scores, labels = _data()

    def both(s: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        return {"auroc": M.binary_metrics(s, y)["auroc"], "accuracy": M.binary_metrics(s, y)["accuracy"]}

    joint = M.bootstrap_cis(both, scores, labels, n=200, seed=3)
    for key in ("auroc", "accuracy"):
        alone = M.bootstrap_ci(lambda s, y, key=key: both(s, y)[key], scores, labels, n=200, seed=3)
        assert joint[key] == alone
    assert joint["auroc"]["estimate"] == pytest.approx(roc_auc_score(labels.numpy(), scores.numpy()), abs=1e-6)


def test_seed_average_is_the_mean_of_per_seed_metrics() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random((150, 3)) < 0.4).astype(np.float64)
    stacked = torch.from_numpy(rng.random((150, 4, 3)) + y[:, None, :] * 0.3)

    def mean_auroc(s: torch.Tensor, labels: torch.Tensor) -> dict[str, float | None]:
        return {"mean_auroc": M.multilabel_auroc(s, labels, ["a", "b", "c"])["mean_auroc"]}

    expected = np.mean(
        [np.mean([roc_auc_score(y[:, c], stacked[:, s, c].numpy()) for c in range(3)]) for s in range(4)]
    )
    averaged = M.seed_average(mean_auroc)(stacked, torch.from_numpy(y))
    assert averaged["mean_auroc"] == pytest.approx(expected, abs=1e-6)
    ci = M.bootstrap_cis(M.seed_average(mean_auroc), stacked, torch.from_numpy(y), n=50)
    assert ci["mean_auroc"]["low"] <= expected <= ci["mean_auroc"]["high"]


def test_mean_std_is_numpy_population_std_and_skips_undefined() -> None:
    values = [0.71, 0.74, 0.69, None]
    out = M.mean_std(values)
    kept = np.array([0.71, 0.74, 0.69])
    assert out["mean"] == pytest.approx(kept.mean()) and out["std"] == pytest.approx(kept.std())
    assert out["n"] == 3 and out["values"] == values


def test_retrieval_ranks_rebuild_the_metrics_for_a_query_bootstrap() -> None:
    gen = torch.Generator().manual_seed(1)
    images = torch.nn.functional.normalize(torch.randn(60, 8, generator=gen), dim=1)
    texts = torch.nn.functional.normalize(images + 0.8 * torch.randn(60, 8, generator=gen), dim=1)
    labels = torch.randint(0, 2, (60, 3), generator=gen).float()
    ranks: dict = {}
    full = M.retrieval_metrics(images, texts, labels=labels, ranks_out=ranks)
    rebuilt = {**M.direction_metrics("image_to_text", *ranks["image_to_text"])}
    rebuilt |= M.direction_metrics("text_to_image", *ranks["text_to_image"])
    assert rebuilt == pytest.approx(full)
    # Brute force: the rank of the match is the number of texts scored strictly higher.
    scores = images @ texts.T
    brute = (scores > scores.diagonal().unsqueeze(1)).sum(dim=1)
    assert torch.equal(ranks["image_to_text"][0], brute)


def test_competition_classes_get_severity_subtype_location_ensembles() -> None:
    for name in CHEXPERT_COMPETITION:
        prompts = class_prompts(name)
        assert 4 <= len(prompts) <= MAX_PROMPTS and len(set(prompts)) == len(prompts)
        assert prompts == class_prompts(name)  # deterministic
        severities, subtypes, locations = PHRASE_PARTS[name]
        assert all(any(sub in p for sub in subtypes) for p in prompts)
        modifiers = {w for w in (*severities, *locations) if w}
        assert any(any(m in p for m in modifiers) for p in prompts)
        assert all(p.startswith(("no ", "a chest x-ray showing no", "there is no")) for p in negative_prompts(name))
    for name in set(CHEXPERT_CLASSES) - set(CHEXPERT_COMPETITION) - {"No Finding"}:
        assert class_prompts(name) == [
            name.lower(),
            f"a chest x-ray showing {name.lower()}",
            f"findings consistent with {name.lower()}",
            f"there is {name.lower()}",
        ]
    assert "no no finding" not in negative_prompts("No Finding")
