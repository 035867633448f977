"""Wall time and peak RSS of chunked ``retrieval_metrics`` on random L2-normalised features.

Example: ``python benchmarks/retrieval_memory.py --n 100000 --dim 512 --chunk-size 1024``
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

import torch

from umcl_cli.evaluation.metrics import retrieval_metrics


def _peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux but bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="number of image-text pairs")
    parser.add_argument("--dim", type=int, default=512, help="feature dimension")
    parser.add_argument("--chunk-size", type=int, default=1024, help="query rows per score block")
    parser.add_argument("--num-classes", type=int, default=5, help="label classes for the P@k path")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    gen = torch.Generator().manual_seed(args.seed)
    images = torch.nn.functional.normalize(torch.randn(args.n, args.dim, generator=gen), dim=1)
    texts = torch.nn.functional.normalize(torch.randn(args.n, args.dim, generator=gen), dim=1)
    labels = torch.randint(0, 2, (args.n, args.num_classes), generator=gen)
    rss_inputs = _peak_rss_mib()

    start = time.perf_counter()
    metrics = retrieval_metrics(images, texts, chunk_size=args.chunk_size, labels=labels)
    elapsed = time.perf_counter() - start

    print(f"n={args.n} dim={args.dim} chunk_size={args.chunk_size} threads={torch.get_num_threads()}")
    print(f"wall time: {elapsed:.1f} s")
    print(f"peak RSS: {_peak_rss_mib():.0f} MiB (after building inputs: {rss_inputs:.0f} MiB)")
    for key, value in metrics.items():
        print(f"  {key}: {value:.4f}")


if __name__ == "__main__":
    main()
