"""The encoder contract: the ``ImageEncoder`` / ``TextEncoder`` base classes.

Import them from ``umcl_cli.contracts``, the public place for every plugin contract; they are
defined here, beside the loss contract (``engine.contrastive``), so that ``umcl_cli.contracts`` can
hand out the torch-free contracts (datasets, manifests) without importing torch.

An entry point in ``umcl.image_encoders`` / ``umcl.text_encoders`` names a *factory*: a callable
taking keyword options (from the recipe) and returning one of the modules below. The core never
imports a concrete encoder.

``rebuild_spec()`` returns JSON-able keyword options from which the same factory rebuilds the
architecture offline, with no download (weights then come from the checkpoint). That is what makes
``model.pt`` self-contained.

``set_grad_checkpointing(enabled)`` is optional: an encoder that can recompute its activations in
the backward pass instead of storing them (``model.grad_checkpointing: true``) overrides it; the
default refuses with a ``UsageError`` naming the encoder.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from umcl_cli.errors import UsageError


def _no_checkpointing(encoder: nn.Module, kind: str) -> UsageError:
    cls = type(encoder)
    return UsageError(
        f"model.grad_checkpointing: the {kind} encoder {cls.__qualname__} ({cls.__module__}) "
        "does not support gradient checkpointing",
        "set model.grad_checkpointing: false, or implement set_grad_checkpointing in that encoder",
    )


class ImageEncoder(nn.Module, ABC):
    """Maps a float batch ``[B, C, H, W]`` (C = ``in_chans``) to pooled features ``[B, output_dim]``."""

    output_dim: int
    in_chans: int
    image_size: int

    @abstractmethod
    def forward(self, images: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def rebuild_spec(self) -> dict[str, Any]: ...

    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Mean and std applied to images in [0, 1] (per input channel)."""
        return (0.5,) * self.in_chans, (0.5,) * self.in_chans

    def set_grad_checkpointing(self, enabled: bool = True) -> None:
        """Recompute activations during backward instead of keeping them (optional; outputs and
        gradients must not change). The default refuses with a ``UsageError`` naming the encoder."""
        if enabled:
            raise _no_checkpointing(self, "image")


class TextEncoder(nn.Module, ABC):
    """Tokenises text and maps token ids *or* token embeddings to pooled features ``[B, output_dim]``.

    ``inputs_embeds`` lets the prompt learner feed learned context vectors in place of word
    embeddings; ``token_embedding`` is the word-embedding table it reads class phrases from.
    """

    output_dim: int
    max_length: int

    @abstractmethod
    def tokenize(self, texts: list[str], max_length: int | None = None) -> dict[str, torch.Tensor]:
        """Return ``input_ids`` and ``attention_mask`` (``[B, L]``, padded, with special tokens)."""

    def batch_tokenizer(self) -> Callable[[list[str]], dict[str, torch.Tensor]]:
        """A callable giving exactly what ``tokenize(texts)`` gives, for the data-loading workers.

        Pre-training collates with it, so text is tokenised in the DataLoader's workers rather than
        in the training step. It is pickled to each worker under the ``spawn``/``forkserver`` start
        methods: override this to return a small picklable object (the tokenizer and its settings);
        the default, the bound ``tokenize``, pickles the whole encoder, weights included.
        """
        return self.tokenize

    @abstractmethod
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor: ...

    @property
    @abstractmethod
    def token_embedding(self) -> nn.Embedding: ...

    @property
    @abstractmethod
    def special_token_ids(self) -> dict[str, int]:
        """At least ``cls``, ``sep`` and ``pad`` ids (BERT-style wrapping of a prompt)."""

    @abstractmethod
    def rebuild_spec(self) -> dict[str, Any]: ...

    def set_grad_checkpointing(self, enabled: bool = True) -> None:
        """As ``ImageEncoder.set_grad_checkpointing``; must also hold for the ``inputs_embeds`` path."""
        if enabled:
            raise _no_checkpointing(self, "text")
