"""``model.pt``: one file that rebuilds the dual encoder alone, loaded with ``weights_only=True``.

It holds the encoders' rebuild specs (architecture + tokenizer, no download needed), the weights,
the prompt learner's configuration, the class vocabulary, the recipe and its hash, and the umcl
version. Only tensors and plain containers are stored, so loading never unpickles code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from umcl_cli import __version__, registry
from umcl_cli.engine.resume import MODEL_FORMAT
from umcl_cli.errors import UsageError, first_line
from umcl_cli.io_safety import atomic_save, atomic_write
from umcl_cli.model.build import check_encoder
from umcl_cli.model.dual_encoder import DualEncoder
from umcl_cli.model.prompt_learner import PromptLearner

FORMAT = MODEL_FORMAT
FORMAT_VERSION = 1
# What load_model reads; "prompt" may be None but must be present.
REQUIRED = ("image_encoder", "text_encoder", "embed_dim", "logit_scale_max", "classes", "prompt", "state_dict")


def model_payload(
    model: DualEncoder,
    image_encoder_name: str,
    text_encoder_name: str,
    recipe: dict[str, Any] | None = None,
    recipe_hash: str = "",
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "umcl_version": __version__,
        "image_encoder": {"name": image_encoder_name, "spec": model.image_encoder.rebuild_spec()},
        "text_encoder": {"name": text_encoder_name, "spec": model.text_encoder.rebuild_spec()},
        "embed_dim": model.embed_dim,
        "logit_scale_max": model.logit_scale_max,
        "classes": list(model.classes),
        "prompt": model.prompt_learner.config() if model.prompt_learner is not None else None,
        "image_size": model.image_encoder.image_size,
        "recipe": recipe or {},
        "recipe_hash": recipe_hash,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }


def save_model(payload: dict[str, Any], path: Path, export_safetensors: bool = True) -> None:
    atomic_save(payload, path)
    if export_safetensors:
        tensors = {k: v.contiguous() for k, v in payload["state_dict"].items()}
        atomic_write(
            path.with_suffix(".safetensors"), lambda tmp: save_file(tensors, str(tmp), metadata={"format": FORMAT})
        )


def read_checkpoint(path: Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"checkpoint {path} not found", "pass the model.pt written by `umcl pretrain`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for non-checkpoint files
        raise UsageError(
            f"{path} is not a umcl checkpoint (cannot be read safely: {type(exc).__name__})",
            "pass the model.pt written by `umcl pretrain`",
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UsageError(f"{path} is not a umcl checkpoint", "pass the model.pt written by `umcl pretrain`")
    missing = [key for key in REQUIRED if key not in payload]
    if missing:
        raise UsageError(
            f"{path} is a damaged umcl checkpoint (it lacks {', '.join(missing)})",
            "pass a complete model.pt written by `umcl pretrain`",
        )
    return payload


def build_prompt_learner(model: DualEncoder, config: dict[str, Any]) -> PromptLearner:
    return PromptLearner(
        model.text_encoder,
        config["classes"],
        n_ctx=config["n_ctx"],
        init=None,  # the trained context comes from the state dict; its shape is set by n_ctx
        csc=config["csc"],
        position=config["position"],
        compose=config.get("compose", "joint"),  # checkpoints from before composition existed
    )


def load_model(path: Path) -> tuple[DualEncoder, dict[str, Any]]:
    """Rebuild the model from ``model.pt`` alone; return it (eval mode) and the payload."""
    payload = read_checkpoint(path)
    try:
        image_name, text_name = payload["image_encoder"]["name"], payload["text_encoder"]["name"]
        image_factory = registry.load("image_encoders", image_name)
        text_factory = registry.load("text_encoders", text_name)
        image_encoder = check_encoder("image_encoders", image_name, image_factory(**payload["image_encoder"]["spec"]))
        text_encoder = check_encoder("text_encoders", text_name, text_factory(**payload["text_encoder"]["spec"]))
        model = DualEncoder(
            image_encoder,
            text_encoder,
            embed_dim=payload["embed_dim"],
            classes=payload["classes"],
            logit_scale_max=payload["logit_scale_max"],
        )
        if payload["prompt"] is not None:
            model.prompt_learner = build_prompt_learner(model, payload["prompt"])
            model.prompt_learner.init = payload["prompt"]["init"]
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        # A payload that passed the format check but whose parts do not rebuild a model.
        raise UsageError(
            f"{path} is a damaged umcl checkpoint ({type(exc).__name__}: {first_line(exc)})",
            "pass a complete model.pt written by `umcl pretrain`",
        ) from exc
    # Weights only: a buffer may hold -inf on purpose (an attention mask).
    diverged = [k for k, p in model.named_parameters() if not torch.isfinite(p).all()]
    if diverged:
        raise UsageError(
            f"{path} holds non-finite weights ({diverged[0]}): the training that wrote it diverged",
            "train again with a lower train.lr",
        )
    model.eval()
    return model, payload
