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
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import torch
from torch import nn


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
