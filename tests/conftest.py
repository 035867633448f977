"""Shared fixtures: tiny configurations of the real encoder plugins."""

from __future__ import annotations

import os

import pytest
from e2e_helpers import REPORT_SENTENCES, TINY_BERT

from umcl_cli.data.manifest import CHEXPERT_CLASSES
from umcl_cli.model.dual_encoder import DualEncoder
from umcl_cli.model.prompt_learner import PromptLearner
from umcl_encoders.hf_text import build_hf_text_encoder
from umcl_encoders.timm_image import build_timm_image_encoder

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CORPUS = REPORT_SENTENCES * 5


@pytest.fixture
def tiny_text_encoder():
    return build_hf_text_encoder(
        config=dict(TINY_BERT), train_tokenizer={"vocab_size": 200}, corpus=CORPUS, max_length=48
    )


@pytest.fixture
def tiny_image_encoder():
    return build_timm_image_encoder("resnet18", in_chans=1, image_size=32, model_kwargs={"channels": [8, 8, 16, 16]})


@pytest.fixture
def tiny_model(tiny_image_encoder, tiny_text_encoder):
    model = DualEncoder(tiny_image_encoder, tiny_text_encoder, embed_dim=16, classes=list(CHEXPERT_CLASSES))
    model.prompt_learner = PromptLearner(tiny_text_encoder, list(CHEXPERT_CLASSES), init="a chest x-ray showing")
    return model
