"""Speed switches applied to the encoders before training: ``train.compile`` and ``train.channels_last``.

``fit`` calls :func:`speed_up` once, after moving the module to its device and before wrapping it in
DDP. It finds the encoders by their contracts (every ``ImageEncoder`` / ``TextEncoder`` inside the
trained module), so the engine still knows no model.

- ``channels_last``: the image encoders' weights are converted to the channels_last memory format,
  and every image batch is converted on its way in (a forward pre-hook calling
  :func:`to_channels_last`, so augmented batches, gradient accumulation and evaluation all get it).
  Convolutions on CUDA tensor cores, bf16 and fp16 especially, run faster in that layout.
- ``compile``: each encoder module is compiled in place (``nn.Module.compile``: parameter names,
  checkpoints and DDP stay as they are), not the loss or the whole objective. Compilation is lazy, so
  a trial forward and backward pass on synthetic inputs compiles the encoders at once; RNG state,
  BatchNorm statistics and gradients are restored afterwards, so a compiled run starts from the same
  state as an eager one. Where compiling is unsupported (no C++ compiler for CPU code, no Triton for
  CUDA, a Python that torch cannot compile for) or fails, one warning line is printed and the
  encoders stay eager.

The fused AdamW kernel, the third switch of this kind, needs no option: ``build_optimizer`` uses it
whenever all parameters are floating-point tensors on the CPU or on CUDA.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from umcl_cli.engine import distributed
from umcl_cli.engine.encoders import ImageEncoder, TextEncoder
from umcl_cli.engine.precision import Precision
from umcl_cli.errors import first_line
from umcl_cli.recipe import TrainConfig

_CHANNELS_LAST_HOOK = "_umcl_channels_last_hook"
TRIAL_TEXT = "a chest x-ray showing a small left pleural effusion"


def warn(message: str) -> None:
    """One line on stderr, from the first process only."""
    if distributed.current().is_main:
        print(f"warning: {message}", file=sys.stderr, flush=True)


def encoders(module: nn.Module) -> Iterator[nn.Module]:
    """The outermost ``ImageEncoder`` / ``TextEncoder`` modules inside ``module`` (itself included)."""
    inside: set[int] = set()
    for sub in module.modules():
        if id(sub) in inside:
            continue
        if isinstance(sub, ImageEncoder | TextEncoder):
            inside.update(id(m) for m in sub.modules())
            yield sub


def to_channels_last(images: torch.Tensor) -> torch.Tensor:
    """An image batch ``[B, C, H, W]`` in channels_last memory format (same values; other tensors unchanged)."""
    if images.dim() != 4:
        return images
    return images.contiguous(memory_format=torch.channels_last)


def _images_channels_last(
    module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if args and isinstance(args[0], torch.Tensor):
        args = (to_channels_last(args[0]), *args[1:])
    elif isinstance(kwargs.get("images"), torch.Tensor):
        kwargs = {**kwargs, "images": to_channels_last(kwargs["images"])}
    return args, kwargs


def use_channels_last(encoder: nn.Module) -> None:
    """Convert an image encoder's weights to channels_last and its input batches on every call."""
    encoder.to(memory_format=torch.channels_last)
    if _CHANNELS_LAST_HOOK not in encoder.__dict__:
        encoder.__dict__[_CHANNELS_LAST_HOOK] = encoder.register_forward_pre_hook(
            _images_channels_last, with_kwargs=True
        )


def compile_problem(device: torch.device) -> str | None:
    """Why torch.compile's default (inductor) backend cannot work here, or None when it should."""
    if not hasattr(nn.Module, "compile"):
        return f"torch {torch.__version__} has no nn.Module.compile (needs torch >= 2.2)"
    if device.type == "cuda":
        if importlib.util.find_spec("triton") is None:
            return "Triton is not installed, and torch.compile needs it for CUDA code"
        return None
    names = ("cl",) if sys.platform == "win32" else (os.environ.get("CXX", ""), "g++", "clang++", "c++")
    if not any(name and shutil.which(name) for name in names):
        return "no C++ compiler found, and torch.compile needs one for CPU code"
    return None


def _root_cause(exc: BaseException) -> BaseException:
    """torch wraps a backend's error (BackendCompilerFailed, InductorError): name the original."""
    seen = {id(exc)}
    while True:
        inner = exc.__cause__ or getattr(exc, "inner_exception", None)
        if not isinstance(inner, BaseException) or id(inner) in seen:
            return exc
        exc = inner
        seen.add(id(exc))


def _uncompile(module: nn.Module) -> None:
    if getattr(module, "_compiled_call_impl", None) is not None:
        module._compiled_call_impl = None  # what nn.Module.compile set: calls go to the eager module again


def _trial_inputs(encoder: nn.Module, device: torch.device, batch_size: int) -> list[Callable[[], torch.Tensor]]:
    """Calls covering each forward path of an encoder, on synthetic inputs of training shapes."""
    if isinstance(encoder, ImageEncoder):
        images = torch.randn(batch_size, encoder.in_chans, encoder.image_size, encoder.image_size, device=device)
        return [lambda: encoder(images)]
    assert isinstance(encoder, TextEncoder)
    tokens = encoder.tokenize([TRIAL_TEXT, TRIAL_TEXT + " and cardiomegaly"])
    ids, mask = tokens["input_ids"].to(device), tokens["attention_mask"].to(device)
    # Reports come as token ids, the prompt learner's prompts as embeddings: two compiled graphs.
    return [
        lambda: encoder(input_ids=ids, attention_mask=mask),
        lambda: encoder(inputs_embeds=encoder.token_embedding(ids), attention_mask=mask),
    ]


def trial_step(modules: list[nn.Module], device: torch.device, precision: Precision, batch_size: int) -> None:
    """One forward and backward pass through each module, leaving no trace: RNG streams, buffers
    (BatchNorm statistics) and gradients are as before."""
    buffers = [(b, b.detach().clone()) for m in modules for b in m.buffers()]
    grads = [(p, p.grad) for m in modules for p in m.parameters()]
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            for module in modules:
                for call in _trial_inputs(module, device, batch_size):
                    with precision.autocast():
                        out = call()
                    if out.requires_grad:
                        out.float().square().mean().backward()
    finally:
        with torch.no_grad():
            for buffer, saved in buffers:
                buffer.copy_(saved)
        for param, grad in grads:
            param.grad = grad


def compile_encoders(
    module: nn.Module,
    device: torch.device,
    precision: Precision,
    batch_size: int,
    backend: str | Callable[..., Any] = "inductor",
) -> bool:
    """Compile every encoder inside ``module`` in place and compile them now (a trial step); on any
    failure print one warning line, leave them eager and return False."""
    found = list(encoders(module))
    if not found:
        warn("train.compile: the trained module holds no image or text encoder to compile; training eagerly")
        return False
    problem = compile_problem(device) if backend == "inductor" else None
    if problem is None:
        try:
            for encoder in found:
                # Text batches vary in rows and length: one graph with symbolic sizes, not one per shape.
                encoder.compile(backend=backend, dynamic=True if isinstance(encoder, TextEncoder) else None)
            trial_step(found, device, precision, batch_size)
            return True
        except Exception as exc:  # any failure to compile means: train eagerly, as without the switch
            cause = _root_cause(exc)
            problem = f"compiling failed ({type(cause).__name__}: {first_line(cause)})"
        for encoder in found:
            _uncompile(encoder)
    warn(f"train.compile: {problem}; training without torch.compile (eager)")
    return False


def speed_up(module: nn.Module, cfg: TrainConfig, device: torch.device, precision: Precision) -> None:
    """Apply ``train.channels_last`` and ``train.compile`` to the encoders of ``module`` (already on
    ``device``, not yet wrapped in DDP)."""
    if cfg.channels_last:
        for encoder in encoders(module):
            if isinstance(encoder, ImageEncoder):
                use_channels_last(encoder)
    if cfg.compile:
        compile_encoders(module, device, precision, cfg.batch_size)
