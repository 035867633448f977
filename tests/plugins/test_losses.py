"""Loss math against independent computations."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from umcl_cli.engine.contrastive import ContrastiveBatch
from umcl_losses.clip import ClipLoss
from umcl_losses.itl import ImageTextLabelLoss
from umcl_losses.soft import SoftLabelLoss


def batch(n: int = 6, d: int = 8, labels: torch.Tensor | None = None, seed: int = 0) -> ContrastiveBatch:
    g = torch.Generator().manual_seed(seed)
    img = F.normalize(torch.randn(n, d, generator=g), dim=-1)
    txt = F.normalize(torch.randn(n, d, generator=g), dim=-1)
    if labels is None:
        labels = torch.eye(n, 4)[:, :4] if n <= 4 else torch.randint(0, 2, (n, 4), generator=g).float()
    return ContrastiveBatch(img, txt, torch.tensor(1 / 0.07), labels.float(), torch.ones(n, dtype=torch.bool))


def reference_clip(b: ContrastiveBatch) -> float:
    logits = b.logit_scale * b.image_features @ b.text_features.T
    target = torch.arange(len(logits))
    return float((F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2)


def test_clip_matches_cross_entropy() -> None:
    b = batch()
    assert ClipLoss()(b).item() == pytest.approx(reference_clip(b), rel=1e-6)


def test_itl_equals_clip_when_every_label_key_is_unique() -> None:
    labels = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [0, 0, 0]], dtype=torch.float)
    b = batch(labels=labels)
    assert ImageTextLabelLoss()(b).item() == ClipLoss()(b).item()


def test_itl_equals_hand_computed_value_with_repeated_labels() -> None:
    # Samples 0 and 2 share a label key; sample 3 has no labels (only its own positive).
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    has = torch.tensor([True, True, True, False])
    s = torch.tensor([[0.9, 0.1, 0.5, 0.2], [0.0, 0.8, -0.1, 0.3], [0.4, 0.2, 0.7, -0.5], [0.1, 0.0, 0.6, 0.4]])
    # Unit "features" whose dot products are exactly s: images = s, texts = identity.
    b = ContrastiveBatch(s, torch.eye(4), torch.tensor(1.0), labels, has)
    positives = {0: [0, 2], 1: [1], 2: [0, 2], 3: [3]}

    def direction(m: list[list[float]]) -> float:
        total = 0.0
        for i, row in enumerate(m):
            log_z = math.log(sum(math.exp(v) for v in row))
            total += -sum(row[j] - log_z for j in positives[i]) / len(positives[i])
        return total / len(m)

    rows = s.tolist()
    cols = s.T.tolist()
    expected = 0.5 * (direction(rows) + direction(cols))
    assert ImageTextLabelLoss()(b).item() == pytest.approx(expected, rel=1e-6)


def test_itl_treats_ignored_entries_as_part_of_the_key() -> None:
    nan = float("nan")
    labels = torch.tensor([[1.0, nan], [1.0, nan], [1.0, 0.0]])
    t = ImageTextLabelLoss().targets(
        labels, torch.ones(3, dtype=torch.bool), labels, torch.ones(3, dtype=torch.bool), 0
    )
    assert t.tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]


def test_soft_targets_are_medclip_softmax_of_label_similarity() -> None:
    labels = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    has = torch.ones(3, dtype=torch.bool)
    t = SoftLabelLoss().targets(labels, has, labels, has, 0)
    expected = torch.softmax(labels @ labels.T, dim=1)
    assert torch.allclose(t, expected)
    b = batch(n=3, labels=labels)
    logits = b.logit_scale * b.image_features @ b.text_features.T
    ref = 0.5 * (-(expected * logits.log_softmax(1)).sum(1).mean() - (expected * logits.T.log_softmax(1)).sum(1).mean())
    assert SoftLabelLoss()(b).item() == pytest.approx(ref.item(), rel=1e-6)


def test_soft_rows_without_labels_fall_back_to_identity() -> None:
    labels = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    has = torch.tensor([True, False])
    t = SoftLabelLoss().targets(labels, has, labels, has, 0)
    assert t.tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_loss_gradients_reach_both_feature_sets() -> None:
    b = batch()
    b.image_features.requires_grad_(True)
    b.text_features.requires_grad_(True)
    ImageTextLabelLoss()(b).backward()
    assert b.image_features.grad.abs().sum() > 0 and b.text_features.grad.abs().sum() > 0


def test_itl_overlap_gives_jaccard_partial_credit() -> None:
    nan = float("nan")
    labels = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0], [1.0, nan, 1.0]])
    has = torch.tensor([True, True, True, True, False])
    t = ImageTextLabelLoss(overlap=True).targets(labels, has, labels, has, 0)
    expected = torch.tensor(
        [
            [1.0, 0.5, 0.0, 1.0, 0.0],  # {0,1}: half of {0}, all of the identical row 3
            [0.5, 1.0, 0.0, 0.5, 0.0],
            [0.0, 0.0, 1.0, 0.0, 0.0],  # disjoint: no credit
            [1.0, 0.5, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 1.0],  # no labels: only its own positive
        ]
    )
    assert torch.equal(t, expected)
    plain = ImageTextLabelLoss().targets(labels, has, labels, has, 0)
    assert torch.equal(plain, (expected == 1).float())  # without overlap: identical keys only


def test_itl_key_classes_match_rows_on_the_named_columns_only() -> None:
    nan = float("nan")
    classes = ["No Finding", "Cardiomegaly", "Edema", "Support Devices"]
    labels = torch.tensor(
        [
            [0.0, 1.0, 0.0, 1.0],
            [0.0, 1.0, 0.0, 0.0],  # same Cardiomegaly/Edema as row 0, devices differ
            [1.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],  # neither named finding, like row 2
            [0.0, 1.0, nan, 0.0],  # Edema ignored: its key differs from rows 0/1
            [0.0, 1.0, 0.0, 0.0],  # no labels: only its own positive
        ]
    )
    has = torch.tensor([True, True, True, True, True, False])
    loss = ImageTextLabelLoss(key_classes=["Edema", "Cardiomegaly"])
    loss.bind_classes(classes)
    keys = [tuple(r) for r in torch.nan_to_num(labels[:, [2, 1]], nan=-1.0).tolist()]
    expected = torch.tensor(
        [[float(i == j or (has[i] and has[j] and keys[i] == keys[j])) for j in range(6)] for i in range(6)]
    )
    assert torch.equal(loss.targets(labels, has, labels, has, 0), expected)
    assert expected[0, 1] == 1 and expected[2, 3] == 1 and expected[0, 4] == 0 and expected[1, 5] == 0


def test_itl_competition_key_binds_to_the_streams_column_order() -> None:
    from umcl_cli.contracts import CANONICAL_CLASSES, CHEXPERT_COMPETITION

    loss = ImageTextLabelLoss(key_classes="competition")
    loss.bind_classes(list(CANONICAL_CLASSES))
    assert [CANONICAL_CLASSES[i] for i in loss._key_columns] == list(CHEXPERT_COMPETITION)


def test_itl_findings_key_leaves_out_parents_devices_and_no_finding() -> None:
    from umcl_cli.contracts import CANONICAL_CLASSES, CHEXPERT_CLASSES

    loss = ImageTextLabelLoss(key_classes="findings")
    loss.bind_classes(list(CANONICAL_CLASSES))
    keyed = {CANONICAL_CLASSES[i] for i in loss._key_columns}
    left_out = {"No Finding", "Support Devices", "Lung Opacity", "Enlarged Cardiomediastinum"}
    assert keyed == set(CHEXPERT_CLASSES) - left_out
    # A vocabulary without some of them (ChestX-ray14-like) keys on the ones it labels.
    nih_like = ["Atelectasis", "Cardiomegaly", "Hernia", "Pleural Effusion", "Pneumothorax"]
    loss.bind_classes(nih_like)
    assert [nih_like[i] for i in loss._key_columns] == [
        "Cardiomegaly",
        "Atelectasis",
        "Pneumothorax",
        "Pleural Effusion",
    ]


def test_itl_key_classes_errors_name_the_problem() -> None:
    from umcl_cli.errors import UsageError

    with pytest.raises(UsageError, match="key_classes 'chexpert5' is not a known set"):
        ImageTextLabelLoss(key_classes="chexpert5")
    loss = ImageTextLabelLoss(key_classes=["Edema", "Pneumothorax"])
    with pytest.raises(UsageError, match=r"names \['Pneumothorax'\], which the training data does not label"):
        loss.bind_classes(["No Finding", "Edema"])
    with pytest.raises(UsageError, match="labels none of its classes"):
        ImageTextLabelLoss(key_classes="competition").bind_classes(["No Finding", "Hernia"])
    with pytest.raises(RuntimeError, match="bind_classes"):
        ImageTextLabelLoss(key_classes=["Edema"]).targets(
            torch.zeros(2, 1), torch.ones(2, dtype=torch.bool), torch.zeros(2, 1), torch.ones(2, dtype=torch.bool), 0
        )


def test_itl_text_view_adds_the_hand_computed_text_to_text_term() -> None:
    # Rows 0, 2 and 4 share a key, 1 is alone, 3 has no labels: only 0, 2 and 4 take part.
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    has = torch.tensor([True, True, True, False, True])
    g = torch.Generator().manual_seed(3)
    img = F.normalize(torch.randn(5, 4, generator=g), dim=-1)
    txt = F.normalize(torch.randn(5, 4, generator=g), dim=-1)
    b = ContrastiveBatch(img, txt, torch.tensor(2.5), labels, has)
    s = (2.5 * txt @ txt.T).tolist()
    positives = {0: [2, 4], 2: [0, 4], 4: [0, 2]}
    terms = []
    for i, pos in positives.items():
        log_z = math.log(sum(math.exp(s[i][j]) for j in range(5) if j != i))
        terms.append(-sum(s[i][j] - log_z for j in pos) / len(pos))
    expected = sum(terms) / len(terms)
    with_view = ImageTextLabelLoss(text_view=0.7)(b).item()
    assert with_view - ImageTextLabelLoss()(b).item() == pytest.approx(0.7 * expected, rel=1e-5)


def test_text_view_moves_texts_only_and_is_empty_without_shared_keys() -> None:
    labels = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    b = batch(n=4, labels=labels)
    b.image_features.requires_grad_(True)
    b.text_features.requires_grad_(True)
    plain = ImageTextLabelLoss()(b)
    viewed = ImageTextLabelLoss(text_view=1.0)(b)
    img_grad, txt_grad = torch.autograd.grad(viewed - plain, [b.image_features, b.text_features])
    assert img_grad.abs().max() < 1e-6 and txt_grad.abs().max() > 1e-3
    unique = batch(n=4, labels=torch.eye(4))
    assert ImageTextLabelLoss(text_view=1.0)(unique).item() == ImageTextLabelLoss()(unique).item()


def test_text_view_options_are_checked() -> None:
    from umcl_cli.errors import UsageError

    for bad in (-1.0, float("nan"), float("inf"), "1", True):
        with pytest.raises(UsageError, match="text_view must be a number >= 0"):
            ImageTextLabelLoss(text_view=bad)
    with pytest.raises(TypeError, match="text_view"):
        ClipLoss(text_view=1.0)  # clip has no positive but a row's own: nothing for a text view
    soft = batch(n=3, labels=torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    assert SoftLabelLoss(text_view=1.0)(soft).item() > SoftLabelLoss()(soft).item()  # every labelled row shares mass
