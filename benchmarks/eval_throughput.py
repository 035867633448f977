"""Evaluation throughput (images/s) of the demo model on CPU threads.

Three numbers over the 5x200-style test set: frozen image encoding alone (PNG decode, transform,
forward), zero-shot end to end without the feature cache (``umcl zeroshot`` minus process start-up),
and zero-shot end to end when the feature cache already holds the images.

    python benchmarks/eval_throughput.py                  # prepares data, trains a small demo model first
    python benchmarks/eval_throughput.py --ckpt runs/demo/pretrain/model.pt --data runs/demo/data
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from umcl_cli import registry
from umcl_cli.data.resolve import resolve_dataset
from umcl_cli.evaluation.features import encode_image_files
from umcl_cli.model.checkpoint import load_model
from umcl_cli.workflows.pretrain import pretrain

ROOT = Path(__file__).resolve().parents[1]
DATASET = "synthetic/5x200"


def prepare_model(work: Path, n: int, per_class: int, steps: int) -> tuple[Path, Path]:
    """Synthetic data at the demo's 64 px and the demo recipe trained for a few steps (weights do not
    change the cost of evaluation, only the architecture and image size do)."""
    plugin = registry.load("datasets", "synthetic")
    plugin().prepare(plugin.Options(n=n, seed=0, per_class=per_class), work / "data" / "synthetic")
    run = pretrain(
        ROOT / "recipes" / "demo.yaml", [f"train.max_steps={steps}"], work / "run", data_root=str(work / "data")
    )
    return run.model_path, work / "data"


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", type=Path, help="model.pt to measure (default: train a small demo model)")
    parser.add_argument("--data", type=Path, help="data root holding synthetic/5x200 (with --ckpt)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--per-class", type=int, default=100, help="5x200 images per class when preparing")
    parser.add_argument("--train-steps", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="umcl-eval-bench-"))
    if args.ckpt:
        ckpt, data = args.ckpt, args.data or Path("data")
    else:
        ckpt, data = prepare_model(work, n=600, per_class=args.per_class, steps=args.train_steps)

    model, payload = load_model(ckpt)
    ds = resolve_dataset(DATASET, data)
    paths = [ds.image_file(p) for p in ds.split("test")["image_path"].to_list()]
    n = len(paths)
    encode = [timed(lambda: encode_image_files(model, paths, payload["image_size"])) for _ in range(args.repeats)]

    def zeroshot(cache: Path) -> None:
        zeroshot(ckpt, DATASET, "templates", work / "zs", data_root=str(data), bootstrap=0, cache_dir=cache)

    cold = [timed(lambda i=i: zeroshot(work / f"cache-{i}")) for i in range(args.repeats)]
    warm = [timed(lambda: zeroshot(work / "cache-0")) for _ in range(args.repeats)]
    print(f"\ndemo model ({payload['image_size']} px), {n} images, {args.threads} threads, median of {args.repeats}:")
    for label, seconds in (
        ("image encoding", encode),
        ("zero-shot end to end, cold cache", cold),
        ("zero-shot end to end, warm cache", warm),
    ):
        print(f"  {label:34s} {n / statistics.median(seconds):8.1f} images/s")


if __name__ == "__main__":
    main()
