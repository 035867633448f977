"""Build a fresh dual encoder from a recipe's model section through the plugin registry."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from umcl_cli import registry
from umcl_cli.contracts import ImageEncoder, TextEncoder
from umcl_cli.errors import UsageError, first_line
from umcl_cli.model.dual_encoder import DualEncoder
from umcl_cli.model.prompt_learner import PromptLearner
from umcl_cli.recipe import ModelConfig

ENCODER_TYPES: dict[str, type] = {"image_encoders": ImageEncoder, "text_encoders": TextEncoder}


def check_encoder(kind: str, name: str, encoder: Any) -> Any:
    """Refuse what a factory returned unless it is the ``ImageEncoder`` / ``TextEncoder`` its group promises."""
    expected = ENCODER_TYPES[kind]
    if not isinstance(encoder, expected):
        info = registry.describe(kind, name)
        an = registry.article(expected.__name__)
        raise registry.unusable(
            kind,
            info,
            f"its factory returned {registry.what(encoder)}, not {an}",
            f"the factory must return {an} (see umcl_cli.contracts): fix the {info.distribution} package",
        )
    return encoder


def _call_factory(kind: str, name: str, options: dict[str, Any], context: dict[str, Any]) -> Any:
    factory: Callable[..., Any] = registry.load(kind, name)
    params = inspect.signature(factory).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    # Context (corpus, image size) goes only to factories that ask for it.
    extra = {k: v for k, v in context.items() if k not in options and (takes_any or k in params)}
    field = f"model.{kind.removesuffix('s')}.options"
    try:
        encoder = factory(**options, **extra)
    except TypeError as exc:
        raise UsageError(
            f"{registry.KIND_NAMES[kind]} '{name}' rejected its options: {exc}",
            "check the options under model.*_encoder.options in the recipe",
        ) from exc
    except (RuntimeError, ValueError, OverflowError, MemoryError) as exc:
        # Out-of-range sizes (hidden_size=-1, 10**12) surface as torch errors while building.
        raise UsageError(
            f"{field}: {registry.KIND_NAMES[kind]} '{name}' cannot be built from these values "
            f"({type(exc).__name__}: {first_line(exc)})",
            f"check the sizes under {field}",
        ) from exc
    return check_encoder(kind, name, encoder)


def build_model(
    cfg: ModelConfig,
    classes: Sequence[str],
    corpus: list[str],
    image_size: int,
    prompt: bool,
    text_spec: dict[str, Any] | None = None,
) -> DualEncoder:
    """``text_spec`` (a text encoder's ``rebuild_spec()``) replaces the recipe's text options, so every
    rank and every resumed run uses the very tokenizer the first process built."""
    image_encoder = _call_factory(
        "image_encoders", cfg.image_encoder.name, cfg.image_encoder.options, {"image_size": image_size}
    )
    if text_spec is not None:
        text_encoder = _call_factory("text_encoders", cfg.text_encoder.name, text_spec, {})
    else:
        text_encoder = _call_factory(
            "text_encoders", cfg.text_encoder.name, cfg.text_encoder.options, {"corpus": corpus}
        )
    if cfg.grad_checkpointing:
        image_encoder.set_grad_checkpointing(True)  # an encoder without it raises a UsageError naming it
        text_encoder.set_grad_checkpointing(True)
    model = DualEncoder(
        image_encoder,
        text_encoder,
        embed_dim=cfg.embed_dim,
        classes=classes,
        logit_scale_init=cfg.logit_scale_init,
        logit_scale_max=cfg.logit_scale_max,
    )
    if prompt:
        p = cfg.prompt
        model.prompt_learner = PromptLearner(
            text_encoder, classes, n_ctx=p.n_ctx, init=p.init, csc=p.csc, position=p.position, compose=p.compose
        )
    return model
