"""Class text embeddings for zero-shot from hand-written ensembles, learned context, or a file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from umcl_cli.errors import UsageError
from umcl_cli.evaluation.features import encode_text_list
from umcl_cli.evaluation.prompts import class_prompts, load_prompt_file, negative_prompts
from umcl_cli.model.dual_encoder import DualEncoder
from umcl_cli.model.prompt_learner import PromptLearner

PROMPTS_FORMAT = "umcl-prompts"


@dataclass
class ClassTexts:
    """Per-class positive and negative embeddings ``[C, D]`` and a record of what produced them."""

    positive: torch.Tensor
    negative: torch.Tensor
    source: str
    record: dict[str, Any]


def _ensemble(model: DualEncoder, prompts: list[str]) -> torch.Tensor:
    return F.normalize(encode_text_list(model, prompts).mean(dim=0), dim=-1)


def from_text_prompts(model: DualEncoder, table: dict[str, dict[str, list[str]]], source: str) -> ClassTexts:
    pos = torch.stack([_ensemble(model, v["positive"]) for v in table.values()])
    neg = torch.stack([_ensemble(model, v["negative"]) for v in table.values()])
    return ClassTexts(pos, neg, source, {"source": source, "prompts": table})


def hand_written(model: DualEncoder, classes: list[str]) -> ClassTexts:
    table = {c: {"positive": class_prompts(c), "negative": negative_prompts(c)} for c in classes}
    return from_text_prompts(model, table, "templates")


@torch.no_grad()
def from_learner(model: DualEncoder, learner: PromptLearner, classes: list[str], source: str) -> ClassTexts:
    sets = [[learner.classes.index(c)] if c in learner.classes else [] for c in classes]
    if learner.csc and any(not s for s in sets):
        missing = [c for c, s in zip(classes, sets, strict=True) if not s]
        raise UsageError(
            f"class-specific prompts have no context for {missing}",
            "prompt-tune on these classes, or use --prompts templates",
        )
    pos = model.encode_prompts([c.lower() for c in classes], sets, learner=learner).float().cpu()
    neg = model.encode_prompts([f"no {c.lower()}" for c in classes], sets, learner=learner).float().cpu()
    record = {"source": source, "learned": learner.config(), "phrases": [c.lower() for c in classes]}
    return ClassTexts(pos, neg, source, record)


def save_prompts(learner: PromptLearner, path: Path, extra: dict[str, Any]) -> None:
    from umcl_cli.io_safety import atomic_save

    atomic_save(
        {"format": PROMPTS_FORMAT, "config": learner.config(), "ctx": learner.ctx.detach().cpu(), **extra}, path
    )


def load_learned_prompts(model: DualEncoder, path: Path) -> PromptLearner:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UsageError(
            f"{path} is not a umcl prompts file", "pass the prompts.pt written by `umcl prompt-tune`"
        ) from exc
    if not isinstance(state, dict) or state.get("format") != PROMPTS_FORMAT:
        raise UsageError(f"{path} is not a umcl prompts file", "pass the prompts.pt written by `umcl prompt-tune`")
    cfg = state["config"]
    learner = PromptLearner(
        model.text_encoder, cfg["classes"], n_ctx=cfg["n_ctx"], init=None, csc=cfg["csc"], position=cfg["position"]
    )
    if learner.ctx.shape[-1] != state["ctx"].shape[-1]:
        raise UsageError(f"{path} was learned for a text encoder of another width", "prompt-tune this checkpoint")
    learner.ctx.data.copy_(state["ctx"])
    learner.init = cfg.get("init")
    return learner.to(model.logit_scale.device)


def covers(learner: PromptLearner | None, classes: list[str]) -> bool:
    """Whether ``learner`` can prompt every class: a shared context prompts any class name;
    class-specific contexts only the classes they were trained on."""
    return learner is not None and (not learner.csc or all(c in learner.classes for c in classes))


def resolve(model: DualEncoder, classes: list[str], prompts: str) -> ClassTexts:
    """``auto`` (learned if the checkpoint's learner covers the classes, else templates), ``templates``,
    ``learned``, a ``.pt`` file from ``umcl prompt-tune``, or a YAML file of prompts per class."""
    if prompts == "auto":
        prompts = "learned" if covers(model.prompt_learner, classes) else "templates"
    if prompts == "templates":
        return hand_written(model, classes)
    if prompts == "learned":
        if model.prompt_learner is None:
            raise UsageError("this checkpoint has no learned prompts", "use --prompts templates or a prompt-tune file")
        return from_learner(model, model.prompt_learner, classes, "learned")
    path = Path(prompts)
    if not path.is_file():
        raise UsageError(
            f"--prompts {prompts}: no such file", "use auto, templates, learned, a prompts.pt or a YAML file"
        )
    if path.suffix in (".yaml", ".yml"):
        return from_text_prompts(model, load_prompt_file(path, classes), f"file:{path}")
    return from_learner(model, load_learned_prompts(model, path), classes, f"file:{path}")
