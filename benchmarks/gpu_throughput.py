"""Training throughput, achieved TFLOP/s and MFU of a base.yaml-size model over a batch-size sweep.

The model is built the way `umcl pretrain` builds it (``build_model``, ``speed_up``, ``build_optimizer``):
ResNet-50 (timm, 1 channel, 224 px) + a BERT-base configuration (transformers: 12 layers, 768 wide,
vocabulary 30,522; random weights, so nothing is downloaded), embed_dim 512, CLIP loss, AdamW (fused
kernel, CPU and CUDA), bf16 autocast on CUDA. Inputs are synthetic: random images and full-length reports
(128 tokens, base.yaml's max_length: the upper bound of a real batch). Each configuration runs on a
freshly built model:

- ``eager``: neither switch; ``ckpt``: ``model.grad_checkpointing``; ``compile``: ``train.compile``;
  ``ckpt+compile``: both.

FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` over one eager forward + backward
step without checkpointing at the smallest batch size and scaled linearly with the batch (the
``B x B`` logits are the only superlinear term, < 0.01 % of the total): these are *model* FLOPs, so the
recomputation that checkpointing adds is not counted as useful work (MFU, not hardware FLOP
utilisation). MFU = achieved TFLOP/s / ``--peak-tflops`` (default: the bf16 dense peak of a known GPU,
found by name). ``CPU ms`` is the process's CPU time per step (all threads): on a shared CPU it varies
less than wall time. Peak memory is ``torch.cuda.max_memory_allocated`` on CUDA; on CPU ``--rss`` instead
runs one forward + backward step per configuration in a fresh process and reports its peak RSS.

    python benchmarks/gpu_throughput.py                                # on a GPU: the full sweep
    python benchmarks/gpu_throughput.py --batch-sizes 64,128,256 --configs eager,ckpt
    python benchmarks/gpu_throughput.py --tiny --device cpu            # toy sizes, runs anywhere
    python benchmarks/gpu_throughput.py --rss --device cpu --batch-sizes 16 --precision fp32
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from umcl_cli import registry
from umcl_cli.engine import speed
from umcl_cli.engine.contrastive import ContrastiveBatch
from umcl_cli.engine.precision import Precision
from umcl_cli.engine.schedule import build_optimizer
from umcl_cli.model.build import build_model
from umcl_cli.model.dual_encoder import DualEncoder
from umcl_cli.recipe import ModelConfig, PluginRef, TrainConfig

CONFIGS = ("eager", "ckpt", "compile", "ckpt+compile")
CLASSES = 14
# bf16 dense tensor-core peaks (TFLOP/s) from the vendors' data sheets; matched against the device name.
PEAK_BF16_TFLOPS = {
    "B200": 2250.0,
    "H200": 989.0,
    "H100 PCIe": 756.0,
    "H100": 989.0,
    "H800": 989.0,
    "GH200": 989.0,
    "A100": 312.0,
    "A800": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10G": 70.0,
}


@dataclass
class Size:
    name: str
    image: dict
    text: dict
    image_size: int
    text_length: int
    embed_dim: int
    batch_sizes: list[int] = field(default_factory=list)


SIZES = {
    "base": Size(
        "ResNet-50 + BERT-base (base.yaml)",
        {"model_name": "resnet50", "in_chans": 1},
        {
            "model_type": "bert",
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
            "max_position_embeddings": 512,
            "vocab_size": 30522,
        },
        224,
        128,
        512,
        [32, 64, 128, 256],
    ),
    "demo": Size(
        "demo.yaml encoders (convnet 16-32-64-128 + 2-layer BERT, 64 wide)",
        {"channels": [16, 32, 64, 128], "input_norm": "per_image", "pool": "flatten"},
        {
            "model_type": "bert",
            "hidden_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 128,
            "max_position_embeddings": 128,
            "vocab_size": 1000,
        },
        64,
        64,
        64,
        [64],
    ),
    "tiny": Size(
        "tiny ResNet-18 (8-8-16-16) + 2-layer BERT, 32 wide",
        {"model_name": "resnet18", "in_chans": 1, "model_kwargs": {"channels": [8, 8, 16, 16]}},
        {
            "model_type": "bert",
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "max_position_embeddings": 64,
            "vocab_size": 300,
        },
        32,
        16,
        16,
        [4, 8],
    ),
}
CORPUS = ["no acute cardiopulmonary process", "small left pleural effusion", "mild cardiomegaly"] * 4


def model_config(size: Size, grad_checkpointing: bool) -> ModelConfig:
    image = PluginRef(name="convnet" if "channels" in size.image else "timm", options=dict(size.image))
    text = PluginRef(
        name="hf",
        options={"config": size.text, "train_tokenizer": {"vocab_size": 100}, "max_length": size.text_length},
    )
    return ModelConfig(
        embed_dim=size.embed_dim, image_encoder=image, text_encoder=text, grad_checkpointing=grad_checkpointing
    )


def build(size: Size, grad_checkpointing: bool, device: torch.device) -> DualEncoder:
    torch.manual_seed(0)
    model = build_model(model_config(size, grad_checkpointing), ["c"] * 1, CORPUS, size.image_size, prompt=False)
    return model.to(device).train()


def synthetic_inputs(size: Size, batch: int, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(batch)
    vocab = size.text["vocab_size"]
    return {
        "images": torch.randn(batch, 1, size.image_size, size.image_size, generator=g).to(device),
        "input_ids": torch.randint(0, vocab, (batch, size.text_length), generator=g).to(device),
        "attention_mask": torch.ones(batch, size.text_length, dtype=torch.long, device=device),
        "text_rows": torch.arange(batch, device=device),
        "prompt_rows": torch.zeros(0, dtype=torch.long, device=device),
        "phrases": [],
        "class_sets": [],
        "labels": torch.zeros(batch, CLASSES, device=device),
        "has_labels": torch.zeros(batch, dtype=torch.bool, device=device),
    }


def forward_backward(model: DualEncoder, loss_fn, inputs: dict, precision: Precision) -> torch.Tensor:
    with precision.autocast():
        out = model(inputs)
        loss = loss_fn(
            ContrastiveBatch(
                out["image_features"], out["text_features"], out["logit_scale"], inputs["labels"], inputs["has_labels"]
            )
        )
    precision.backward(loss)
    return loss


def count_flops(size: Size, batch: int, device: torch.device, precision: Precision) -> float:
    model, loss_fn = build(size, False, device), registry.load("losses", "clip")()
    counter = FlopCounterMode(display=False)
    with counter:
        forward_backward(model, loss_fn, synthetic_inputs(size, batch, device), precision)
    del model
    return float(counter.get_total_flops())


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(config: str, size: Size, batch: int, args, device: torch.device, precision: Precision) -> dict:
    """One row: a freshly built model, the switches of ``config``, warm-up steps, then timed steps."""
    gc.collect()  # the previous row's model
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    model = build(size, "ckpt" in config, device)
    if args.channels_last:  # before compiling, as fit does
        speed.speed_up(model, TrainConfig(channels_last=True), device, precision)
    if "compile" in config:
        torch._dynamo.reset()  # compile for this batch size afresh (static shapes, no recompile limit)
    compiled = "compile" in config and speed.compile_encoders(model, device, precision, batch)
    optimizer = build_optimizer([{"params": [p for p in model.parameters() if p.requires_grad]}], "adamw", 1e-4, 0.1)
    loss_fn = registry.load("losses", "clip")()
    inputs = synthetic_inputs(size, batch, device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        forward_backward(model, loss_fn, inputs, precision)
        precision.step(optimizer)

    for _ in range(args.warmup):
        step()
    sync(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
        step()
    sync(device)
    seconds = (time.perf_counter() - start) / args.steps
    cpu_seconds = (time.process_time() - cpu_start) / args.steps  # all threads; steadier on a shared machine
    memory = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    fused = bool(optimizer.defaults.get("fused"))
    return {"step_s": seconds, "cpu_s": cpu_seconds, "memory_gib": memory, "compiled": compiled, "fused": fused}


def one_step_rss(args) -> None:
    """In a fresh process: build, run one forward + backward, print RSS before and at peak (JSON)."""
    import resource  # POSIX only

    device = torch.device(args.device)
    size = SIZES[args.model]
    precision = Precision(args.precision, device)
    batch = int(args.batch_sizes.split(",")[0])
    model, loss_fn = build(size, args.one_step == "ckpt", device), registry.load("losses", "clip")()
    inputs = synthetic_inputs(size, batch, device)
    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    start = time.perf_counter()
    forward_backward(model, loss_fn, inputs, precision)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"config": args.one_step, "rss_before_mib": before, "rss_peak_mib": peak, "seconds": seconds}))


def rss_table(args) -> None:
    rows = []
    for config in [c for c in args.configs.split(",") if "compile" not in c]:
        command = [sys.executable, str(Path(__file__).resolve()), "--one-step", config]
        command += ["--model", args.model, "--device", args.device, "--precision", args.precision]
        command += ["--batch-sizes", args.batch_sizes.split(",")[0], "--threads", str(args.threads)]
        done = subprocess.run(command, capture_output=True, text=True, check=True, env=os.environ)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    size = SIZES[args.model]
    batch = args.batch_sizes.split(",")[0]
    print(f"model: {size.name}, batch {batch}, {size.image_size} px, {size.text_length} tokens, {args.precision}")
    print(f"one forward + backward step per fresh process, {args.device}, {args.threads} threads")
    print(f"{'config':<8} {'peak RSS MiB':>13} {'RSS before MiB':>15} {'step increase MiB':>18} {'step s':>8}")
    for r in rows:
        increase = r["rss_peak_mib"] - r["rss_before_mib"]
        print(
            f"{r['config']:<8} {r['rss_peak_mib']:>13.0f} {r['rss_before_mib']:>15.0f} {increase:>18.0f} "
            f"{r['seconds']:>8.1f}"
        )


def default_peak(device: torch.device) -> tuple[float | None, str]:
    if device.type != "cuda":
        return None, "none (CPU; pass --peak-tflops)"
    name = torch.cuda.get_device_name(device)
    for key, peak in PEAK_BF16_TFLOPS.items():  # more specific names first ("H100 PCIe" before "H100")
        if key in name:
            return peak, f"{peak:g} TFLOP/s (bf16 dense, {name})"
    return None, f"unknown for {name} (pass --peak-tflops)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(SIZES), default="base")
    parser.add_argument("--tiny", action="store_true", help="toy sizes (same as --model tiny); runs on CPU")
    parser.add_argument("--batch-sizes", help="comma-separated sweep (default: per model)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated subset of {CONFIGS}")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per row (default 20; --tiny 2)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 5; --tiny 1)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"], help="default: bf16 on CUDA, fp32 on CPU")
    parser.add_argument("--peak-tflops", type=float, help="peak TFLOP/s for MFU (default: known GPUs by name)")
    parser.add_argument("--channels-last", action="store_true", help="train.channels_last in every row")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    parser.add_argument("--rss", action="store_true", help="peak RSS of one step per configuration (fresh processes)")
    parser.add_argument("--one-step", choices=CONFIGS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tiny:
        args.model = "tiny"
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    args.precision = args.precision or ("bf16" if args.device == "cuda" else "fp32")
    size = SIZES[args.model]
    args.batch_sizes = args.batch_sizes or ",".join(map(str, size.batch_sizes))
    args.steps = args.steps if args.steps is not None else (2 if args.model == "tiny" else 20)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.model == "tiny" else 5)
    torch.set_num_threads(args.threads)
    if args.one_step:
        return one_step_rss(args)
    if args.rss:
        return rss_table(args)

    device = torch.device(args.device)
    precision = Precision(args.precision, device)
    batches = sorted(int(b) for b in args.batch_sizes.split(","))
    configs = [c for c in args.configs.split(",") if c]
    unknown = sorted(set(configs) - set(CONFIGS))
    if unknown:
        parser.error(f"unknown configs {unknown}; choose from {CONFIGS}")
    if args.peak_tflops:
        peak, peak_text = args.peak_tflops, f"{args.peak_tflops:g} TFLOP/s (--peak-tflops)"
    else:
        peak, peak_text = default_peak(device)
    flops_per_sample = count_flops(size, batches[0], device, precision) / batches[0]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"model: {size.name}, {size.image_size} px, {size.text_length} tokens; {args.precision}; device: {name}")
    print(f"model FLOPs per sample (forward + backward): {flops_per_sample / 1e9:.3f} GFLOP; peak: {peak_text}")
    print(f"timed steps per row: {args.steps} after {args.warmup} warm-up; channels_last: {args.channels_last}")
    header = (
        f"{'config':<22} {'batch':>6} {'samples/s':>10} {'step ms':>9} {'TFLOP/s':>9} {'MFU':>7} {'peak GiB':>9} "
        f"{'CPU ms':>9}"
    )
    print(header)
    print("-" * len(header))
    fused = set()
    for config in configs:
        for batch in batches:
            try:
                row = measure(config, size, batch, args, device, precision)
            except torch.cuda.OutOfMemoryError:
                print(f"{config:<22} {batch:>6} {'out of memory':>10}", flush=True)
                gc.collect()
                torch.cuda.empty_cache()
                continue
            tflops = flops_per_sample * batch / row["step_s"] / 1e12
            mfu = f"{100 * tflops / peak:6.2f}%" if peak else f"{'n/a':>7}"
            mem = f"{row['memory_gib']:9.1f}" if row["memory_gib"] is not None else f"{'-':>9}"
            fused.add(row["fused"])
            label = config + (" (eager)" if "compile" in config and not row["compiled"] else "")
            print(
                f"{label:<22} {batch:>6} {batch / row['step_s']:>10.1f} {1000 * row['step_s']:>9.1f} "
                f"{tflops:>9.4g} {mfu} {mem} {1000 * row['cpu_s']:>9.1f}",
                flush=True,
            )
    print(f"optimizer: AdamW, fused kernel: {'yes' if fused == {True} else 'no'}")


if __name__ == "__main__":
    main()
