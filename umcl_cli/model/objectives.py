"""Training objectives the engine runs: contrastive pre-training and prompt tuning."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from umcl_cli.data.unified import TokenizingCollate
from umcl_cli.engine.contrastive import ContrastiveBatch, ContrastiveLoss
from umcl_cli.engine.task import TrainTask
from umcl_cli.engine.trainer import split_decay
from umcl_cli.model.dual_encoder import DualEncoder
from umcl_cli.model.prompt_learner import PromptLearner


class PretrainObjective(TrainTask):
    """Image-text(-label) contrastive pre-training of the whole dual encoder."""

    loss_keys = ("labels", "has_labels")

    def __init__(
        self,
        model: DualEncoder,
        loss: ContrastiveLoss,
        lr: float,
        weight_decay: float,
        text_lr: float | None = None,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
        pair_weight: float = 0.0,
        class_weight: float = 0.0,
    ) -> None:
        self.module = model
        self.augment = augment
        self.model = model
        self.loss = loss
        self.lr, self.text_lr, self.weight_decay = lr, text_lr or lr, weight_decay
        self.find_unused_parameters = model.prompt_learner is not None
        # Weight of the label view: every labelled image against the prompt of its label set (a
        # pair's report replaced by its labels' prompt), so prompts also learn from report-labelled images.
        self.pair_weight = pair_weight if model.prompt_learner is not None else 0.0
        # Weight of the class view: every labelled image classified over the single-class prompts
        # zero-shot uses (soft cross-entropy, its positive classes as targets).
        self.class_weight = class_weight if model.prompt_learner is not None else 0.0

    def param_groups(self) -> list[dict[str, Any]]:
        named = list(self.model.named_parameters())
        text = [(n, p) for n, p in named if n.startswith("text_encoder.")]
        rest = [(n, p) for n, p in named if not n.startswith("text_encoder.")]
        return split_decay(rest, self.lr, self.weight_decay) + split_decay(text, self.text_lr, self.weight_decay)

    def collate(self) -> TokenizingCollate:
        """The collate function to train with: it tokenises the reports in the DataLoader's workers."""
        return TokenizingCollate(self.model.text_encoder.batch_tokenizer())

    def to_inputs(self, batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
        """Move a batch to ``device``; text rows without ids (plain ``collate``) are tokenised here."""
        texts = batch["texts"]
        text_rows = [i for i, t in enumerate(texts) if t is not None]
        prompt_rows = [i for i, t in enumerate(texts) if t is None]
        images = batch["images"].to(device, non_blocking=True)
        inputs: dict[str, Any] = {
            "images": self.augment(images) if self.augment else images,
            "text_rows": torch.tensor(text_rows, dtype=torch.long, device=device),
            "prompt_rows": torch.tensor(prompt_rows, dtype=torch.long, device=device),
            "phrases": [batch["phrases"][i] for i in prompt_rows],
            "class_sets": [batch["class_sets"][i] for i in prompt_rows],
            "labels": batch["labels"].to(device),
            "has_labels": batch["has_labels"].to(device),
        }
        if self.pair_weight:
            has = batch["has_labels"].tolist()
            view_rows = [i for i in text_rows if has[i]]
            inputs["view_rows"] = torch.tensor(view_rows, dtype=torch.long, device=device)
            inputs["view_phrases"] = [batch["phrases"][i] for i in view_rows]
            inputs["view_class_sets"] = [batch["class_sets"][i] for i in view_rows]
        if self.class_weight:
            inputs["class_view"] = True
        if text_rows:
            tokens = batch if "input_ids" in batch else self.model.text_encoder.tokenize([texts[i] for i in text_rows])
            inputs["input_ids"] = tokens["input_ids"].to(device, non_blocking=True)
            inputs["attention_mask"] = tokens["attention_mask"].to(device, non_blocking=True)
        return inputs

    def compute_loss(self, outputs: dict[str, Any], inputs: dict[str, Any]) -> torch.Tensor:
        def contrast(text_features: torch.Tensor) -> torch.Tensor:
            return self.loss(
                ContrastiveBatch(
                    image_features=outputs["image_features"],
                    text_features=text_features,
                    logit_scale=outputs["logit_scale"],
                    labels=inputs["labels"],
                    has_labels=inputs["has_labels"],
                )
            )

        loss = contrast(outputs["text_features"])
        if "label_view_features" in outputs:
            loss = loss + self.pair_weight * contrast(outputs["label_view_features"])
        if "class_similarity" in outputs:
            logits = outputs["logit_scale"] * outputs["class_similarity"]
            loss = loss + self.class_weight * class_view_loss(logits, inputs["labels"], inputs["has_labels"])
        return loss

    def extra_logs(self) -> dict[str, float]:
        return {"logit_scale": float(self.model.scale().detach())}


def class_view_loss(logits: torch.Tensor, labels: torch.Tensor, has_labels: torch.Tensor) -> torch.Tensor:
    """Soft cross-entropy of each labelled row over the classes, its positives sharing the target
    mass equally; rows without labels or without a positive class (ignored entries are NaN) take no part."""
    positive = (torch.nan_to_num(labels.float()) > 0) & has_labels[:, None]
    used = positive.any(dim=1)
    targets = positive[used].float()
    targets = targets / targets.sum(dim=1, keepdim=True)
    log_p = F.log_softmax(logits[used].float(), dim=1)
    # Empty when no row qualifies: a zero that keeps the graph (every parameter takes part under DDP).
    return -(targets * log_p).sum() / used.sum().clamp(min=1) + 0.0 * logits.sum()


class PromptClassifier(nn.Module):
    """Frozen dual encoder + a prompt learner: logits of each image against each class prompt."""

    def __init__(self, model: DualEncoder, learner: PromptLearner, class_names: list[str]) -> None:
        super().__init__()
        self.learner = learner
        object.__setattr__(self, "frozen", model)  # not a submodule: DDP and the optimiser never see it
        self.phrases = [c.lower() for c in class_names]
        self.class_sets = [[learner.classes.index(c)] if c in learner.classes else [] for c in class_names]

    def forward(self, inputs: dict[str, Any]) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            image_features = self.frozen.encode_image(inputs["images"])
        text_features = self.frozen.encode_prompts(self.phrases, self.class_sets, learner=self.learner)
        return {"logits": self.frozen.scale().detach() * image_features @ text_features.T}


class PromptTuneObjective(TrainTask):
    """CoOp: cross-entropy over class prompts; only the context vectors learn."""

    loss_keys = ("targets",)

    def __init__(
        self,
        classifier: PromptClassifier,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
        weight_decay: float = 0.0,
    ) -> None:
        self.module = classifier
        self.augment = augment
        self.weight_decay = weight_decay  # CoOp decays the context (5e-4); umcl's default does not

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": [self.module.learner.ctx], "weight_decay": self.weight_decay}]

    def to_inputs(self, batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
        images = batch["images"].to(device)
        return {"images": self.augment(images) if self.augment else images, "targets": batch["targets"].to(device)}

    def compute_loss(self, outputs: dict[str, Any], inputs: dict[str, Any]) -> torch.Tensor:
        return F.cross_entropy(outputs["logits"].float(), inputs["targets"])
