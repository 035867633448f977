"""The prompt learner against independent computations."""

from __future__ import annotations

import torch

from umcl_cli.data.labels import class_phrase
from umcl_cli.model.objectives import PromptClassifier
from umcl_cli.model.prompt_learner import PromptLearner


def test_initialised_prompt_equals_the_written_sentence(tiny_model) -> None:
    # Context initialised from words, class at the end: the embeddings are exactly those of the
    # tokenised sentence, so the encoder output must match the plain-text path.
    model = tiny_model.eval()
    with torch.no_grad():
        learned = model.encode_prompts(["cardiomegaly", "pleural effusion"], [[2], [10]])
        written = model.encode_texts(["a chest x-ray showing cardiomegaly", "a chest x-ray showing pleural effusion"])
    assert torch.allclose(learned, written, atol=1e-5)


def test_front_position_puts_the_class_first(tiny_model) -> None:
    model = tiny_model.eval()
    learner = PromptLearner(model.text_encoder, model.classes, init="a chest x-ray showing", position="front")
    with torch.no_grad():
        learned = model.encode_prompts(["cardiomegaly"], [[2]], learner=learner)
        written = model.encode_texts(["cardiomegaly a chest x-ray showing"])
    assert torch.allclose(learned, written, atol=1e-5)


def test_random_init_has_requested_length_and_scale(tiny_text_encoder) -> None:
    torch.manual_seed(0)
    learner = PromptLearner(tiny_text_encoder, ["Edema"], n_ctx=16, init=None)
    assert learner.ctx.shape == (16, tiny_text_encoder.token_embedding.embedding_dim)
    assert 0.01 < learner.ctx.std().item() < 0.03


def test_class_specific_contexts_average_over_positive_classes(tiny_text_encoder) -> None:
    learner = PromptLearner(tiny_text_encoder, ["Edema", "Cardiomegaly", "No Finding"], init=None, n_ctx=2, csc=True)
    with torch.no_grad():
        learner.ctx.copy_(torch.arange(3.0).view(3, 1, 1).expand_as(learner.ctx))
    ctx = learner.context_for([[0], [0, 1], []])
    assert ctx[0].unique().tolist() == [0.0]
    assert ctx[1].unique().tolist() == [0.5]
    assert ctx[2].unique().tolist() == [2.0]  # no positive class: the "No Finding" context


def test_class_phrase() -> None:
    assert class_phrase(["Cardiomegaly", "Pleural Effusion"]) == "cardiomegaly, pleural effusion"
    assert class_phrase([]) == "no finding"


def test_gradients_reach_the_context_vectors_in_pretraining(tiny_model) -> None:
    images = torch.randn(3, 1, 32, 32)
    tokens = tiny_model.text_encoder.tokenize(["no pneumothorax."])
    out = tiny_model(
        {
            "images": images,
            "text_rows": torch.tensor([1]),
            "prompt_rows": torch.tensor([0, 2]),
            "input_ids": tokens["input_ids"],
            "attention_mask": tokens["attention_mask"],
            "phrases": ["cardiomegaly", "no finding"],
            "class_sets": [[2], []],
        }
    )
    assert out["text_features"].shape == (3, 16)
    (out["image_features"] * out["text_features"]).sum().backward()
    assert tiny_model.prompt_learner.ctx.grad is not None and tiny_model.prompt_learner.ctx.grad.abs().sum() > 0


def test_prompt_tuning_on_frozen_encoders_changes_only_the_context(tiny_model) -> None:
    model = tiny_model.eval()
    model.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    learner = PromptLearner(model.text_encoder, ["Cardiomegaly", "Edema"], init="a chest x-ray showing")
    ctx0 = learner.ctx.detach().clone()
    clf = PromptClassifier(model, learner, ["Cardiomegaly", "Edema"])
    optimizer = torch.optim.AdamW([learner.ctx], lr=1e-2)
    for _ in range(3):
        logits = clf({"images": torch.randn(4, 1, 32, 32)})["logits"]
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 0, 1]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert not torch.equal(learner.ctx.detach(), ctx0)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert [n for n, _ in clf.named_parameters()] == ["learner.ctx"]


def test_n_ctx_with_init_words_pads_with_small_random_vectors_away_from_the_class(tiny_text_encoder) -> None:
    words = PromptLearner(tiny_text_encoder, ["Edema"], init="a chest x-ray showing")
    n_words = words.n_ctx
    padded = PromptLearner(tiny_text_encoder, ["Edema"], init="a chest x-ray showing", n_ctx=n_words + 3)
    assert padded.ctx.shape[0] == n_words + 3
    assert torch.equal(padded.ctx[3:], words.ctx)  # the words stay next to the class phrase
    assert padded.ctx[:3].abs().max() < 0.2
    front = PromptLearner(
        tiny_text_encoder, ["Edema"], init="a chest x-ray showing", n_ctx=n_words + 3, position="front"
    )
    assert torch.equal(front.ctx[:n_words], words.ctx)


def test_n_ctx_with_init_words_trims_the_words_farthest_from_the_class(tiny_text_encoder) -> None:
    words = PromptLearner(tiny_text_encoder, ["Edema"], init="a chest x-ray showing")
    trimmed = PromptLearner(tiny_text_encoder, ["Edema"], init="a chest x-ray showing", n_ctx=2)
    assert torch.equal(trimmed.ctx, words.ctx[-2:])


def test_class_specific_random_contexts_are_drawn_independently(tiny_text_encoder) -> None:
    torch.manual_seed(0)
    learner = PromptLearner(tiny_text_encoder, ["Edema", "Cardiomegaly", "Atelectasis"], init=None, n_ctx=4, csc=True)
    assert learner.ctx.shape[:2] == (3, 4)
    assert not torch.equal(learner.ctx[0], learner.ctx[1])
    assert not torch.equal(learner.ctx[1], learner.ctx[2])


def test_per_class_composition_is_the_mean_of_single_class_prompts(tiny_model) -> None:
    model = tiny_model.eval()
    model.prompt_learner.compose = "per_class"
    sets = [[2], [2, 10], []]
    with torch.no_grad():
        composed = model.encode_label_rows(["cardiomegaly", "cardiomegaly, pleural effusion", "no finding"], sets)
        single = model.encode_prompts(["cardiomegaly", "pleural effusion", "no finding"], [[2], [10], []])
    expected_pair = torch.nn.functional.normalize(single[0] + single[1], dim=-1)
    assert torch.allclose(composed[0], single[0], atol=1e-6)
    assert torch.allclose(composed[1], expected_pair, atol=1e-6)
    assert torch.allclose(composed[2], single[2], atol=1e-6)
    model.prompt_learner.compose = "joint"
    with torch.no_grad():
        joint = model.encode_label_rows(["cardiomegaly, pleural effusion"], [[2, 10]])
        written = model.encode_prompts(["cardiomegaly, pleural effusion"], [[2, 10]])
    assert torch.equal(joint, written)


def test_label_view_replaces_labelled_reports_by_their_label_prompt(tiny_model) -> None:
    model = tiny_model.eval()
    tokens = model.text_encoder.tokenize(["no pneumothorax.", "moderate left pleural effusion"])
    inputs = {
        "images": torch.randn(3, 1, 32, 32),
        "text_rows": torch.tensor([0, 1]),
        "prompt_rows": torch.tensor([2]),
        "input_ids": tokens["input_ids"],
        "attention_mask": tokens["attention_mask"],
        "phrases": ["cardiomegaly"],
        "class_sets": [[2]],
        "view_rows": torch.tensor([1]),  # row 1 is a labelled pair, row 0 a pair without labels
        "view_phrases": ["pleural effusion"],
        "view_class_sets": [[10]],
    }
    with torch.no_grad():
        out = model(inputs)
        effusion = model.encode_prompts(["pleural effusion"], [[10]])
    view = out["label_view_features"]
    assert torch.equal(view[0], out["text_features"][0])
    assert torch.allclose(view[1], effusion[0], atol=1e-6)
    assert torch.equal(view[2], out["text_features"][2])
