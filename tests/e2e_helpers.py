"""Tiny end-to-end settings shared by the end-to-end and distributed tests."""

from __future__ import annotations

from pathlib import Path

from umcl_datasets.synthetic import SyntheticDataset

RECIPES = Path(__file__).parents[1] / "recipes"

# A 2-layer BERT small enough for unit tests; no dropout, so train and eval modes agree.
TINY_BERT = {
    "model_type": "bert",
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
    "max_position_embeddings": 64,
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
}

# The demo recipe, shrunk: same plugins, narrower models, 32 px, a handful of steps.
# Report sentences the tiny test text encoders train their WordPiece on.
REPORT_SENTENCES = [
    "a chest x-ray showing cardiomegaly",
    "moderate left pleural effusion with adjacent atelectasis",
    "no pneumothorax. the lungs are clear.",
    "findings consistent with pulmonary edema and cardiomegaly",
    "no finding. normal chest radiograph.",
    "right lower lobe consolidation concerning for pneumonia",
]

TINY = [
    "data.image_size=32",
    "model.embed_dim=16",
    "model.image_encoder.options.channels=[8,8,16,16]",
    "model.text_encoder.options.config.hidden_size=32",
    "model.text_encoder.options.config.intermediate_size=64",
    "model.text_encoder.options.train_tokenizer.vocab_size=300",
    "model.text_encoder.options.max_length=64",
    "train.batch_size=16",
    "train.max_steps=6",
    "train.warmup_steps=2",
    "train.log_every=2",
    "train.checkpoint_every=2",
]


def prepare_tiny(root: Path, n: int = 240, per_class: int = 8) -> Path:
    plugin = SyntheticDataset()
    out = root / "synthetic"
    plugin.prepare(plugin.Options(n=n, seed=0, size=32, per_class=per_class), out)
    return out


def cli_pretrain(data: Path, out: Path, overrides: list[str], recipe: str = "demo.yaml"):
    """`umcl pretrain RECIPE --data-root DATA --out OUT --set …` through Typer's runner (tracebacks off)."""
    from typer.testing import CliRunner

    from umcl_cli.cli.app import app

    sets = [a for s in overrides for a in ("--set", s)]
    args = ["pretrain", str(RECIPES / recipe), "--data-root", str(data), "--out", str(out), *sets]
    return CliRunner().invoke(app, args, env={"UMCL_DEBUG": ""})
