"""The class view (``model.prompt.class_weight``) in the pre-training objective."""

from __future__ import annotations

import copy

import torch
from test_tokenize_in_workers import Rows

from umcl_cli.engine.accumulation import accumulated_backward
from umcl_cli.engine.precision import Precision
from umcl_cli.model.objectives import PretrainObjective, class_view_loss
from umcl_losses.itl import ImageTextLabelLoss

CPU = torch.device("cpu")


def objective(model, class_weight: float) -> PretrainObjective:
    return PretrainObjective(model, ImageTextLabelLoss(), 1e-3, 0.1, pair_weight=1.0, class_weight=class_weight)


def grads(task: PretrainObjective) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in task.module.named_parameters() if p.grad is not None}


def test_the_class_view_adds_its_term_and_trains_the_context(tiny_model) -> None:
    model = tiny_model.eval()  # no dropout: both losses read the same features
    batch = objective(model, 0.0).collate()([Rows(12)[i] for i in range(12)])
    assert "class_similarity" not in model(objective(model, 0.0).to_inputs(batch, CPU))
    inputs = objective(model, 2.0).to_inputs(batch, CPU)
    outputs = model(inputs)
    without = {k: v for k, v in outputs.items() if k != "class_similarity"}
    term = class_view_loss(outputs["logit_scale"] * outputs["class_similarity"], inputs["labels"], inputs["has_labels"])
    total = objective(model, 2.0).compute_loss(outputs, inputs)
    assert torch.allclose(total, objective(model, 0.0).compute_loss(without, inputs) + 2.0 * term, rtol=1e-5)
    model.zero_grad()
    term.backward()
    assert model.prompt_learner.ctx.grad.abs().sum() > 0


def test_accumulation_keeps_the_class_view_exact(tiny_model) -> None:
    # float64: the comparison then measures the accumulation, not fp32 rounding of summed gradients.
    model = copy.deepcopy(tiny_model).eval().double()
    items = [Rows(16)[i] for i in range(16)]

    def inputs_of(task: PretrainObjective, rows: list[dict]) -> dict:
        inputs = task.to_inputs(task.collate()(rows), CPU)
        return {**inputs, "images": inputs["images"].double(), "labels": inputs["labels"].double()}

    full_task = objective(copy.deepcopy(model), 1.0)
    inputs = inputs_of(full_task, items)
    full_loss = full_task.compute_loss(full_task.module(inputs), inputs)
    full_loss.backward()
    accum_task = objective(copy.deepcopy(model), 1.0)
    micro = [inputs_of(accum_task, items[k : k + 8]) for k in (0, 8)]
    accum_loss = accumulated_backward(accum_task, accum_task.module, micro, Precision("fp32", CPU))
    torch.testing.assert_close(accum_loss, full_loss.detach(), rtol=1e-10, atol=0)
    full, accum = grads(full_task), grads(accum_task)
    assert full.keys() == accum.keys() and "prompt_learner.ctx" in full
    for name, g in full.items():
        torch.testing.assert_close(accum[name], g, rtol=1e-8, atol=1e-12, msg=name)


def test_class_view_scores_every_image_against_every_single_class_prompt(tiny_model) -> None:
    model = tiny_model.eval()
    tokens = model.text_encoder.tokenize(["no pneumothorax."])
    inputs = {
        "images": torch.randn(2, 1, 32, 32),
        "text_rows": torch.tensor([0]),
        "prompt_rows": torch.tensor([1]),
        "input_ids": tokens["input_ids"],
        "attention_mask": tokens["attention_mask"],
        "phrases": ["cardiomegaly"],
        "class_sets": [[2]],
        "class_view": True,
    }
    with torch.no_grad():
        out = model(inputs)
        classes = model.prompt_learner.classes
        written = model.encode_prompts([c.lower() for c in classes], [[k] for k in range(len(classes))])
    assert out["class_similarity"].shape == (2, len(classes))
    assert torch.allclose(out["class_similarity"], out["image_features"] @ written.T, atol=1e-6)


def test_class_view_loss_against_an_explicit_sum() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0], [1.0, 2.0, 3.0], [0.0, 1.0, 0.0]])
    labels = torch.tensor(
        [[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, float("nan"), 0.0]]  # row 3: no positive
    )
    has = torch.tensor([True, True, False, True])  # row 2 carries no labels
    log_p = torch.log_softmax(logits, dim=1)
    expected = (-(log_p[0, 0] + log_p[0, 2]) / 2 - log_p[1, 2]) / 2  # rows 0 and 1 only
    assert torch.allclose(class_view_loss(logits, labels, has), expected)
    none = class_view_loss(logits.requires_grad_(), torch.zeros(4, 3), has)
    assert none.item() == 0.0
    none.backward()  # keeps the graph when no row takes part
    assert torch.equal(logits.grad, torch.zeros(4, 3))
