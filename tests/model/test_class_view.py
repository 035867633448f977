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
    model = tiny_model.eval()  # no dropout: the two losses see the same features
    batch = objective(model, 0.0).collate()([Rows(12)[i] for i in range(12)])
    losses = {}
    for weight in (0.0, 2.0):
        task = objective(model, weight)
        inputs = task.to_inputs(batch, CPU)
        outputs = model(inputs)
        assert ("class_similarity" in outputs) == (weight > 0)
        losses[weight] = task.compute_loss(outputs, inputs)
    inputs = objective(model, 2.0).to_inputs(batch, CPU)
    outputs = model(inputs)
    term = class_view_loss(outputs["logit_scale"] * outputs["class_similarity"], inputs["labels"], inputs["has_labels"])
    assert torch.allclose(losses[2.0], losses[0.0] + 2.0 * term, rtol=1e-5)
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
