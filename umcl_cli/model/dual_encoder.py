"""The dual encoder: image and text encoders, linear projections, learnable logit scale, prompts."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from umcl_cli.contracts import ImageEncoder, TextEncoder
from umcl_cli.data.labels import class_phrase
from umcl_cli.model.prompt_learner import PromptLearner


class DualEncoder(nn.Module):
    def __init__(
        self,
        image_encoder: ImageEncoder,
        text_encoder: TextEncoder,
        embed_dim: int,
        classes: Sequence[str],
        prompt_learner: PromptLearner | None = None,
        logit_scale_init: float = 1 / 0.07,
        logit_scale_max: float = 100.0,
    ) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.image_proj = nn.Linear(image_encoder.output_dim, embed_dim, bias=False)
        self.text_proj = nn.Linear(text_encoder.output_dim, embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(logit_scale_init)))
        self.logit_scale_max = logit_scale_max
        self.embed_dim = embed_dim
        self.classes = list(classes)
        self.prompt_learner = prompt_learner

    def scale(self) -> torch.Tensor:
        return self.logit_scale.exp().clamp(max=self.logit_scale_max)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_proj(self.image_encoder(images)), dim=-1)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return F.normalize(
            self.text_proj(self.text_encoder(input_ids=input_ids, attention_mask=attention_mask)), dim=-1
        )

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Tokenise and encode plain strings (evaluation convenience)."""
        device = self.logit_scale.device
        tokens = self.text_encoder.tokenize(list(texts))
        return self.encode_text(tokens["input_ids"].to(device), tokens["attention_mask"].to(device))

    def encode_prompts(
        self,
        phrases: Sequence[str],
        class_sets: Sequence[Sequence[int]],
        learner: PromptLearner | None = None,
    ) -> torch.Tensor:
        learner = learner or self.prompt_learner
        if learner is None:
            raise ValueError("this model has no prompt learner")
        embeds, mask = learner.build(phrases, class_sets)
        out = self.text_encoder(inputs_embeds=embeds, attention_mask=mask)
        return F.normalize(self.text_proj(out), dim=-1)

    def encode_label_sets(self, class_sets: Sequence[Sequence[int]]) -> torch.Tensor:
        """Per-class composition: each row is the normalised mean of its classes' prompt features.

        Each distinct class prompt is encoded once per batch; a row with no positive class takes
        the "no finding" prompt.
        """
        learner = self.prompt_learner
        if learner is None:
            raise ValueError("this model has no prompt learner")
        needed = sorted({c for s in class_sets for c in s})
        column = {c: k for k, c in enumerate(needed)}
        phrases = [class_phrase([learner.classes[c]]) for c in needed]
        sets: list[list[int]] = [[c] for c in needed]
        if any(not s for s in class_sets):
            phrases.append(class_phrase([]))
            sets.append([])
        features = self.encode_prompts(phrases, sets)
        weights = torch.zeros(len(class_sets), len(phrases), device=features.device, dtype=features.dtype)
        for row, s in enumerate(class_sets):
            for c in s or [None]:
                weights[row, column[c] if c is not None else -1] = 1.0 / max(len(s), 1)
        return F.normalize(weights @ features, dim=-1)

    def encode_label_rows(self, phrases: Sequence[str], class_sets: Sequence[Sequence[int]]) -> torch.Tensor:
        """Text features of label-only rows, composed as the prompt learner says."""
        if self.prompt_learner is not None and self.prompt_learner.compose == "per_class":
            return self.encode_label_sets(class_sets)
        return self.encode_prompts(phrases, class_sets)

    def forward(self, inputs: dict) -> dict[str, torch.Tensor]:
        """Features of one training batch.

        ``inputs``: ``images``; ``input_ids``/``attention_mask`` for the rows listed in
        ``text_rows``; ``phrases``/``class_sets`` for the label-only rows in ``prompt_rows``;
        optionally ``view_rows``/``view_phrases``/``view_class_sets``: labelled pairs whose label
        prompt forms the label view (``label_view_features``).
        """
        image_features = self.encode_image(inputs["images"])
        parts, order = [], []
        if len(inputs["text_rows"]):
            parts.append(self.encode_text(inputs["input_ids"], inputs["attention_mask"]))
            order.append(inputs["text_rows"])
        if len(inputs["prompt_rows"]):
            parts.append(self.encode_label_rows(inputs["phrases"], inputs["class_sets"]))
            order.append(inputs["prompt_rows"])
        text_features = torch.cat(parts)[torch.argsort(torch.cat(order))]
        out = {"image_features": image_features, "text_features": text_features, "logit_scale": self.scale()}
        if "view_rows" in inputs:
            # The label view: labelled pairs take their label set's prompt in place of the report;
            # every other row keeps its own text, so each row still has exactly one text.
            view = text_features
            if len(inputs["view_rows"]):
                prompts = self.encode_label_rows(inputs["view_phrases"], inputs["view_class_sets"])
                view = text_features.index_copy(0, inputs["view_rows"], prompts.to(text_features.dtype))
            out["label_view_features"] = view
        if inputs.get("class_view"):
            out["class_similarity"] = image_features @ self.class_prompt_features().T.to(image_features.dtype)
        return out

    def class_prompt_features(self) -> torch.Tensor:
        """``[C, D]``: the single-class prompt of every class, as zero-shot classification builds them."""
        learner = self.prompt_learner
        if learner is None:
            raise ValueError("this model has no prompt learner")
        classes = learner.classes
        return self.encode_prompts([class_phrase([c]) for c in classes], [[k] for k in range(len(classes))])
