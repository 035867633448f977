"""umcl's training engine against open_clip's own training loop and a bare PyTorch loop (issue 12).

The three loops train copies of one umcl model on the same in-memory batches (images decoded and
reports tokenised once, beforehand: open_clip tokenises in its dataset workers, umcl in its collate
workers, so tokenisation is in no loop):

- umcl: ``fit`` with ``PretrainObjective`` and the ``clip`` loss plugin, exactly as ``umcl pretrain``
  runs (metrics.jsonl every 10 steps, progress; its one checkpoint, after the last step, is not timed);
- open_clip: ``open_clip_train.train.train_one_epoch`` with open_clip's ``ClipLoss``, ``cosine_lr``
  and its parameter grouping; the model goes through a thin adapter giving open_clip's
  ``model(images, texts)`` -> ``{image_features, text_features, logit_scale}`` (the attention mask is
  ``texts != pad``, checked equal to the tokenizer's);
- bare: the shortest loop over the same objective: forward, loss, backward, clip, AdamW, schedule.

Every loop takes its batches from a DataLoader over the same rows whose collate hands out the next
pre-built batch. The loops run in three threads that take turns step by step (step k of each loop,
then step k+1 of each; the order rotates every round), so background load hits all three alike; a
step's time runs from one batch hand-out to the next. A ratio is the median, over the paired steps
after warm-up, of umcl's speed over the other loop's at the same step. No loop augments (open_clip
augments in its dataset). Sizes: ``demo`` (recipes/demo.yaml's encoders, 64 px, batch 64) and
``r50`` (timm ResNet-50 at 128 px + a 4-layer BERT of base width: 768 wide, 12 heads, 3,072 MLP,
a 30,522-row token table; batch 32).

    pip install -e '.[bench]'     # open-clip-torch: benchmark only
    python benchmarks/engine_vs_open_clip.py --size demo --steps 60
    python benchmarks/engine_vs_open_clip.py --size r50 --steps 12 --batch-size 32 --image-size 128
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

try:
    import open_clip
    from open_clip_train.scheduler import cosine_lr
    from open_clip_train.train import train_one_epoch
except ImportError:  # a benchmark-only dependency: the `bench` extra
    open_clip = None

from umcl_cli import registry
from umcl_cli.data.transforms import ImageTransform
from umcl_cli.engine.schedule import cosine_with_warmup
from umcl_cli.engine.trainer import fit, seed_everything
from umcl_cli.model.build import build_model
from umcl_cli.model.dual_encoder import DualEncoder
from umcl_cli.model.objectives import PretrainObjective
from umcl_cli.recipe import PluginRef, load_recipe
from umcl_cli.workflows.pretrain import build_stream

ROOT = Path(__file__).resolve().parents[1]
LOOPS = ("umcl", "open_clip", "bare")

R50_IMAGE = {"model_name": "resnet50", "in_chans": 1}
R50_TEXT = {
    "config": {
        "model_type": "bert",
        "hidden_size": 768,
        "num_hidden_layers": 4,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "max_position_embeddings": 512,
        "vocab_size": 30522,  # BERT-base's table; the corpus-trained WordPiece uses its first rows
    },
    "train_tokenizer": {"vocab_size": 1000},
    "pooling": "mean",
    "max_length": 96,
}


class Turns:
    """Step-by-step turn taking between threads: one loop computes while the others wait.

    Round r runs the loops in ``names`` rotated by r (A B C, B C A, C A B, ...), so each loop holds
    each position, and follows each other loop, equally often.
    """

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = list(names)
        self.left: set[str] = set()
        self.pos = 0
        self.cond = threading.Condition()
        self.started: dict[str, float | None] = dict.fromkeys(names)
        self.times: dict[str, list[float]] = {n: [] for n in names}

    def _at(self, pos: int) -> str:
        n = len(self.names)
        return self.names[(pos % n + pos // n) % n]

    def _holder(self) -> str | None:
        if len(self.left) == len(self.names):
            return None
        while self._at(self.pos) in self.left:
            self.pos += 1
        return self._at(self.pos)

    def take(self, name: str) -> None:
        """Called as ``name`` asks for its next batch: closes its step, passes the turn, waits for its own."""
        now = time.perf_counter()
        with self.cond:
            if self.started[name] is not None:  # it held the turn: its step ends here
                self.times[name].append(now - self.started[name])
                self.pos += 1
                self.cond.notify_all()
            self.cond.wait_for(lambda: self._holder() == name)
            self.started[name] = time.perf_counter()

    def leave(self, name: str) -> None:
        """``name`` has finished (or failed): the turn goes on among the others."""
        with self.cond:
            self.left.add(name)
            self.cond.notify_all()


class Rows(Dataset):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


class InOrder(Sampler[int]):
    """Rows in order, every epoch; ``set_epoch`` is what ``fit`` calls."""

    def __init__(self, n: int) -> None:
        self.n, self.skip = n, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.skip = skip

    def __iter__(self):
        return iter(range(self.skip, self.n))

    def __len__(self) -> int:
        return self.n - self.skip


class Feed:
    """A collate function that hands out the pre-built batch of its rows, in turn."""

    def __init__(self, turns: Turns, name: str, batches: list, batch_size: int, convert: Callable = lambda b: b):
        self.turns, self.name, self.batches, self.batch_size, self.convert = turns, name, batches, batch_size, convert

    def __call__(self, rows: list[int]) -> Any:
        batch = self.convert(self.batches[rows[0] // self.batch_size])
        self.turns.take(self.name)
        return batch


def loader(feed: Feed, n_batches: int, batch_size: int) -> DataLoader:
    return DataLoader(
        Rows(n_batches * batch_size), batch_size=batch_size, sampler=InOrder(n_batches * batch_size), collate_fn=feed
    )


class OpenClipAdapter(nn.Module):
    """umcl's dual encoder behind open_clip's ``model(images, texts)`` interface."""

    def __init__(self, model: DualEncoder, pad_id: int) -> None:
        super().__init__()
        self.model = model
        self.pad_id = pad_id

    @property
    def logit_scale(self) -> nn.Parameter:  # open_clip clamps it in place after each step
        return self.model.logit_scale

    def forward(self, images: torch.Tensor, texts: torch.Tensor) -> dict[str, torch.Tensor]:
        mask = (texts != self.pad_id).long()
        return {
            "image_features": self.model.encode_image(images),
            "text_features": self.model.encode_text(texts, mask),
            "logit_scale": self.model.scale(),
        }


class OpenClipData:
    """What ``train_one_epoch`` reads from ``data['train']``."""

    def __init__(self, dataloader: DataLoader, n_batches: int, batch_size: int) -> None:
        dataloader.num_batches = n_batches
        dataloader.num_samples = n_batches * batch_size
        self.dataloader = dataloader

    def set_epoch(self, epoch: int) -> None:
        pass


def run_umcl(model, loss, cfg, feed, n_batches, run_dir) -> None:
    task = PretrainObjective(model, loss, cfg.lr, cfg.weight_decay)
    rows = n_batches * cfg.batch_size
    fit(task, Rows(rows), feed, lambda rank, world: InOrder(rows), cfg, run_dir, description="umcl engine")


def run_open_clip(model, cfg, feed, n_batches, pad_id) -> None:
    adapted = OpenClipAdapter(model, pad_id)
    # open_clip's main.py: no weight decay on gains, biases, norms and the logit scale.
    named = [(n, p) for n, p in adapted.named_parameters() if p.requires_grad]
    exclude = lambda n, p: p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n  # noqa: E731
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for n, p in named if exclude(n, p)], "weight_decay": 0.0},
            {"params": [p for n, p in named if not exclude(n, p)], "weight_decay": cfg.weight_decay},
        ],
        lr=cfg.lr,
        betas=cfg.betas,
    )
    scheduler = cosine_lr(optimizer, cfg.lr, cfg.warmup_steps, n_batches)
    args = SimpleNamespace(
        device="cpu",
        precision="fp32",
        distill=False,
        accum_freq=1,
        skip_scheduler=False,
        grad_clip_norm=cfg.grad_clip,
        horovod=False,
        log_every_n_steps=cfg.log_every,
        batch_size=cfg.batch_size,
        world_size=1,
        rank=0,
        local_rank=0,
        wandb=False,
    )
    data = {"train": OpenClipData(loader(feed, n_batches, cfg.batch_size), n_batches, cfg.batch_size)}
    train_one_epoch(adapted, data, open_clip.ClipLoss(), 0, optimizer, None, scheduler, None, args)


def run_bare(model, loss, cfg, feed, n_batches) -> None:
    task = PretrainObjective(model, loss, cfg.lr, cfg.weight_decay)
    model.train()
    optimizer = torch.optim.AdamW(task.param_groups(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    scheduler = cosine_with_warmup(optimizer, cfg.warmup_steps, n_batches)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    cpu = torch.device("cpu")
    for batch in loader(feed, n_batches, cfg.batch_size):
        inputs = task.to_inputs(batch, cpu)
        out = task.compute_loss(model(inputs), inputs)
        optimizer.zero_grad(set_to_none=True)
        out.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        scheduler.step()


def measure(size: str, steps: int, warmup: int, batch_size: int, image_size: int | None, work: Path) -> dict:
    overrides = [f"train.batch_size={batch_size}", "data.label_text=drop", "model.prompt.enabled=false"]
    recipe = load_recipe(ROOT / "recipes" / "demo.yaml", overrides)
    if size == "r50":
        size_px = image_size or 128
        model_cfg = recipe.model.model_copy(
            update={
                "embed_dim": 512,
                "image_encoder": PluginRef(name="timm", options={**R50_IMAGE, "image_size": size_px}),
                "text_encoder": PluginRef(name="hf", options=R50_TEXT),
            }
        )
        recipe = recipe.model_copy(
            update={"model": model_cfg, "data": recipe.data.model_copy(update={"image_size": size_px})}
        )
    elif image_size:
        recipe = recipe.model_copy(update={"data": recipe.data.model_copy(update={"image_size": image_size})})
    stream = build_stream(recipe, str(work / "data"))
    seed_everything(0)
    base = build_model(recipe.model, stream.classes, stream.corpus, recipe.data.image_size, prompt=False)
    mean, std = base.image_encoder.normalization()
    stream.transform = ImageTransform(recipe.data.image_size, mean, std, base.image_encoder.in_chans)
    n_batches = steps + 1  # the last step of each loop ends no measured interval
    collate = PretrainObjective(base, None, 0.0, 0.0).collate()
    rows = [stream[i % len(stream)] for i in range(n_batches * batch_size)]  # cycles through the stream
    batches = [collate(rows[k * batch_size : (k + 1) * batch_size]) for k in range(n_batches)]
    pad_id = base.text_encoder.special_token_ids["pad"]
    for b in batches:
        assert torch.equal((b["input_ids"] != pad_id).long(), b["attention_mask"]), "pad id inside a report"
    loss = registry.load("losses", "clip")()
    cfg = recipe.train.model_copy(
        update={
            "max_steps": n_batches,
            "log_every": 10,
            "checkpoint_every": 10**9,  # only fit's final save, after the last (unmeasured) step
            "device": "cpu",
            "precision": "fp32",
            "warmup_steps": min(recipe.train.warmup_steps, n_batches // 2),
        }
    )

    turns = Turns(LOOPS)
    runs: dict[str, Callable[[], None]] = {
        "umcl": lambda: run_umcl(
            copy.deepcopy(base), loss, cfg, Feed(turns, "umcl", batches, batch_size), n_batches, work / f"run-{size}"
        ),
        "open_clip": lambda: run_open_clip(
            copy.deepcopy(base),
            cfg,
            Feed(turns, "open_clip", batches, batch_size, lambda b: (b["images"], b["input_ids"])),
            n_batches,
            pad_id,
        ),
        "bare": lambda: run_bare(copy.deepcopy(base), loss, cfg, Feed(turns, "bare", batches, batch_size), n_batches),
    }
    errors: list[str] = []

    def thread(name: str) -> None:
        try:
            runs[name]()
        except BaseException:  # reported by the main thread
            errors.append(f"{name}:\n{traceback.format_exc()}")
        finally:
            turns.leave(name)

    threads = [threading.Thread(target=thread, args=(name,), name=name) for name in LOOPS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit("a loop failed:\n" + "\n".join(errors))
    times = {name: turns.times[name][warmup:steps] for name in LOOPS}
    if len({len(v) for v in times.values()}) != 1 or not times["umcl"]:
        raise SystemExit(f"unpaired step counts: { {k: len(v) for k, v in times.items()} }")
    ratios = {
        other: [o / u for u, o in zip(times["umcl"], times[other], strict=True)] for other in ("open_clip", "bare")
    }
    return {
        "size": size,
        "params_m": sum(p.numel() for p in base.parameters()) / 1e6,
        "image_size": recipe.data.image_size,
        "batch_size": batch_size,
        "steps": len(times["umcl"]),
        "median_ms": {name: 1e3 * statistics.median(v) for name, v in times.items()},
        "ratios": ratios,  # umcl's speed over the other's, step by step
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("demo", "r50", "both"), default="demo")
    parser.add_argument("--steps", type=int, default=None, help="measured steps (default: demo 60, r50 12)")
    parser.add_argument("--warmup", type=int, default=None, help="first steps left out (default: demo 5, r50 2)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: demo 64, r50 32")
    parser.add_argument("--image-size", type=int, default=None, help="default: demo 64, r50 128")
    parser.add_argument("--n", type=int, default=3000, help="synthetic studies to generate")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if open_clip is None:
        print(
            "open_clip is not installed: this benchmark compares against open_clip's training loop.\n"
            "Install the benchmark extra (pip install -e '.[bench]', i.e. open-clip-torch) and run it again."
        )
        return
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="umcl-vs-open-clip-"))
    plugin = registry.load("datasets", "synthetic")
    plugin().prepare(plugin.Options(n=args.n, seed=0), work / "data" / "synthetic")
    sizes = ("demo", "r50") if args.size == "both" else (args.size,)
    for size in sizes:
        demo = size == "demo"
        steps = args.steps or (60 if demo else 12)
        warmup = args.warmup if args.warmup is not None else (5 if demo else 2)
        batch = args.batch_size or (64 if demo else 32)
        r = measure(size, steps + warmup, warmup, batch, args.image_size, work)
        ms = r["median_ms"]
        print(
            f"{size}: {r['params_m']:.2f} M parameters, {r['image_size']} px, batch {batch}, "
            f"{r['steps']} paired steps after {warmup} warm-up, {torch.get_num_threads()} threads"
        )
        for name in LOOPS:
            print(f"  {name:<9} median step {ms[name]:8.1f} ms  ({batch / ms[name] * 1e3:7.1f} samples/s)")
        for other, ratios in r["ratios"].items():
            low, _, high = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
            print(
                f"  umcl / {other:<9} speed = {statistics.median(ratios):.3f} "
                f"(median of {len(ratios)} paired step ratios; quartiles {low:.3f}-{high:.3f})"
            )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
