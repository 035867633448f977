"""The one training loop, shared by ``pretrain`` and ``prompt-tune``.

AdamW with decoupled weight decay (none on biases, norms, logit scale and prompt context), linear
warm-up + cosine decay, gradient clipping, AMP, DDP under torchrun, rank-0 logging and atomic
checkpoints to ``checkpoints/last.pt`` that ``--resume`` continues from, at the same step.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from umcl_cli.engine import distributed
from umcl_cli.engine.accumulation import accumulated_backward
from umcl_cli.engine.divergence import DivergenceGuard
from umcl_cli.engine.loggers import RunLoggers
from umcl_cli.engine.logging import StepProgress
from umcl_cli.engine.precision import Precision
from umcl_cli.engine.resume import TRAIN_STATE, read_train_state, restore
from umcl_cli.engine.rng import RngState, gather_rng_states, peak_memory_mb, rank_rng, set_rng_state
from umcl_cli.engine.schedule import build_optimizer, cosine_with_warmup
from umcl_cli.engine.speed import speed_up
from umcl_cli.engine.task import TrainTask
from umcl_cli.errors import UsageError
from umcl_cli.io_safety import atomic_save, remove_stale_temps
from umcl_cli.recipe import TrainConfig


@dataclass
class FitResult:
    steps: int
    seconds: float
    samples_per_s: float
    final_loss: float


def pick_device(preference: str) -> torch.device:
    if preference == "cuda" or (preference == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise UsageError("train.device=cuda but no CUDA device is visible", "use train.device=cpu or auto")
        return torch.device("cuda", distributed.current().local_rank)
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def seed_worker(worker_id: int) -> None:
    """DataLoader workers: numpy and random follow torch's per-worker seed (augmentations repeat on resume)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def resolve_resume(resume: str | None, run_dir: Path | None) -> Path | None:
    if resume is None:
        return None
    if resume == "latest":
        if run_dir is None:
            raise UsageError("--resume latest needs a run directory", "pass --out RUN_DIR of the run to continue")
        path = run_dir / "checkpoints" / "last.pt"
        if not path.is_file():
            raise UsageError(
                f"no checkpoint to resume at {path}", "start without --resume, or pass --out of an earlier run"
            )
        return path
    path = Path(resume)
    if not path.is_file():
        raise UsageError(f"resume checkpoint {path} not found", "pass --resume latest or the path of a last.pt")
    return path


def _no_decay(name: str, p: nn.Parameter) -> bool:
    return p.ndim < 2 or "logit_scale" in name or name.endswith("ctx") or "bias" in name


def split_decay(named: list[tuple[str, nn.Parameter]], lr: float, weight_decay: float) -> list[dict[str, Any]]:
    """Two AdamW groups: decayed weight matrices, undecayed vectors/scales/contexts."""
    named = [(n, p) for n, p in named if p.requires_grad]
    decay = [p for n, p in named if not _no_decay(n, p)]
    keep = [p for n, p in named if _no_decay(n, p)]
    groups = [
        {"params": decay, "lr": lr, "weight_decay": weight_decay},
        {"params": keep, "lr": lr, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def fit(
    task: TrainTask,
    dataset: Dataset,
    collate_fn,
    sampler_factory,
    cfg: TrainConfig,
    run_dir: Path | None,
    seed: int = 0,
    resume: Path | None = None,
    state_tag: str = "",
    description: str = "train",
    num_workers: int = 0,
) -> FitResult:
    info = distributed.current()
    device = pick_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(seed + info.rank)
    precision = Precision(cfg.precision, device)
    task.module.to(device)
    speed_up(task.module, cfg, device, precision)  # train.compile / channels_last, before DDP wraps the module

    sampler = sampler_factory(info.rank, info.world_size)
    loader = DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        collate_fn=collate_fn,
        num_workers=num_workers,
        worker_init_fn=seed_worker,
        drop_last=True,  # equal batch shapes on every rank, as all_gather needs
        persistent_workers=False,
        pin_memory=device.type == "cuda",
    )
    accum = cfg.accum_steps
    rows_per_step = cfg.batch_size * accum  # per process
    steps_per_epoch = len(sampler) // rows_per_step
    if steps_per_epoch == 0:
        raise UsageError(
            f"{len(dataset)} training rows are fewer than one global batch "
            f"({cfg.batch_size} x {accum} accumulation steps x {info.world_size} processes)",
            "lower train.batch_size or train.accum_steps, or add data",
        )
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))

    wrapped: nn.Module = task.module
    if info.enabled:
        wrapped = DistributedDataParallel(
            task.module,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=task.find_unused_parameters,
        )
    optimizer = build_optimizer(task.param_groups(), cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.betas, cfg.momentum)
    clipped = [p for g in optimizer.param_groups for p in g["params"]]
    constant = cfg.warmup_lr / cfg.lr if cfg.warmup_lr is not None else None
    scheduler = cosine_with_warmup(optimizer, cfg.warmup_steps, total, constant)

    step = 0
    resume_rng: RngState | None = None
    ckpt_path = run_dir / "checkpoints" / "last.pt" if run_dir else None
    # Limits set from the initial weights, so a resumed run checks exactly as an uninterrupted one.
    guard = DivergenceGuard(task.module, cfg, str(ckpt_path) if ckpt_path else None)
    if resume is not None:
        state = read_train_state(resume, state_tag)
        step, saved_rng = restore(state, resume, task.module, optimizer, scheduler, precision)
        resume_rng = rank_rng(state, saved_rng, info.rank)
        del state
        guard.saved(step)

    main = info.is_main
    loggers = RunLoggers(run_dir if main else None, cfg.loggers, step, description)
    progress = StepProgress(total, step, description, enabled=main, every=cfg.log_every)
    if main and ckpt_path is not None:
        remove_stale_temps(ckpt_path)  # left by a run killed while writing its checkpoint

    def save_state() -> None:
        guard.check_watched()
        guard.check_weights(step)  # never write diverged weights over the last good ones
        rngs = gather_rng_states()  # every rank's generators: each continues its own stream on resume
        if main and ckpt_path is not None:
            atomic_save(
                {
                    "format": TRAIN_STATE,
                    "tag": state_tag,
                    "step": step,
                    "module": {k: v.detach().cpu() for k, v in task.module.state_dict().items()},
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "precision": precision.state_dict(),
                    "rng": rngs[0][0],
                    "rng_ranks": [r[0] for r in rngs],
                    "cuda_rng_ranks": [r[1] for r in rngs],
                },
                ckpt_path,
            )
            guard.saved(step)

    global_batch = rows_per_step * info.world_size
    # Summed on the device and read only at log steps: no host sync in the step itself.
    window_loss = torch.zeros((), device=device)
    window_steps, window_data = 0, 0.0
    window_start = started = time.perf_counter()
    trained_steps = 0
    last_loss = torch.full((), float("nan"))
    shown: dict[str, float] = {}
    if resume_rng is not None:
        set_rng_state(resume_rng)
    task.module.train()
    try:
        while step < total:
            epoch, done_in_epoch = divmod(step, steps_per_epoch)
            sampler.set_epoch(epoch, skip=done_in_epoch * rows_per_step)
            if hasattr(dataset, "set_epoch"):  # per-epoch randomness inside the dataset (e.g. a sentence pick)
                dataset.set_epoch(epoch)
            # Worker seeds follow (seed, epoch, rank), never the global stream: resuming mid-epoch repeats them.
            loader.generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 4099 + info.rank)
            t0 = time.perf_counter()
            for group in zip(*[iter(loader)] * accum, strict=False):  # accum micro-batches per optimizer step
                window_data += time.perf_counter() - t0
                optimizer.zero_grad(set_to_none=True)
                if accum == 1:
                    inputs = task.to_inputs(group[0], device)
                    with precision.autocast():
                        loss = task.compute_loss(wrapped(inputs), inputs)
                    precision.backward(loss)
                    loss = loss.detach()
                else:
                    micro = [task.to_inputs(batch, device) for batch in group]
                    loss = accumulated_backward(task, wrapped, micro, precision)
                guard.watch_loss(loss, step)
                precision.unscale(optimizer)
                if cfg.grad_clip:
                    # foreach: one norm kernel per device, not a Python loop over parameters
                    torch.nn.utils.clip_grad_norm_(clipped, cfg.grad_clip, foreach=True)
                precision.step(optimizer)
                scheduler.step()
                step += 1
                trained_steps += 1
                last_loss = loss
                window_loss += loss.float()
                window_steps += 1
                if step % cfg.log_every == 0 or step == total:
                    guard.check_watched()
                    mean_loss = float(window_loss) / window_steps  # the one host read of the window
                    elapsed = time.perf_counter() - window_start
                    extra = task.extra_logs()
                    record = {
                        "step": step,
                        "epoch": step / steps_per_epoch,
                        "loss": mean_loss,
                        "lr": optimizer.param_groups[0]["lr"],
                        "lrs": [g["lr"] for g in optimizer.param_groups],
                        "samples_per_s": global_batch * window_steps / elapsed,
                        "data_time": window_data / window_steps,
                        "step_time": elapsed / window_steps,
                        "memory_mb": peak_memory_mb(device),
                        **extra,
                    }
                    loggers.write(record)
                    shown = {"loss": mean_loss, **extra}
                    window_loss.zero_()
                    window_steps, window_data = 0, 0.0
                    window_start = time.perf_counter()
                progress.update(step, shown)
                if step % cfg.checkpoint_every == 0:
                    save_state()
                if step >= total:
                    break
                t0 = time.perf_counter()
        save_state()
    finally:
        progress.close()
        loggers.close()
    seconds = time.perf_counter() - started
    return FitResult(
        steps=step,
        seconds=seconds,
        samples_per_s=global_batch * trained_steps / seconds if trained_steps else 0.0,
        final_loss=float(last_loss),
    )
