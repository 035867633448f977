"""Text encoders from Hugging Face transformers: real weights by name/directory, or a from-scratch config."""

from __future__ import annotations

import json
from typing import Any

import torch
from tokenizers import Tokenizer
from torch import nn
from transformers import (
    CONFIG_MAPPING,
    AutoConfig,
    AutoModel,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from umcl_cli.contracts import TextEncoder, UsageError
from umcl_encoders.wordpiece import train_wordpiece

POOLINGS = ("cls", "mean")

# A serialized fast tokenizer keeps its special tokens but not the role each plays, so roles are
# recovered from the usual BERT / RoBERTa spellings.
_ROLE_SPELLINGS = {
    "cls_token": ("[CLS]", "<s>", "<cls>"),
    "sep_token": ("[SEP]", "</s>", "<sep>"),
    "pad_token": ("[PAD]", "<pad>"),
    "unk_token": ("[UNK]", "<unk>"),
    "mask_token": ("[MASK]", "<mask>"),
}
_LOCAL_DIR_FIX = "Pass a local directory holding the files (config.json, weights, tokenizer files)"


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    # The caller appends ". fix", so a trailing full stop would double.
    return text.splitlines()[0].rstrip(".") if text else type(exc).__name__


class HFTokenize:
    """``tokenize`` as a small picklable object (a fast tokenizer pickles) for DataLoader workers."""

    def __init__(self, tokenizer: PreTrainedTokenizerFast, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length

    def __call__(self, texts: list[str]) -> dict[str, torch.Tensor]:
        encoded = self.tokenizer(
            list(texts),
            padding="longest",
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
            return_token_type_ids=False,
        )
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}


class HFTextEncoder(TextEncoder):
    """A transformers encoder pooled to one vector per text (``cls`` token or masked ``mean``)."""

    def __init__(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, pooling: str, max_length: int
    ) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.max_length = max_length
        self.output_dim = model.config.hidden_size

    def tokenize(self, texts: list[str], max_length: int | None = None) -> dict[str, torch.Tensor]:
        return HFTokenize(self.tokenizer, max_length or self.max_length)(texts)

    def batch_tokenizer(self) -> HFTokenize:
        return HFTokenize(self.tokenizer, self.max_length)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor:
        hidden = self.model(
            input_ids=input_ids, attention_mask=attention_mask, inputs_embeds=inputs_embeds
        ).last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        if attention_mask is None:
            return hidden.mean(dim=1)
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)

    @property
    def token_embedding(self) -> nn.Embedding:
        return self.model.get_input_embeddings()

    @property
    def special_token_ids(self) -> dict[str, int]:
        return {
            "cls": self.tokenizer.cls_token_id,
            "sep": self.tokenizer.sep_token_id,
            "pad": self.tokenizer.pad_token_id,
        }

    def set_grad_checkpointing(self, enabled: bool = True) -> None:
        """transformers' per-layer activation checkpointing, non-reentrant.

        Non-reentrant checkpointing passes gradients to ``inputs_embeds`` (the prompt learner's
        context vectors) without any input needing ``requires_grad``, so the input hook transformers
        adds for the reentrant kind is removed again: it would force ``requires_grad`` on every word
        embedding output, in evaluation too.
        """
        net = self.model
        if not enabled:
            # transformers >= 5 names it activation_checkpointing_*; gradient_checkpointing_* is the old name.
            disable = getattr(net, "activation_checkpointing_disable", None) or net.gradient_checkpointing_disable
            disable()
            return
        if not getattr(net, "supports_gradient_checkpointing", False):
            raise UsageError(
                f"model.grad_checkpointing: the {type(net).__name__} text model does not support gradient "
                "checkpointing",
                "set model.grad_checkpointing: false, or use a transformers architecture that supports it (BERT…)",
            )
        kwargs = {"use_reentrant": False}
        enable = getattr(net, "activation_checkpointing_enable", None)
        if enable is not None:
            enable(activation_checkpointing_kwargs=kwargs)
        else:
            net.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        if getattr(net, "_require_grads_hooks", None) or getattr(net, "_require_grads_hook", None) is not None:
            net.disable_input_require_grads()

    def rebuild_spec(self) -> dict[str, Any]:
        return {
            "config": json.loads(self.model.config.to_json_string(use_diff=False)),
            "tokenizer_json": serialize_tokenizer(self.tokenizer),
            "pooling": self.pooling,
            "max_length": self.max_length,
        }


def serialize_tokenizer(tokenizer: PreTrainedTokenizerFast) -> str:
    """The backend tokenizer as JSON, without the padding/truncation state of its last call."""
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    backend.no_truncation()
    return backend.to_str()


def tokenizer_from_json(tokenizer_json: str) -> PreTrainedTokenizerFast:
    try:
        backend = Tokenizer.from_str(tokenizer_json)
    except Exception as exc:
        raise UsageError(
            f"tokenizer_json is not a serialized fast tokenizer: {_first_line(exc)}",
            "Pass the string of tokenizer.backend_tokenizer.to_str() or the text of a tokenizer.json",
        ) from exc
    present = {token.content for token in backend.get_added_tokens_decoder().values() if token.special}
    roles = {}
    for role, spellings in _ROLE_SPELLINGS.items():
        found = next((s for s in spellings if s in present), None)
        if found is not None:
            roles[role] = found
    return PreTrainedTokenizerFast(tokenizer_object=backend, **roles)


def _load_tokenizer(
    model: str | None,
    tokenizer: str | None,
    tokenizer_json: str | None,
    train_tokenizer: dict | None,
    corpus: list[str] | None,
) -> PreTrainedTokenizerFast:
    given = [tokenizer is not None, tokenizer_json is not None, train_tokenizer is not None]
    if sum(given) > 1:
        raise UsageError(
            "the text encoder has more than one tokenizer source",
            "Set only one of tokenizer, tokenizer_json and train_tokenizer",
        )
    if tokenizer_json is not None:
        return tokenizer_from_json(tokenizer_json)
    if train_tokenizer is not None:
        unknown = sorted(set(train_tokenizer) - {"vocab_size", "min_frequency"})
        if unknown:
            raise UsageError(f"unknown train_tokenizer option(s) {unknown}", "Use vocab_size and min_frequency")
        if not corpus:
            raise UsageError(
                "train_tokenizer needs the dataset's texts, but no corpus was given",
                "Train on a dataset with report text, or set tokenizer / tokenizer_json instead",
            )
        return train_wordpiece(corpus, **train_tokenizer)
    source = tokenizer if tokenizer is not None else model
    if source is None:
        raise UsageError(
            "the text encoder built from config has no tokenizer",
            "Set tokenizer (a name or directory), tokenizer_json or train_tokenizer",
        )
    try:
        loaded = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot load tokenizer {source!r}: {_first_line(exc)}", _LOCAL_DIR_FIX) from exc
    if not loaded.is_fast:
        raise UsageError(
            f"tokenizer {source!r} has no fast (tokenizers) version", "Use a tokenizer with tokenizer.json"
        )
    return loaded


def _model_from_config(config: dict, tokenizer: PreTrainedTokenizerFast) -> PreTrainedModel:
    options = dict(config)
    model_type = options.pop("model_type", None)
    if model_type not in CONFIG_MAPPING:
        raise UsageError(
            f"the text encoder config has model_type {model_type!r}, which transformers does not know",
            'Set model_type to a transformers architecture, e.g. "bert"',
        )
    # The embedding table must cover every id the tokenizer produces; a larger one (a rebuilt
    # checkpoint whose table is padded past the tokenizer) is kept so its weights still fit.
    options["vocab_size"] = max(options.get("vocab_size") or 0, len(tokenizer))
    options.setdefault("pad_token_id", tokenizer.pad_token_id)
    try:
        return AutoModel.from_config(AutoConfig.for_model(model_type, **options))
    except ValueError as exc:
        raise UsageError(
            f"bad text encoder config: {_first_line(exc)}", "Fix the config options for this model_type"
        ) from exc


def _load_model(name: str) -> PreTrainedModel:
    try:
        # float32 whatever the stored dtype: training casts through autocast, not through the weights.
        return AutoModel.from_pretrained(name, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot load text model {name!r}: {_first_line(exc)}", _LOCAL_DIR_FIX) from exc


def build_hf_text_encoder(
    model: str | None = None,
    config: dict | None = None,
    tokenizer: str | None = None,
    tokenizer_json: str | None = None,
    train_tokenizer: dict | None = None,
    pooling: str = "cls",
    max_length: int = 128,
    corpus: list[str] | None = None,
) -> HFTextEncoder:
    """Build a text encoder from ``model`` (hub name or local directory) or ``config`` (from scratch).

    The tokenizer comes from ``tokenizer``, ``tokenizer_json``, ``train_tokenizer`` (a WordPiece
    trained on ``corpus``) or, failing those, from ``model``.
    """
    if (model is None) == (config is None):
        raise UsageError(
            "the text encoder needs exactly one of model and config",
            "Set model (a hub name or local directory) or config (a from-scratch architecture)",
        )
    if pooling not in POOLINGS:
        raise UsageError(f"unknown text pooling {pooling!r}", f"Use one of {', '.join(POOLINGS)}")
    tok = _load_tokenizer(model, tokenizer, tokenizer_json, train_tokenizer, corpus)
    missing = [role for role in ("cls", "sep", "pad") if getattr(tok, f"{role}_token_id") is None]
    if missing:
        raise UsageError(f"the tokenizer has no {', '.join(missing)} token", "Use a BERT- or RoBERTa-style tokenizer")
    net = _load_model(model) if model is not None else _model_from_config(config, tok)
    if len(tok) > net.get_input_embeddings().num_embeddings:
        raise UsageError(
            f"the tokenizer has {len(tok)} tokens but the text model embeds only "
            f"{net.get_input_embeddings().num_embeddings}",
            "Use the tokenizer that belongs to the model",
        )
    # Features are pooled from the hidden states; a pooler head would hold parameters that never get
    # gradients, which DDP rejects.
    if isinstance(getattr(net, "pooler", None), nn.Module):
        net.pooler = None
    limit = getattr(net.config, "max_position_embeddings", None)
    if limit is not None and max_length > limit:
        raise UsageError(
            f"text max_length {max_length} exceeds the model's {limit} positions",
            f"Set max_length <= {limit}",
        )
    return HFTextEncoder(net, tok, pooling, max_length)
