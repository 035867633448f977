"""Speed switches: train.compile (with its eager fallback), train.channels_last, fused AdamW."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from e2e_helpers import TINY, TINY_BERT, cli_pretrain, prepare_tiny

from umcl_cli.engine import speed
from umcl_cli.engine.precision import Precision
from umcl_cli.engine.schedule import build_optimizer, fused_adamw_fits
from umcl_cli.model.dual_encoder import DualEncoder
from umcl_cli.recipe import TrainConfig
from umcl_encoders.convnet import build_convnet_image_encoder
from umcl_encoders.hf_text import build_hf_text_encoder

CPU = torch.device("cpu")
CORPUS = ["no acute findings", "small left pleural effusion", "enlarged heart", "right lower lobe pneumonia"] * 4


def tiny_model(in_chans: int = 1) -> DualEncoder:
    torch.manual_seed(0)
    image = build_convnet_image_encoder(channels=[4, 8], in_chans=in_chans, image_size=16)
    text = build_hf_text_encoder(config=TINY_BERT, train_tokenizer={"vocab_size": 100}, corpus=CORPUS, max_length=32)
    return DualEncoder(image, text, embed_dim=8, classes=["Cardiomegaly"])


def test_fused_adamw_when_every_parameter_is_on_one_device_that_has_it() -> None:
    cpu = [{"params": [torch.nn.Parameter(torch.ones(2, 2))]}]
    assert fused_adamw_fits(cpu) and build_optimizer(cpu, "adamw", 1e-3, 0.1).defaults["fused"]
    cuda = SimpleNamespace(device=torch.device("cuda", 0), is_floating_point=lambda: True)
    assert fused_adamw_fits([{"params": [cuda, cuda]}])
    assert not fused_adamw_fits([{"params": [cuda]}, *cpu])  # mixed devices
    assert not fused_adamw_fits([{"params": []}])
    meta = SimpleNamespace(device=torch.device("meta"), is_floating_point=lambda: True)
    assert not fused_adamw_fits([{"params": [meta]}])
    assert not fused_adamw_fits([{"params": [torch.ones(2, dtype=torch.long)]}])
    assert build_optimizer(cpu, "sgd", 1e-3, 0.1, fused=True).defaults.get("fused") is None  # SGD ignores it


def test_fused_adamw_on_cpu_follows_the_default_implementation() -> None:
    torch.manual_seed(0)
    start = [torch.randn(5, 3), torch.randn(7)]
    params = {kind: [torch.nn.Parameter(t.clone()) for t in start] for kind in ("fused", "loop")}
    opts = {
        kind: build_optimizer([{"params": ps}], "adamw", 1e-2, 0.05, fused=kind == "fused")
        for kind, ps in params.items()
    }
    assert opts["fused"].defaults["fused"] and not opts["loop"].defaults["fused"]
    for _ in range(20):
        grads = [torch.randn_like(t) for t in start]
        for kind, ps in params.items():
            for p, g in zip(ps, grads, strict=True):
                p.grad = g.clone()
            opts[kind].step()
    for a, b in zip(params["fused"], params["loop"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not torch.equal(params["fused"][0], start[0])


def test_encoders_are_found_by_their_contracts() -> None:
    model = tiny_model()
    assert list(speed.encoders(model)) == [model.image_encoder, model.text_encoder]
    assert list(speed.encoders(model.image_encoder)) == [model.image_encoder]
    assert list(speed.encoders(torch.nn.Linear(2, 2))) == []


def test_channels_last_converts_weights_and_every_image_batch() -> None:
    model, reference = tiny_model(in_chans=3), tiny_model(in_chans=3)
    speed.speed_up(model, TrainConfig(channels_last=True), CPU, Precision("fp32", CPU))
    conv = model.image_encoder.features[0]
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    seen = []
    conv.register_forward_pre_hook(
        lambda _, args: seen.append(args[0].is_contiguous(memory_format=torch.channels_last))
    )
    images = torch.randn(2, 3, 16, 16)
    assert not images.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(model.encode_image(images), reference.encode_image(images))
    assert seen == [True]
    assert speed.to_channels_last(torch.ones(2, 3)).shape == (2, 3)  # not an image batch: unchanged


def test_trial_step_leaves_no_trace() -> None:
    model = tiny_model()
    model.train()
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    rng = torch.get_rng_state()
    found = list(speed.encoders(model))
    speed.trial_step(found, CPU, Precision("bf16", CPU), batch_size=4)
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(torch.equal(b, buffers[n]) for n, b in model.named_buffers())
    assert all(p.grad is None for p in model.parameters())


def test_compile_failure_prints_one_warning_and_stays_eager(capsys: pytest.CaptureFixture) -> None:
    def broken_backend(gm, example_inputs):
        raise RuntimeError("C++ compile error\nmany more lines")

    model, reference = tiny_model(), tiny_model()
    assert not speed.compile_encoders(model, CPU, Precision("fp32", CPU), batch_size=2, backend=broken_backend)
    err = capsys.readouterr().err
    assert "warning: train.compile: compiling failed (RuntimeError: C++ compile error); training without" in err
    assert len([line for line in err.splitlines() if line.startswith("warning:")]) == 1
    assert all(getattr(e, "_compiled_call_impl", None) is None for e in speed.encoders(model))
    images = torch.randn(2, 1, 16, 16)
    assert torch.equal(model.encode_image(images), reference.encode_image(images))


def test_no_compiler_is_a_warning_not_a_failure(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(speed.shutil, "which", lambda name: None)
    monkeypatch.delenv("CXX", raising=False)
    model = tiny_model()
    speed.speed_up(model, TrainConfig(compile=True), CPU, Precision("fp32", CPU))
    err = capsys.readouterr().err.strip()
    assert err == (
        "warning: train.compile: no C++ compiler found, and torch.compile needs one for CPU code; "
        "training without torch.compile (eager)"
    )
    assert all(getattr(e, "_compiled_call_impl", None) is None for e in speed.encoders(model))


@pytest.mark.slow
def test_pretrain_with_compile_runs_on_cpu(tmp_path: Path) -> None:
    """train.compile=true through `umcl pretrain` on the tiny demo model; where this machine cannot
    compile (no C++ compiler), the run must still finish, eagerly, after one warning line."""
    import torch._dynamo.utils

    prepare_tiny(tmp_path / "data", n=120, per_class=2)
    sets = [*TINY, "train.compile=true", "train.channels_last=true", "train.max_steps=3", "train.threads=1"]
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    result = cli_pretrain(tmp_path / "data", tmp_path / "run", sets)
    assert result.exit_code == 0, result.output
    state = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["state_dict"]
    assert not any(k.startswith("_orig_mod") or "._orig_mod." in k for k in state)  # names as without compile
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    if speed.compile_problem(CPU) is None:
        assert "warning: train.compile" not in result.output, result.output
        assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 3  # image, report ids, prompt embeds
    else:
        assert "warning: train.compile" in result.output
