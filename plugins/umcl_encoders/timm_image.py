"""Image encoders from timm: any timm model name, pooled features, grayscale-ready."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn

from umcl_cli.contracts import ImageEncoder, UsageError
from umcl_encoders.checkpointing import exact_norm_statistics
from umcl_encoders.input_norm import check_input_norm, standardize_per_image


def _as_tuples(value: Any) -> Any:
    """YAML gives lists; several timm constructors index or hash their arguments as tuples."""
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _as_tuples(v) for k, v in value.items()}
    return value


def _as_lists(value: Any) -> Any:
    """The JSON-able mirror of ``_as_tuples`` for ``rebuild_spec``."""
    if isinstance(value, (list, tuple)):
        return [_as_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_lists(v) for k, v in value.items()}
    return value


def _read_checkpoint(path: str, classifier: str | tuple[str, ...] | None) -> dict[str, torch.Tensor]:
    """Load a safetensors / torch weights file and drop the classifier (the encoder has none).

    Dropping it here, rather than letting timm do it, keeps timm's load strict: timm relaxes to
    ``strict=False`` whenever it discards a classifier, which would hide a wrong checkpoint.
    """
    if not Path(path).is_file():
        raise UsageError(f"timm checkpoint_path {path!r} is not a file", "Give the path of a local weights file")
    try:
        state_dict = timm.models.load_state_dict(path, weights_only=True)
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else type(exc).__name__
        raise UsageError(
            f"cannot read timm checkpoint {path!r}: {first_line}",
            "Give a .safetensors file or a torch state dict saved with torch.save",
        ) from exc
    names = (classifier,) if isinstance(classifier, str) else classifier or ()
    for name in names:
        state_dict.pop(f"{name}.weight", None)
        state_dict.pop(f"{name}.bias", None)
    return state_dict


class TimmImageEncoder(ImageEncoder):
    """A timm backbone with its classifier removed (``num_classes=0``), returning pooled features.

    ``input_norm="per_image"`` standardises each image inside the model (see ``input_norm.py``).
    """

    def __init__(self, model: nn.Module, spec: dict[str, Any]) -> None:
        super().__init__()
        self.model = model
        self._spec = spec
        self.in_chans = spec["in_chans"]
        self.image_size = spec["image_size"]
        self.output_dim = self._feature_size()
        self.per_image = spec.get("input_norm", "dataset") == "per_image"

    def _feature_size(self) -> int:
        """Width of the features, measured: pooling such as ``catavgmax`` widens them, and with
        ``global_pool=""`` the map is flattened so where a finding lies (base, apex, heart border)
        reaches the projection."""
        was_training = self.model.training
        self.model.eval()
        with torch.no_grad():
            out = self.model(torch.zeros(1, self.in_chans, self.image_size, self.image_size))
        self.model.train(was_training)
        return out[0].numel()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.per_image:
            images = standardize_per_image(images)
        features = self.model(images)
        return features.flatten(1) if features.ndim == 4 else features

    def rebuild_spec(self) -> dict[str, Any]:
        return dict(self._spec)

    def set_grad_checkpointing(self, enabled: bool = True) -> None:
        """timm's own activation checkpointing (per block or stage, as each model defines it)."""
        try:
            self.model.set_grad_checkpointing(enabled)
        except (AssertionError, NotImplementedError, AttributeError) as exc:
            if not enabled:
                return
            raise UsageError(
                f"model.grad_checkpointing: timm model {self._spec['model_name']!r} does not support "
                "gradient checkpointing",
                "set model.grad_checkpointing: false, or pick a timm model that supports it (ResNet, ViT, ConvNeXt…)",
            ) from exc
        exact_norm_statistics(self.model, enabled)

    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        cfg = self.model.pretrained_cfg
        mean, std = tuple(cfg.get("mean", (0.5,))), tuple(cfg.get("std", (0.5,)))
        if len(mean) == self.in_chans:
            return mean, std
        # A grayscale stem adapted from RGB weights sees the channel average, so use it.
        return (sum(mean) / len(mean),) * self.in_chans, (sum(std) / len(std),) * self.in_chans


def build_timm_image_encoder(
    model_name: str = "resnet50",
    pretrained: bool = False,
    checkpoint_path: str | None = None,
    in_chans: int = 1,
    image_size: int = 224,
    model_kwargs: dict | None = None,
    input_norm: str = "dataset",
) -> TimmImageEncoder:
    """Build a timm image encoder.

    ``pretrained`` downloads timm's weights; ``checkpoint_path`` loads a local weights file instead
    (offline). Either way timm adapts a 3-channel stem to ``in_chans`` and, for ViT-like models,
    resizes position embeddings to ``image_size``. ``input_norm``: ``dataset`` (the weights' mean and
    std, applied by the data transform) or ``per_image`` (each image standardised in the model).
    """
    check_input_norm(input_norm)
    if not timm.is_model(model_name):
        raise UsageError(f"unknown timm model {model_name!r}", "Pick a name from timm.list_models()")
    model_kwargs = dict(model_kwargs or {})
    cfg = timm.models.get_pretrained_cfg(model_name)
    kwargs = _as_tuples(model_kwargs)
    # Fixed-size models (ViT, Swin, ...) bake the input size into their position embeddings.
    if cfg is not None and cfg.fixed_input_size:
        kwargs.setdefault("img_size", image_size)
    if checkpoint_path is not None:
        state_dict = _read_checkpoint(checkpoint_path, cfg.classifier if cfg is not None else None)
        overlay: dict[str, Any] = {"state_dict": state_dict}
        stem = cfg.first_conv if cfg is not None else None
        stem_weight = state_dict.get(f"{stem}.weight") if isinstance(stem, str) else None
        if stem_weight is not None and stem_weight.ndim == 4 and stem_weight.shape[1] == in_chans:
            # Weights saved from an encoder with this many channels: tell timm, which otherwise
            # assumes RGB weights and warns about loading them unchanged.
            overlay["input_size"] = (in_chans, *cfg.input_size[1:])
        kwargs["pretrained_cfg_overlay"] = overlay
    load_weights = pretrained or checkpoint_path is not None
    try:
        model = timm.create_model(model_name, pretrained=load_weights, num_classes=0, in_chans=in_chans, **kwargs)
    except TypeError as exc:
        raise UsageError(
            f"timm model {model_name!r} rejects its options: {exc}", "Check model_kwargs against that model"
        ) from exc
    except OSError as exc:
        # Only reached when downloading: hub or URL unreachable, or weights not cached.
        raise UsageError(
            f"cannot download pretrained weights for timm model {model_name!r}",
            "Set checkpoint_path to a local weights file, or pretrained: false",
        ) from exc
    except RuntimeError as exc:
        if checkpoint_path is None:
            raise
        # timm loads the file strictly: missing, unexpected or mis-shaped weights end up here.
        raise UsageError(
            f"checkpoint {checkpoint_path!r} does not fit timm model {model_name!r}",
            "Use weights saved from the same architecture and model_kwargs",
        ) from exc
    spec = {
        "model_name": model_name,
        "pretrained": False,
        "checkpoint_path": None,
        "in_chans": in_chans,
        "image_size": image_size,
        "model_kwargs": _as_lists(model_kwargs),
        "input_norm": input_norm,
    }
    return TimmImageEncoder(model, spec)
