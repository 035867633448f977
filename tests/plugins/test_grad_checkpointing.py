"""model.grad_checkpointing: the encoder plugins recompute activations in backward, with the same
outputs, gradients and BatchNorm statistics as without (tiny models, fp32, same seed)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from e2e_helpers import TINY_BERT
from torch import nn

from umcl_cli.contracts import ImageEncoder, TextEncoder
from umcl_cli.errors import UsageError
from umcl_cli.model.build import build_model
from umcl_cli.recipe import ModelConfig, PluginRef, Recipe
from umcl_encoders.checkpointing import exact_norm_statistics
from umcl_encoders.convnet import build_convnet_image_encoder
from umcl_encoders.hf_text import build_hf_text_encoder
from umcl_encoders.timm_image import build_timm_image_encoder

CORPUS = [
    "There is a small left pleural effusion.",
    "No acute cardiopulmonary process.",
    "Mild cardiomegaly with pulmonary vascular congestion.",
    "Right lower lobe consolidation concerning for pneumonia.",
] * 4
# Dropout on: checkpointing must replay the same masks when it recomputes.
BERT = {**TINY_BERT, "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1}
IMAGES = torch.randn(4, 1, 32, 32, generator=torch.Generator().manual_seed(1))


def timm_resnet() -> nn.Module:
    return build_timm_image_encoder("resnet18", in_chans=1, image_size=32, model_kwargs={"channels": [8, 8, 16, 16]})


def convnet() -> nn.Module:
    return build_convnet_image_encoder(channels=[4, 8, 16], image_size=32)


# One tokenizer for every build: a WordPiece trained twice may break ties differently.
_FIRST = build_hf_text_encoder(config=BERT, train_tokenizer={"vocab_size": 200}, corpus=CORPUS, max_length=48)
TOKENIZER_JSON = _FIRST.rebuild_spec()["tokenizer_json"]
TOKENS = _FIRST.tokenize(CORPUS[:3])


def bert() -> nn.Module:
    return build_hf_text_encoder(config=BERT, tokenizer_json=TOKENIZER_JSON, max_length=48)


def hf_checkpointing(encoder: nn.Module) -> bool:
    return any(getattr(m, "gradient_checkpointing", False) is True for m in encoder.model.modules())


def image_inputs(_: nn.Module) -> dict[str, torch.Tensor]:
    return {"images": IMAGES}


def token_inputs(_: nn.Module) -> dict[str, torch.Tensor]:
    return dict(TOKENS)


def embedding_inputs(encoder: nn.Module) -> dict[str, torch.Tensor]:
    # As the prompt learner feeds it: embeddings that are themselves trained (a leaf with grad).
    embeds = encoder.token_embedding(TOKENS["input_ids"]).detach().requires_grad_(True)
    return {"inputs_embeds": embeds, "attention_mask": TOKENS["attention_mask"]}


def one_step(make: Callable[[], nn.Module], inputs: Callable, checkpointing: bool) -> dict[str, Any]:
    """Build with seed 0, one training forward + backward; what came out, and how many module calls."""
    torch.manual_seed(0)
    encoder = make()
    if checkpointing:
        encoder.set_grad_checkpointing(True)
    encoder.train()
    calls = [0]
    hooks = [m.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1)) for m in encoder.modules()]
    given = inputs(encoder)
    torch.manual_seed(123)  # the dropout stream
    out = encoder(**given)
    (out.square().mean() + out.sum()).backward()
    for h in hooks:
        h.remove()
    leaves = {k: v.grad for k, v in given.items() if isinstance(v, torch.Tensor) and v.requires_grad}
    return {
        "out": out.detach(),
        "grads": {n: p.grad for n, p in encoder.named_parameters() if p.grad is not None},
        "input_grads": leaves,
        "buffers": {n: b.clone() for n, b in encoder.named_buffers()},
        "calls": calls[0],
    }


@pytest.mark.parametrize(
    ("make", "inputs"),
    [(timm_resnet, image_inputs), (convnet, image_inputs), (bert, token_inputs), (bert, embedding_inputs)],
    ids=["timm-resnet", "convnet", "hf-bert-ids", "hf-bert-inputs-embeds"],
)
def test_checkpointing_keeps_outputs_gradients_and_statistics(make: Callable, inputs: Callable) -> None:
    plain, ckpt = one_step(make, inputs, False), one_step(make, inputs, True)
    assert ckpt["calls"] > plain["calls"], "nothing was recomputed: checkpointing is not active"
    assert torch.equal(plain["out"], ckpt["out"])
    assert plain["grads"].keys() == ckpt["grads"].keys() and len(plain["grads"]) > 0
    for name, grad in plain["grads"].items():
        torch.testing.assert_close(ckpt["grads"][name], grad, rtol=0, atol=0, msg=name)
    assert plain["input_grads"].keys() == ckpt["input_grads"].keys()
    for name, grad in plain["input_grads"].items():  # the prompt learner's context vectors get theirs
        assert grad is not None and torch.equal(ckpt["input_grads"][name], grad)
    for name, buffer in plain["buffers"].items():  # BatchNorm running statistics move once per step
        assert torch.equal(ckpt["buffers"][name], buffer), name


def test_without_the_norm_hooks_batchnorm_statistics_would_move_twice() -> None:
    class Unprotected(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = convnet()
            self.encoder.set_grad_checkpointing(True)
            exact_norm_statistics(self.encoder.features, False)

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            return self.encoder(images)

    plain, raw = one_step(convnet, image_inputs, False), one_step(Unprotected, image_inputs, False)
    assert torch.equal(plain["out"], raw["out"])
    assert plain["buffers"]["features.1.num_batches_tracked"] == 1
    assert raw["buffers"]["encoder.features.1.num_batches_tracked"] == 2


@pytest.mark.parametrize(
    ("make", "inputs"), [(timm_resnet, image_inputs), (convnet, image_inputs), (bert, token_inputs)]
)
def test_checkpointing_can_be_switched_off_again(make: Callable, inputs: Callable) -> None:
    def on_then_off() -> nn.Module:
        encoder = make()
        encoder.set_grad_checkpointing(True)
        encoder.set_grad_checkpointing(False)
        return encoder

    assert one_step(on_then_off, inputs, False)["calls"] == one_step(make, inputs, False)["calls"]


class _NoCheckpointing(ImageEncoder):
    output_dim, in_chans, image_size = 4, 1, 8

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.flatten(1)[:, :4]

    def rebuild_spec(self) -> dict[str, Any]:
        return {}


def test_contract_default_refuses_with_the_encoder_named() -> None:
    _NoCheckpointing().set_grad_checkpointing(False)  # switching off is always fine
    with pytest.raises(UsageError, match=r"image encoder _NoCheckpointing \(.*\) does not support gradient"):
        _NoCheckpointing().set_grad_checkpointing(True)
    assert TextEncoder.set_grad_checkpointing is not ImageEncoder.set_grad_checkpointing


def test_timm_model_without_checkpointing_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    encoder = timm_resnet()

    def unsupported(enable: bool = True) -> None:
        assert not enable, "gradient checkpointing not supported"  # how timm's models refuse

    monkeypatch.setattr(encoder.model, "set_grad_checkpointing", unsupported)
    with pytest.raises(UsageError, match="timm model 'resnet18' does not support gradient checkpointing"):
        encoder.set_grad_checkpointing(True)


def _model_config(grad_checkpointing: bool) -> ModelConfig:
    return ModelConfig(
        embed_dim=8,
        image_encoder=PluginRef(name="convnet", options={"channels": [4, 8]}),
        text_encoder=PluginRef(
            name="hf", options={"config": TINY_BERT, "train_tokenizer": {"vocab_size": 200}, "max_length": 48}
        ),
        grad_checkpointing=grad_checkpointing,
    )


def test_build_model_switches_both_encoders_on() -> None:
    model = build_model(_model_config(True), ["Cardiomegaly"], CORPUS, image_size=32, prompt=True)
    assert model.image_encoder.grad_checkpointing
    assert hf_checkpointing(model.text_encoder)
    off = build_model(_model_config(False), ["Cardiomegaly"], CORPUS, image_size=32, prompt=True)
    assert not off.image_encoder.grad_checkpointing and not hf_checkpointing(off.text_encoder)


def test_grad_checkpointing_leaves_the_resume_tag_alone() -> None:
    tree = {"data": {"datasets": [{"name": "synthetic"}]}, "model": _model_config(False).model_dump()}
    plain = Recipe.model_validate(tree)
    tree["model"]["grad_checkpointing"] = True
    switched = Recipe.model_validate(tree)
    sections = ("data", "model", "loss")
    assert plain.digest(sections) == switched.digest(sections)  # resume an OOM-ed run with it switched on
    tree["model"]["embed_dim"] = 16
    assert Recipe.model_validate(tree).digest(sections) != plain.digest(sections)
