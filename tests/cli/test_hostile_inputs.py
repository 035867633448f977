"""Hostile and broken inputs: each is refused with one line naming the file or field, the right exit
code, no traceback and no side effect (no payload run, nothing outside the dataset read, old outputs
intact). See README "Safety and failure behaviour"."""

from __future__ import annotations

import json
import os
import pickle
import resource
import shutil
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from e2e_helpers import prepare_tiny
from PIL import Image
from safetensors import SafetensorError
from torch import nn
from torch.utils.data import Dataset
from typer.testing import CliRunner

from umcl_cli import io_safety
from umcl_cli.cli.app import app
from umcl_cli.cli.errors import report, translate
from umcl_cli.data.unified import WeightedDistributedSampler
from umcl_cli.engine.divergence import Diverged
from umcl_cli.engine.task import TrainTask
from umcl_cli.engine.trainer import fit
from umcl_cli.errors import RuntimeFailure, UsageError
from umcl_cli.io_safety import atomic_save
from umcl_cli.model import objectives
from umcl_cli.model.checkpoint import save_model
from umcl_cli.recipe import TrainConfig

DEMO = Path(__file__).parents[1] / "recipes" / "tiny.yaml"  # 4 steps, checkpoints at 2 and 4
runner = CliRunner()


def umcl(*args: str):
    return runner.invoke(app, list(args), env={"UMCL_DEBUG": ""}, terminal_width=400)


def sets(*extra: str) -> list[str]:
    return [a for s in extra for a in ("--set", s)]


def error_line(result, code: int, *fragments: str, only_line: bool = True) -> str:
    """The one ``error:`` line; with ``only_line`` nothing else was printed (the failure came first)."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, result.output
    if only_line:
        assert lines == errors, result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny data and a 4-step run (checkpoints at steps 2 and 4), shared read-only by the tests."""
    root = tmp_path_factory.mktemp("hostile")
    prepare_tiny(root / "data", n=64, per_class=4)
    result = umcl("pretrain", str(DEMO), "--out", str(root / "run"), "--data-root", str(root / "data"), *sets())
    assert result.exit_code == 0, result.output
    return root


def copy_data(base: Path, tmp_path: Path) -> Path:
    shutil.copytree(base / "data", tmp_path / "data")
    return tmp_path / "data"


def pretrain(data: Path, out: Path, *args: str, extra: tuple[str, ...] = ()):
    return umcl("pretrain", str(DEMO), "--out", str(out), "--data-root", str(data), *sets(*extra), *args)


# 1. --resume with files that are not training checkpoints


class Payload:
    """Unpickling this would create the marker file: proof that no code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def bad_resume_file(kind: str, base: Path, path: Path, marker: Path) -> None:
    if kind == "malicious":
        torch.save({"format": "umcl-train-state", "module": Payload(marker)}, path)
    elif kind == "raw-pickle":
        path.write_bytes(pickle.dumps(Payload(marker)))
    elif kind == "truncated":
        data = (base / "run" / "checkpoints" / "last.pt").read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "random":
        path.write_bytes(os.urandom(4096))
    elif kind == "model-format-only":
        torch.save({"format": "umcl-model"}, path)
    elif kind == "model-file":
        shutil.copyfile(base / "run" / "model.pt", path)
    elif kind == "parts-missing":
        torch.save({"format": "umcl-train-state", "step": 3}, path)


@pytest.mark.parametrize(
    "kind",
    ["malicious", "raw-pickle", "truncated", "empty", "random", "model-format-only", "model-file", "parts-missing"],
)
def test_pretrain_resume_refuses_bad_files(base: Path, tmp_path: Path, kind: str) -> None:
    ckpt, marker = tmp_path / "last.pt", tmp_path / "pwned"
    bad_resume_file(kind, base, ckpt, marker)
    result = umcl("pretrain", str(DEMO), "--resume", str(ckpt), "--out", str(tmp_path / "run"))
    line = error_line(result, 2, str(ckpt), "--resume")
    assert "weights_only" not in line
    assert not marker.exists() and not (tmp_path / "run").exists()


@pytest.mark.parametrize("kind", ["malicious", "model-format-only"])
def test_zeroshot_refuses_bad_model_files(base: Path, tmp_path: Path, kind: str) -> None:
    ckpt, marker = tmp_path / "model.pt", tmp_path / "pwned"
    bad_resume_file(kind, base, ckpt, marker)
    result = umcl("zeroshot", "--ckpt", str(ckpt), "--dataset", str(base / "data" / "synthetic" / "5x200"))
    error_line(result, 2, str(ckpt))
    assert not marker.exists()


# 2. unreadable images


def break_images(dataset: Path, how: str, split: str = "train", count: int | None = None) -> list[str]:
    frame = pl.read_parquet(dataset / "manifest.parquet").filter(pl.col("split") == split)
    broken = [str(dataset / p) for p in frame["image_path"].to_list()[:count]]
    for path in broken:
        if how == "zero-byte":
            Path(path).write_bytes(b"")
        elif how == "truncated":
            data = Path(path).read_bytes()
            Path(path).write_bytes(data[: len(data) // 3])
        else:
            Path(path).write_text("not an image\n")
    return broken


@pytest.mark.parametrize(
    ("how", "workers"), [("zero-byte", 0), ("truncated", 0), ("not-an-image", 0), ("truncated", 1)]
)
def test_pretrain_names_an_unreadable_image(base: Path, tmp_path: Path, how: str, workers: int) -> None:
    data = copy_data(base, tmp_path)
    broken = break_images(data / "synthetic", how)
    result = pretrain(data, tmp_path / "run", extra=(f"data.num_workers={workers}",))
    line = error_line(result, 2, "cannot read image", "--on-bad-image skip")
    assert any(path in line for path in broken), line
    assert not (tmp_path / "run" / "model.pt").exists()


def test_pretrain_skips_unreadable_images_and_lists_them(base: Path, tmp_path: Path) -> None:
    data = copy_data(base, tmp_path)
    broken = break_images(data / "synthetic", "truncated", count=12)
    result = pretrain(data, tmp_path / "run", "--on-bad-image", "skip")
    assert result.exit_code == 0, result.output
    listed = (tmp_path / "run" / "bad_images.txt").read_text().splitlines()
    assert listed and len(set(listed)) == len(listed) and set(listed) <= set(broken)
    assert f"skipped {len(listed)} unreadable images, listed in" in result.output
    weights = torch.load(tmp_path / "run" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())


def test_zeroshot_names_an_unreadable_image(base: Path, tmp_path: Path) -> None:
    data = copy_data(base, tmp_path)
    broken = break_images(data / "synthetic" / "5x200", "zero-byte", split="test", count=1)
    result = umcl("zeroshot", "--ckpt", str(base / "run" / "model.pt"), "--dataset", str(data / "synthetic" / "5x200"))
    error_line(result, 2, "cannot read image", broken[0], only_line=False)


# 3. manifest paths leading outside the dataset


def point_outside(dataset: Path, secret: Path, absolute: bool) -> str:
    """Point the first train and test rows at ``secret``; return the path as the manifest now holds it."""
    frame = pl.read_parquet(dataset / "manifest.parquet")
    value = str(secret) if absolute else os.path.relpath(secret, dataset)
    paths = frame["image_path"].to_list()
    for split in ("train", "test"):
        paths[frame["split"].to_list().index(split)] = value
    frame.with_columns(pl.Series("image_path", paths)).write_parquet(dataset / "manifest.parquet")
    return value


@pytest.fixture
def escaped(base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    """A dataset copy whose first row points at a secret outside it; records every image opened."""
    data = copy_data(base, tmp_path)
    secret = tmp_path / "outside" / "secret.png"
    secret.parent.mkdir()
    Image.new("L", (32, 32), 255).save(secret)
    value = point_outside(data / "synthetic", secret, absolute=request.param)
    opened: list[str] = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda fp, *a, **k: opened.append(str(fp)) or real_open(fp, *a, **k))
    return data, value, opened


@pytest.mark.parametrize("escaped", [False, True], ids=["dotdot", "absolute"], indirect=True)
def test_paths_outside_the_dataset_are_refused(escaped, base: Path, tmp_path: Path) -> None:
    data, value, opened = escaped
    for result in (
        pretrain(data, tmp_path / "run"),
        umcl("zeroshot", "--ckpt", str(base / "run" / "model.pt"), "--dataset", str(data / "synthetic")),
        umcl("linear-probe", "--ckpt", str(base / "run" / "model.pt"), "--dataset", str(data / "synthetic")),
        umcl("prepare", "synthetic", "--out", str(data / "synthetic"), "--cache-only", "--cache-size", "16"),
    ):
        error_line(result, 2, value, "leads outside its directory")
    assert not any("outside" in path for path in opened)
    assert not (data / "synthetic" / "cache").exists() and not (tmp_path / "run" / "model.pt").exists()


# 4. divergence


def test_evaluating_a_diverged_model_is_refused(base: Path, tmp_path: Path) -> None:
    payload = torch.load(base / "run" / "model.pt", weights_only=True)
    payload["state_dict"]["logit_scale"] = torch.tensor(float("nan"))
    torch.save(payload, tmp_path / "model.pt")  # as an older umcl could write it
    result = umcl(
        "zeroshot", "--ckpt", str(tmp_path / "model.pt"), "--dataset", str(base / "data" / "synthetic" / "5x200")
    )
    error_line(result, 2, str(tmp_path / "model.pt"), "non-finite weights (logit_scale)")


@pytest.mark.parametrize("fault", ["nan-loss", "exploded-weights"])
def test_divergence_stops_and_keeps_the_last_good_checkpoint(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    real = objectives.PretrainObjective.compute_loss
    calls = {"n": 0}

    def faulty(self, outputs, inputs):
        calls["n"] += 1
        loss = real(self, outputs, inputs)
        if calls["n"] == 3 and fault == "nan-loss":
            return loss * float("nan")
        if calls["n"] == 3:  # after step 3's loss: its update then carries the blown-up weight
            with torch.no_grad():
                self.model.logit_scale.fill_(1e6)
        return loss

    monkeypatch.setattr(objectives.PretrainObjective, "compute_loss", faulty)
    run = tmp_path / "run"
    result = pretrain(base / "data", run)
    step = 3 if fault == "nan-loss" else 4
    line = error_line(
        result, 1, "training diverged", f"at step {step}" if fault == "nan-loss" else f"by step {step}", only_line=False
    )
    assert "still holds step 2" in line and "grad_clip" not in line  # the recipe already clips
    assert not (run / "model.pt").exists() and not (run / "model.safetensors").exists()
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == 2
    assert all(
        torch.isfinite(v).all() and v.abs().max() < 1e4 for v in state["module"].values() if v.is_floating_point()
    )


class Linear(nn.Linear):
    def forward(self, inputs: dict) -> torch.Tensor:  # type: ignore[override]
        return super().forward(inputs["x"])


class NanTask(TrainTask):
    """A loss that is NaN from the first step."""

    def __init__(self) -> None:
        self.module = Linear(2, 1)

    def param_groups(self) -> list[dict]:
        return [{"params": list(self.module.parameters())}]

    def to_inputs(self, batch: torch.Tensor, device: torch.device) -> dict:
        return {"x": batch.to(device)}

    def compute_loss(self, outputs: torch.Tensor, inputs: dict) -> torch.Tensor:
        return outputs.mean() * float("nan")


class Rows(Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.full((2,), float(i))


def test_divergence_hint_suggests_grad_clip_only_when_it_is_off(tmp_path: Path) -> None:
    cfg = TrainConfig(max_steps=2, batch_size=2, grad_clip=None, warmup_steps=0, device="cpu")
    with pytest.raises(Diverged) as info:
        fit(NanTask(), Rows(), torch.stack, lambda rank, world: WeightedDistributedSampler(np.ones(8)), cfg, tmp_path)
    assert "set train.grad_clip" in info.value.fix and "at step 1" in info.value.problem
    assert not (tmp_path / "checkpoints" / "last.pt").exists()


def test_absurd_learning_rate_is_a_usage_error() -> None:
    error_line(umcl("pretrain", str(DEMO), "--set", "train.lr=1e6"), 2, "train.lr", "less than or equal to 10")


# 5. YAML alias bombs


def alias_bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(f"    {line}" for line in lines)


def test_yaml_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    recipe = tmp_path / "bomb.yaml"
    recipe.write_text(DEMO.read_text().replace("  name: itl\n", f"  name: itl\n  options:\n{alias_bomb()}\n"))
    started = time.perf_counter()
    error_line(umcl("pretrain", str(recipe)), 2, str(recipe), "alias")
    error_line(
        umcl(
            "pretrain",
            str(DEMO),
            "--set",
            "loss.options={a: &a [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1], b: " + "[" + ",".join(["*a"] * 80) + "]}",
        ),
        2,
        "override 'loss.options'",
        "alias",
    )
    assert time.perf_counter() - started < 10


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    recipe = tmp_path / "loop.yaml"
    recipe.write_text(DEMO.read_text() + "\nextra: &loop [*loop]\n")
    error_line(umcl("pretrain", str(recipe)), 2, str(recipe), "alias refers to a block that contains it")


# 6. extends: only recipes, never echoed


SECRET = "rootpassword: hunter2\nother: 1\n"


@pytest.mark.parametrize("target", ["secret.txt", "secret.yaml", "link.yaml", "missing.yaml"])
def test_extends_reads_only_recipes_and_never_echoes_them(tmp_path: Path, target: str) -> None:
    (tmp_path / "secret.txt").write_text(SECRET)
    (tmp_path / "secret.yaml").write_text(SECRET)
    (tmp_path / "link.yaml").symlink_to(tmp_path / "secret.txt")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"extends: {target}\nname: x\n")
    line = error_line(umcl("pretrain", str(recipe)), 2, str(recipe), "extends")
    assert "hunter2" not in line and "rootpassword" not in line


# 7. numeric validation


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("train.lr=1e39", "train.lr"),
        ("train.lr=.nan", "train.lr"),
        ("train.epochs=.inf", "train.epochs"),
        ("train.betas=[1.5,0.9]", "train.betas.0"),
        ("model.logit_scale_init=1e300", "model.logit_scale_init"),
    ],
)
def test_out_of_range_numbers_are_usage_errors(override: str, field: str) -> None:
    error_line(umcl("pretrain", str(DEMO), "--set", override), 2, field)


def test_negative_model_size_is_a_usage_error(base: Path, tmp_path: Path) -> None:
    result = pretrain(base / "data", tmp_path / "run", extra=("model.text_encoder.options.config.hidden_size=-1",))
    error_line(result, 2, "model.text_encoder.options", "text encoder 'hf'")
    assert not (tmp_path / "run" / "model.pt").exists()


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("loss.options.key_classes=[Edema, Hernia]", ("key_classes names ['Hernia']", "use classes")),
        ("loss.options.key_clases=competition", ("loss 'itl' rejected its options", "loss.options")),
        ("loss.options.text_view=-1", ("text_view must be a number >= 0, got -1", "text_view: 0")),
        ("loss.options.text_view=lots", ("text_view must be a number >= 0, got 'lots'", "text_view: 0")),
        ("loss.options.text_view=.nan", ("text_view must be a number >= 0, got nan", "text_view: 0")),
    ],
)
def test_bad_loss_options_are_one_line_before_training(base: Path, tmp_path: Path, override: str, fragments) -> None:
    result = pretrain(base / "data", tmp_path / "run", extra=(override,))
    error_line(result, 2, *fragments)
    assert not (tmp_path / "run").exists()  # refused before the run directory was made


# 8. prepare swaps in a complete dataset or nothing


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_failed_prepare_rerun_leaves_the_old_dataset_intact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "data" / "synthetic"
    assert umcl("prepare", "synthetic", "--out", str(out), "--n", "60", "--per-class", "2").exit_code == 0
    before = snapshot(out)
    from umcl_datasets.synthetic import build

    def dies_half_way(*args, **kwargs):
        raise KeyboardInterrupt  # like Ctrl-C after the new images were written

    monkeypatch.setattr(build, "write_prepared", dies_half_way)
    result = umcl("prepare", "synthetic", "--out", str(out), "--n", "60", "--seed", "3")
    assert result.exit_code == 130, result.output
    assert snapshot(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["synthetic"]


def test_prepare_recovers_what_a_killed_run_left(tmp_path: Path) -> None:
    parent = tmp_path / "data"
    out = parent / "synthetic"
    assert umcl("prepare", "synthetic", "--out", str(out), "--n", "60", "--per-class", "2").exit_code == 0
    dead = 2**22 + 12345  # above pid_max's default: no such process
    out.rename(parent / f".synthetic.old-{dead}")  # killed between the two renames of a swap
    (parent / f".synthetic.prepare-{dead}-x").mkdir()  # killed while building
    result = umcl("prepare", "synthetic", "--out", str(out), "--n", "60", "--per-class", "2")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in parent.iterdir()) == ["synthetic"]


def test_prepare_refuses_to_replace_a_folder_that_is_not_a_dataset(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    result = umcl("prepare", "synthetic", "--out", str(tmp_path / "mine"), "--n", "60")
    error_line(result, 2, str(tmp_path / "mine"), "not a prepared dataset")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


# 9. failed writes: full disk, file size limit


@contextmanager
def file_size_limit(nbytes: int) -> Iterator[None]:
    """A real short write: the kernel refuses bytes past ``nbytes`` (EFBIG) for this process."""
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)


@pytest.mark.parametrize("free", [0, 1 << 40], ids=["disk-full", "size-limit"])
def test_a_cut_short_checkpoint_write_is_one_line_and_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, free: int
) -> None:
    target = tmp_path / "checkpoints" / "last.pt"
    atomic_save({"w": torch.ones(16)}, target)
    before = snapshot(tmp_path)
    # torch's writer names no cause for a short write, so the free space decides the message.
    monkeypatch.setattr(io_safety.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1 << 41, 0, free))
    with file_size_limit(1 << 20), pytest.raises(RuntimeFailure) as info:
        atomic_save({"w": torch.ones(1 << 20)}, target)
    reason = "no space left on device" if free == 0 else "the write was cut short"
    assert info.value.one_line().startswith(f"could not write {target}: {reason}")
    assert report(info.value) == 1
    assert snapshot(tmp_path) == before  # old checkpoint intact, no temporary file left


def test_a_full_disk_under_safetensors_is_one_line_and_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from umcl_cli.model import checkpoint

    target = tmp_path / "model.pt"
    save_model({"state_dict": {"w": torch.ones(16)}}, target)
    old = target.with_suffix(".safetensors").read_bytes()

    def full(*args: object, **kwargs: object) -> None:  # safetensors' own text for ENOSPC
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(checkpoint, "save_file", full)
    with pytest.raises(RuntimeFailure) as info:
        save_model({"state_dict": {"w": torch.zeros(16)}}, target)
    assert info.value.one_line() == (
        f"could not write {target.with_suffix('.safetensors')}: no space left on device. "
        "free disk space or write to another --out directory"
    )
    assert target.with_suffix(".safetensors").read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "model.safetensors"]


# 10. resuming another run's checkpoint


def test_resume_into_another_directory_reuses_that_runs_tokenizer(base: Path, tmp_path: Path) -> None:
    a, b = base / "run", tmp_path / "b"
    result = pretrain(base / "data", b, "--resume", str(a / "checkpoints" / "last.pt"), extra=("train.max_steps=6",))
    assert result.exit_code == 0, result.output
    assert (b / "text_encoder.json").read_bytes() == (a / "text_encoder.json").read_bytes()
    records = [json.loads(line) for line in (b / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [6] and all(torch.isfinite(torch.tensor(r["loss"])) for r in records)


def test_resume_without_its_runs_tokenizer_is_refused(base: Path, tmp_path: Path) -> None:
    ckpt = tmp_path / "elsewhere" / "last.pt"
    ckpt.parent.mkdir()
    shutil.copyfile(base / "run" / "checkpoints" / "last.pt", ckpt)
    result = pretrain(base / "data", tmp_path / "b", "--resume", str(ckpt), extra=("train.max_steps=6",))
    error_line(result, 2, "text_encoder.json", str(ckpt))


# minor: stale temporary files, metrics after a kill, file modes


def test_resume_removes_stale_temps_and_repeated_metrics(base: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(base / "run", run)
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    atomic_save({**state, "step": 2}, run / "checkpoints" / "last.pt")  # as if killed after step 3's log line
    (run / "checkpoints" / ".last.pt.abc123.tmp").write_bytes(b"torn")
    with (run / "metrics.jsonl").open("a") as f:
        f.write('{"step": 6, "loss"')  # a line torn by the kill
    result = pretrain(base / "data", run, "--resume", "latest", extra=("train.max_steps=6",))
    assert result.exit_code == 0, result.output
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["last.pt"]
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6]


def test_files_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o002)
    try:
        out = tmp_path / "ds"
        assert umcl("prepare", "synthetic", "--out", str(out), "--n", "60", "--per-class", "2").exit_code == 0
        save_model({"state_dict": {"w": torch.ones(2)}}, tmp_path / "model.pt")
        atomic_save({"w": torch.ones(2)}, tmp_path / "checkpoints" / "last.pt")
    finally:
        os.umask(old)
    for path in (out / "manifest.parquet", out / "dataset.json", tmp_path / "model.pt", tmp_path / "model.safetensors"):
        assert path.stat().st_mode & 0o777 == 0o664, path
    assert (tmp_path / "checkpoints" / "last.pt").stat().st_mode & 0o777 == 0o664
    assert out.stat().st_mode & 0o777 == 0o775


def test_an_error_raised_in_a_dataloader_worker_keeps_its_one_line() -> None:
    # torch re-raises a worker's error as the same type whose text is the worker's whole traceback.
    worker = UsageError("cannot read image /d/a.png (OSError: broken)", "replace it")
    text = "Caught UsageError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
    text += f'  File "x.py", line 1, in f\numcl_cli.errors.UsageError: {worker}\n'
    known = translate(UsageError(text))
    assert isinstance(known, UsageError) and known.one_line() == worker.one_line()
