"""umcl from Python: load a trained model, embed images and texts, zero-shot, and every workflow.

    from umcl_cli.api import load_model
    model = load_model("runs/demo/pretrain/model.pt")
    probs = model.zeroshot(["a.png", "b.png"], ["Atelectasis", "Cardiomegaly", "Pleural Effusion"])

``load_model`` returns a ``UmclModel``: the network, its preprocessing and tokenizer, and methods that
take paths, PIL images, arrays or tensors. The workflows (``pretrain``, ``zeroshot``, ``linear_probe``,
``prompt_sweep``, ``retrieve``) are the functions the commands run; each returns a typed result
whose ``to_record()`` is its ``metrics.json``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from umcl_cli.data.images import load_gray, to_gray
from umcl_cli.data.transforms import ImageTransform
from umcl_cli.errors import UsageError
from umcl_cli.evaluation import prompt_sources
from umcl_cli.evaluation.features import eval_transform
from umcl_cli.model.dual_encoder import DualEncoder
from umcl_cli.workflows.linear_probe import LinearProbeResult, linear_probe
from umcl_cli.workflows.loading import load_eval_model
from umcl_cli.workflows.pretrain import PretrainResult, pretrain
from umcl_cli.workflows.prompt_tuning import PromptSweepResult, PromptTuneResult, prompt_sweep, prompt_tune
from umcl_cli.workflows.retrieval import RetrievalResult, retrieve
from umcl_cli.workflows.sensitivity import SensitivityResult, sensitivity
from umcl_cli.workflows.zeroshot import ZeroShotResult, zeroshot

__all__ = [
    "LinearProbeResult",
    "PretrainResult",
    "PromptSweepResult",
    "PromptTuneResult",
    "RetrievalResult",
    "SensitivityResult",
    "UmclModel",
    "ZeroShotResult",
    "linear_probe",
    "load_model",
    "pretrain",
    "prompt_sweep",
    "prompt_tune",
    "retrieve",
    "sensitivity",
    "zeroshot",
]

ImageInput = str | Path | Image.Image | np.ndarray | torch.Tensor


class UmclModel:
    """A trained dual encoder with what it needs to take raw inputs.

    ``network``: the ``DualEncoder`` (a ``torch.nn.Module``, eval mode); ``preprocess``: grayscale
    ``uint8`` array → normalised ``[C, S, S]`` tensor; ``tokenizer``: texts → ``input_ids`` and
    ``attention_mask``; ``classes``: the label vocabulary it was trained with.
    """

    def __init__(self, network: DualEncoder) -> None:
        self.network = network
        self.preprocess: ImageTransform = eval_transform(network, network.image_encoder.image_size)
        self.tokenizer: Callable[[list[str]], dict[str, torch.Tensor]] = network.text_encoder.tokenize
        self.classes: list[str] = list(network.classes)

    @property
    def device(self) -> torch.device:
        return self.network.logit_scale.device

    def pixels(self, images: Sequence[ImageInput] | torch.Tensor) -> torch.Tensor:
        """A preprocessed batch ``[N, C, S, S]``: paths and PIL images are read as grayscale; a tensor
        batch (or a list of ``[C, S, S]`` tensors) is taken as already preprocessed."""
        if isinstance(images, torch.Tensor):
            return images if images.dim() == 4 else images.unsqueeze(0)
        return torch.stack([self._one(image) for image in images])

    def _one(self, image: ImageInput) -> torch.Tensor:
        if isinstance(image, torch.Tensor):
            return image
        if isinstance(image, str | Path):
            return self.preprocess(load_gray(image))
        if isinstance(image, Image.Image):
            return self.preprocess(np.array(to_gray(image)))
        if isinstance(image, np.ndarray) and image.ndim == 2:
            return self.preprocess(image.astype(np.uint8))
        raise UsageError(
            f"cannot read an image from {type(image).__name__}",
            "pass file paths, PIL images, 2-D uint8 arrays or preprocessed tensors",
        )

    @torch.no_grad()
    def encode_images(self, images: Sequence[ImageInput] | torch.Tensor, batch_size: int = 128) -> torch.Tensor:
        """L2-normalised image embeddings ``[N, D]`` (on the CPU)."""
        pixels = self.pixels(images)
        parts = [
            self.network.encode_image(pixels[i : i + batch_size].to(self.device))
            for i in range(0, len(pixels), batch_size)
        ]
        return torch.cat(parts).float().cpu()

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """L2-normalised text embeddings ``[N, D]`` (on the CPU)."""
        parts = [self.network.encode_texts(list(texts[i : i + batch_size])) for i in range(0, len(texts), batch_size)]
        return torch.cat(parts).float().cpu()

    def class_embeddings(
        self, classes: Sequence[str] | Mapping[str, Sequence[str]], prompts: str = "auto"
    ) -> torch.Tensor:
        """One embedding per class ``[C, D]``. ``classes``: names (prompts as in ``umcl zeroshot
        --prompts``: ``auto``, ``templates``, ``learned`` or a prompts file), or name → your own prompt
        texts (their embeddings are averaged)."""
        if isinstance(classes, Mapping):
            table = {c: {"positive": list(p), "negative": list(p)} for c, p in classes.items()}
            return prompt_sources.from_text_prompts(self.network, table, "given").positive
        return prompt_sources.resolve(self.network, list(classes), prompts).positive

    def zeroshot(
        self,
        images: Sequence[ImageInput] | torch.Tensor,
        classes: Sequence[str] | Mapping[str, Sequence[str]],
        prompts: str = "auto",
    ) -> torch.Tensor:
        """Class probabilities ``[N, C]`` (softmax over the classes at the trained temperature)."""
        logits = self.encode_images(images) @ self.class_embeddings(classes, prompts).T
        return (float(self.network.scale().detach()) * logits).softmax(dim=-1)


def load_model(path: str | Path) -> UmclModel:
    """A ``model.pt`` written by ``umcl pretrain``, rebuilt offline (eval mode, GPU when present)."""
    return UmclModel(load_eval_model(Path(path)))
