"""Training throughput of umcl's engine against a bare PyTorch loop: same model, same batches.

Both loops run the demo recipe's model on the same in-memory batches (decoded once, so disk and PNG
decoding are out of the comparison), the same objective, optimiser, schedule and clipping; the engine
adds what a real run needs (sampler bookkeeping, metrics.jsonl, progress, checkpoints). Runs alternate
to spread machine noise. Prints samples/s of each and their ratio.

    python benchmarks/engine_throughput.py --steps 60 --repeats 3
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from umcl_cli import registry
from umcl_cli.data.transforms import BatchAugment, ImageTransform
from umcl_cli.data.unified import TokenizingCollate, WeightedDistributedSampler
from umcl_cli.engine.schedule import cosine_with_warmup
from umcl_cli.engine.trainer import fit, seed_everything
from umcl_cli.model.build import build_model
from umcl_cli.model.objectives import PretrainObjective
from umcl_cli.recipe import load_recipe
from umcl_cli.workflows.pretrain import build_stream

ROOT = Path(__file__).resolve().parents[1]


class InMemory(Dataset):
    def __init__(self, items: list[dict]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


def bare_loop(objective: PretrainObjective, data: InMemory, steps: int, batch: int, cfg, collate) -> float:
    model = objective.module
    model.train()
    optimizer = torch.optim.AdamW(objective.param_groups(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    scheduler = cosine_with_warmup(optimizer, cfg.warmup_steps, steps)
    sampler = WeightedDistributedSampler(torch.ones(len(data)).numpy(), seed=0)
    loader = DataLoader(data, batch_size=batch, sampler=sampler, collate_fn=collate, drop_last=True)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    done, start = 0, time.perf_counter()
    while done < steps:
        for b in loader:
            inputs = objective.to_inputs(b, torch.device("cpu"))
            loss = objective.compute_loss(model(inputs), inputs)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            done += 1
            if done == steps:
                break
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n", type=int, default=1200, help="synthetic rows to generate")
    args = parser.parse_args()
    torch.set_num_threads(2)

    work = Path(tempfile.mkdtemp(prefix="umcl-bench-"))
    plugin = registry.load("datasets", "synthetic")
    plugin().prepare(plugin.Options(n=args.n, seed=0), work / "data" / "synthetic")
    recipe = load_recipe(ROOT / "recipes" / "demo.yaml", [f"train.batch_size={args.batch_size}"])
    stream = build_stream(recipe, str(work / "data"))
    seed_everything(0)
    base = build_model(recipe.model, stream.classes, stream.corpus, recipe.data.image_size, prompt=True)
    stream.transform = ImageTransform(recipe.data.image_size, *base.image_encoder.normalization(), 1)
    data = InMemory([stream[i] for i in range(len(stream))])
    loss = registry.load("losses", recipe.loss.name)()
    collate = TokenizingCollate(base.text_encoder.batch_tokenizer())  # as pretrain collates (num_workers 0)
    cfg = recipe.train.model_copy(update={"max_steps": args.steps, "log_every": 10, "checkpoint_every": args.steps})

    def objective() -> PretrainObjective:
        return PretrainObjective(copy.deepcopy(base), loss, cfg.lr, cfg.weight_decay, augment=BatchAugment())

    bare, engine = [], []
    for r in range(args.repeats):
        bare.append(bare_loop(objective(), data, args.steps, args.batch_size, cfg, collate))
        sampler = lambda rank, world: WeightedDistributedSampler(torch.ones(len(data)).numpy(), rank, world)  # noqa: E731
        result = fit(objective(), data, collate, sampler, cfg, work / f"run{r}", description="engine")
        engine.append(result.samples_per_s)
        print(f"repeat {r + 1}: bare {bare[-1]:.1f} samples/s, engine {engine[-1]:.1f} samples/s", file=sys.stderr)
    b, e = statistics.median(bare), statistics.median(engine)
    print(
        f"model: demo recipe ({sum(p.numel() for p in base.parameters()) / 1e6:.2f} M parameters), "
        f"batch {args.batch_size}, {args.steps} steps x {args.repeats} repeats, {torch.get_num_threads()} threads"
    )
    print(f"bare loop: {b:.1f} samples/s (median)")
    print(f"engine:    {e:.1f} samples/s (median)")
    print(f"engine / bare = {e / b:.3f}")


if __name__ == "__main__":
    main()
