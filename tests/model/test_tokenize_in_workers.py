"""Reports are tokenised where batches are collated (the DataLoader's workers), not in the training step.

The new path must train exactly as the old one (``collate`` + tokenising in ``to_inputs``): the same
loss to the bit and the same weights after a step, and worker processes must produce the same ids.
"""

from __future__ import annotations

import copy
import pickle
import random

import torch
from e2e_helpers import REPORT_SENTENCES
from torch.utils.data import DataLoader, Dataset

from umcl_cli.data.labels import class_phrase
from umcl_cli.data.manifest import CHEXPERT_CLASSES
from umcl_cli.data.unified import TokenizingCollate, WeightedDistributedSampler, collate
from umcl_cli.engine.trainer import fit
from umcl_cli.model.objectives import PretrainObjective
from umcl_cli.recipe import TrainConfig
from umcl_encoders.hf_text import HFTokenize
from umcl_losses.itl import ImageTextLabelLoss

CLASSES = list(CHEXPERT_CLASSES)
CORPUS = [*REPORT_SENTENCES, "unchanged position of the endotracheal tube and nasogastric tube"]  # + unseen words


class Rows(Dataset):
    """Pre-training rows as ``UnifiedDataset`` gives them: report pairs and label-only rows (text None)."""

    def __init__(self, n: int, seed: int = 0) -> None:
        rng = random.Random(seed)
        gen = torch.Generator().manual_seed(seed)
        self.items = []
        for i in range(n):
            positives = sorted(rng.sample(range(len(CLASSES)), rng.randint(0, 2)))
            labels = torch.zeros(len(CLASSES))
            labels[positives] = 1.0
            text = None if i % 3 == 2 else " ".join(rng.sample(CORPUS, rng.randint(1, 4)))
            self.items.append(
                {
                    "image": torch.rand(1, 32, 32, generator=gen),
                    "text": text,
                    "phrase": class_phrase([CLASSES[j] for j in positives]),
                    "class_set": positives,
                    "labels": labels,
                    "has_labels": i % 2 == 0 or text is None,
                }
            )

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


def objective(model) -> PretrainObjective:
    return PretrainObjective(model, ImageTextLabelLoss(), lr=1e-3, weight_decay=0.1, pair_weight=1.0)


def test_the_collate_carries_the_ids_tokenize_gives(tiny_model) -> None:
    task = objective(tiny_model)
    items = [Rows(10)[i] for i in range(10)]
    batch = task.collate()(items)
    texts = [t for t in batch["texts"] if t is not None]
    expected = tiny_model.text_encoder.tokenize(texts)
    assert torch.equal(batch["input_ids"], expected["input_ids"])
    assert torch.equal(batch["attention_mask"], expected["attention_mask"])
    # A batch of label-only rows has no ids, and the step takes only prompts.
    label_only = task.collate()([it for it in items if it["text"] is None])
    assert "input_ids" not in label_only
    inputs = task.to_inputs(label_only, torch.device("cpu"))
    assert "input_ids" not in inputs and len(inputs["text_rows"]) == 0


def test_one_step_is_bit_identical_to_tokenizing_in_the_step(tiny_model, tmp_path) -> None:
    data = Rows(32)
    cfg = TrainConfig(max_steps=2, batch_size=16, lr=1e-3, warmup_steps=1, log_every=1, device="cpu")

    def sampler(rank: int, world: int) -> WeightedDistributedSampler:
        return WeightedDistributedSampler(torch.ones(len(data)).numpy(), rank, world, seed=0)

    results, weights = [], []
    for name, make_collate in (("in-step", lambda task: collate), ("in-collate", lambda task: task.collate())):
        task = objective(copy.deepcopy(tiny_model))
        results.append(fit(task, data, make_collate(task), sampler, cfg, tmp_path / name, seed=3))
        weights.append(task.module.state_dict())
    old, new = results
    assert old.steps == new.steps == 2
    assert new.final_loss == old.final_loss  # bit-identical, not approximately equal
    for key, value in weights[0].items():
        assert torch.equal(value, weights[1][key]), key


def test_workers_produce_the_same_ids(tiny_model) -> None:
    task = objective(tiny_model)
    data = Rows(24)
    tokenizing = task.collate()
    assert isinstance(tokenizing.tokenize, HFTokenize)  # the tokenizer travels, not the encoder's weights
    copied = pickle.loads(pickle.dumps(tokenizing))  # what spawn / forkserver workers receive
    in_process = list(DataLoader(data, batch_size=8, collate_fn=tokenizing))
    workers = list(DataLoader(data, batch_size=8, collate_fn=tokenizing, num_workers=2))
    assert len(workers) == len(in_process) == 3
    for here, there, items in zip(in_process, workers, [data.items[k : k + 8] for k in (0, 8, 16)], strict=True):
        assert here["texts"] == there["texts"]
        assert torch.equal(here["input_ids"], there["input_ids"])
        assert torch.equal(here["attention_mask"], there["attention_mask"])
        unpickled = copied(items)
        assert torch.equal(unpickled["input_ids"], here["input_ids"])
        assert torch.equal(unpickled["attention_mask"], here["attention_mask"])


def test_an_encoder_without_its_own_batch_tokenizer_tokenizes_with_tokenize(tiny_text_encoder) -> None:
    # The contract's default, for third-party text encoders: the bound tokenize.
    default = super(type(tiny_text_encoder), tiny_text_encoder).batch_tokenizer()
    texts = CORPUS[:5]
    batch = TokenizingCollate(default)([{**Rows(1)[0], "text": t} for t in texts])
    assert torch.equal(batch["input_ids"], tiny_text_encoder.tokenize(texts)["input_ids"])


def test_the_prompt_learner_tokenizes_each_class_phrase_once(tiny_model, monkeypatch) -> None:
    encoder, calls = tiny_model.text_encoder, []
    tokenize = encoder.tokenize
    monkeypatch.setattr(
        encoder, "tokenize", lambda texts, *a, **k: calls.append(list(texts)) or tokenize(texts, *a, **k)
    )
    phrases = ["cardiomegaly", "edema, pleural effusion", "no finding", "cardiomegaly"]
    sets = [[2], [5, 9], [], [2]]
    first = tiny_model.encode_prompts(phrases, sets)
    second = tiny_model.encode_prompts(phrases, sets)  # a later step: the ids come from the cache
    assert sorted(c[0] for c in calls) == ["cardiomegaly", "edema, pleural effusion", "no finding"]
    assert torch.equal(first, second)
