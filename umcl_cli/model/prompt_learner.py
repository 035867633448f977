"""Continuous prompts (CoOp-style) for the text encoder.

A prompt is ``[CLS] ctx_1 … ctx_n <class phrase tokens> [SEP]`` (``position="end"``) or
``[CLS] <phrase> ctx_1 … ctx_n [SEP]`` (``"front"``), fed to the text encoder as ``inputs_embeds``.
Label-only rows use the phrase of their positive classes ("cardiomegaly, pleural effusion", or
"no finding"); zero-shot uses one phrase per class. Context vectors are shared by default or
class-specific (``csc``); with ``csc`` a phrase naming several classes averages their contexts.

``compose`` says how a label-only row with several positive classes gets its text: ``joint``, one
prompt naming them all; ``per_class``, the mean of the single-class prompt features, so training
shapes exactly the one-class prompts that zero-shot classification reads.

``n_ctx`` is honoured together with initial words: extra vectors (N(0, 0.02)) are added, or words
dropped, on the side away from the class phrase, so the words next to the class stay as written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from umcl_cli.contracts import TextEncoder

DEFAULT_N_CTX = 4


class PromptLearner(nn.Module):
    def __init__(
        self,
        text_encoder: TextEncoder,
        classes: Sequence[str],
        n_ctx: int | None = None,
        init: str | None = "a chest x-ray showing",
        csc: bool = False,
        position: str = "end",
        compose: str = "joint",
    ) -> None:
        super().__init__()
        # Not a submodule: the learner borrows the encoder's embedding table, it does not own it.
        object.__setattr__(self, "_text_encoder", text_encoder)
        self.classes = list(classes)
        self.csc = csc
        self.position = position
        self.compose = compose
        self.init = init
        width = text_encoder.token_embedding.embedding_dim
        words = torch.empty(0, width)
        if init:
            with torch.no_grad():
                words = text_encoder.token_embedding(torch.tensor(self._phrase_ids(init))).detach().clone()
        self.n_ctx = n_ctx or (words.shape[0] if init else DEFAULT_N_CTX)
        rows = len(self.classes) if csc else 1
        # Class-specific contexts are drawn independently (CoOp), then the initial words overwrite
        # the positions they cover.
        base = torch.randn(rows, self.n_ctx, width) * 0.02
        keep = min(self.n_ctx, words.shape[0])
        if keep:
            if position == "end":  # class phrase after the context: keep the words nearest to it
                base[:, self.n_ctx - keep :] = words[words.shape[0] - keep :]
            else:
                base[:, :keep] = words[:keep]
        if not csc:
            base = base[0]
        self.ctx = nn.Parameter(base)
        self._ids_cache: dict[str, list[int]] = {}

    def config(self) -> dict[str, Any]:
        return {
            "classes": self.classes,
            "n_ctx": self.n_ctx,
            "init": self.init,
            "csc": self.csc,
            "position": self.position,
            "compose": self.compose,
        }

    def attach(self, text_encoder: TextEncoder) -> None:
        object.__setattr__(self, "_text_encoder", text_encoder)

    def _phrase_ids(self, phrase: str) -> list[int]:
        enc = self._text_encoder.tokenize([phrase])
        ids = enc["input_ids"][0][enc["attention_mask"][0].bool()].tolist()
        special = self._text_encoder.special_token_ids
        return [i for i in ids if i not in (special["cls"], special["sep"], special["pad"])]

    def phrase_ids(self, phrase: str) -> list[int]:
        if phrase not in self._ids_cache:
            self._ids_cache[phrase] = self._phrase_ids(phrase)
        return self._ids_cache[phrase]

    def context_for(self, class_sets: Sequence[Sequence[int]]) -> torch.Tensor:
        """``[B, n_ctx, width]`` context per prompt."""
        if not self.csc:
            return self.ctx.unsqueeze(0).expand(len(class_sets), -1, -1)
        fallback = list(range(len(self.classes)))
        if "No Finding" in self.classes:
            fallback = [self.classes.index("No Finding")]
        rows = [self.ctx[list(s) if s else fallback].mean(dim=0) for s in class_sets]
        return torch.stack(rows)

    def build(self, phrases: Sequence[str], class_sets: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token embeddings and attention mask ``[B, L, width]``, ``[B, L]`` for the prompts."""
        enc = self._text_encoder
        emb = enc.token_embedding
        special = enc.special_token_ids
        device = self.ctx.device
        max_len = enc.max_length
        ctx = self.context_for(class_sets)
        room = max(max_len - self.n_ctx - 2, 1)
        ids = [self.phrase_ids(p)[:room] for p in phrases]
        length = max(len(i) for i in ids) + self.n_ctx + 2
        cls = emb(torch.tensor([special["cls"]], device=device))
        sep = emb(torch.tensor([special["sep"]], device=device))
        pad = emb(torch.tensor([special["pad"]], device=device))
        rows, masks = [], []
        for b, phrase_ids in enumerate(ids):
            words = emb(torch.tensor(phrase_ids, dtype=torch.long, device=device))
            parts = [cls, ctx[b], words] if self.position == "end" else [cls, words, ctx[b]]
            seq = torch.cat([*parts, sep])
            n_pad = length - seq.shape[0]
            rows.append(torch.cat([seq, pad.expand(n_pad, -1)]))
            masks.append(torch.cat([torch.ones(seq.shape[0]), torch.zeros(n_pad)]))
        return torch.stack(rows), torch.stack(masks).to(device=device, dtype=torch.long)
