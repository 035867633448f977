"""Contrastive pre-training from a recipe: data stream, model, objective, the engine's ``fit``, ``model.pt``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from umcl_cli import registry
from umcl_cli.data.bad_images import LIST_NAME as BAD_IMAGE_LIST
from umcl_cli.data.bad_images import BadImagePolicy, skipped_images
from umcl_cli.data.resolve import resolve_dataset
from umcl_cli.data.transforms import BatchAugment, ImageTransform
from umcl_cli.data.unified import SourceSpec, UnifiedDataset, WeightedDistributedSampler
from umcl_cli.engine import distributed
from umcl_cli.engine.contrastive import ContrastiveLoss
from umcl_cli.engine.resume import adopt_run_file, read_train_state
from umcl_cli.engine.trainer import fit, pick_device, resolve_resume, seed_everything
from umcl_cli.errors import UsageError
from umcl_cli.evaluation.plots import training_curves
from umcl_cli.io_safety import atomic_write
from umcl_cli.model.build import build_model
from umcl_cli.model.checkpoint import model_payload, save_model
from umcl_cli.model.dual_encoder import DualEncoder
from umcl_cli.model.objectives import PretrainObjective
from umcl_cli.recipe import Recipe, dump_recipe, load_recipe
from umcl_cli.workflows.results import NOT_RECORDED, Result


@dataclass
class PretrainResult(Result):
    """``final_loss`` is NaN when a resumed run was already at its last step. ``is_main`` is False on
    the other DDP ranks, which write nothing."""

    recipe: str
    run_dir: Path
    model_path: Path
    steps: int
    samples_per_s: float
    final_loss: float
    skipped_images: list[str]
    is_main: bool = field(default=True, metadata=NOT_RECORDED)


def check_plugin_names(recipe: Recipe) -> None:
    """Fail on a misspelt or broken plugin before any data is read."""
    for kind, ref in (
        ("image_encoders", recipe.model.image_encoder),
        ("text_encoders", recipe.model.text_encoder),
        ("losses", recipe.loss),
    ):
        registry.load(kind, ref.name)  # unknown names list the installed ones; broken plugins name their package


def build_loss(recipe: Recipe, classes: list[str]) -> ContrastiveLoss:
    """The recipe's loss, told the stream's class names; bad ``loss.options`` fail before any training."""
    try:
        loss = registry.load("losses", recipe.loss.name)(**recipe.loss.options)
    except TypeError as exc:
        raise UsageError(
            f"loss '{recipe.loss.name}' rejected its options: {exc}",
            "check the options under loss.options in the recipe",
        ) from exc
    loss.bind_classes(classes)
    return loss


def build_stream(recipe: Recipe, data_root: str | None) -> UnifiedDataset:
    d = recipe.data
    sources = [
        SourceSpec(resolve_dataset(s.name, data_root or d.root), s.split, s.weight, s.use_text, s.use_labels)
        for s in d.datasets
    ]
    return UnifiedDataset(
        sources,
        transform=None,  # set once the image encoder says how it normalises
        uncertain=d.uncertain,
        text_section=d.text_section,
        label_text=d.label_text,
        template=d.template,
        seed=recipe.seed,
    )


def build_consistent_model(recipe: Recipe, stream: UnifiedDataset, run_dir: Path) -> DualEncoder:
    """Build the model once on rank 0 and record its text encoder's spec in the run directory.

    A tokenizer trained on the corpus is not reproducible (the trainer breaks ties in hash order),
    so other ranks and resumed runs rebuild the text encoder from ``text_encoder.json`` instead of
    training their own. DDP then broadcasts rank 0's weights.
    """
    info = distributed.current()
    spec_path = run_dir / "text_encoder.json"
    saved = json.loads(spec_path.read_text()) if spec_path.is_file() else None
    use_prompt = recipe.model.prompt.enabled and recipe.data.label_text == "prompt"

    def build(spec: dict | None) -> DualEncoder:
        seed_everything(recipe.seed)  # identical initial weights on every rank
        return build_model(recipe.model, stream.classes, stream.corpus, recipe.data.image_size, use_prompt, spec)

    model = None
    if saved is None and info.is_main:
        model = build(None)
        text = json.dumps(model.text_encoder.rebuild_spec())
        atomic_write(spec_path, lambda tmp: tmp.write_text(text))
    distributed.barrier()
    if model is None:
        model = build(saved if saved is not None else json.loads(spec_path.read_text()))
    return model


def pretrain(
    recipe_path: Path,
    overrides: list[str] | None = None,
    out: Path | None = None,
    resume: str | None = None,
    data_root: str | None = None,
    on_bad_image: str = "error",
) -> PretrainResult:
    """Train ``recipe_path`` (with ``--set``-style ``overrides``) into ``out`` (default ``runs/NAME``).

    Under torchrun every rank calls this; rank 0 writes the run directory and ``model.pt``.
    """
    recipe = load_recipe(recipe_path, overrides)
    bad_images = BadImagePolicy(on_bad_image)  # checks the option before any work
    check_plugin_names(recipe)
    # The process group first: the training device then follows this process's local rank.
    distributed.init_distributed(pick_device(recipe.train.device))
    info = distributed.current()
    run_dir = Path(out) if out else Path("runs") / recipe.name
    resume_path = resolve_resume(resume, run_dir)
    tag = recipe.digest(("data", "model", "loss"))  # what must match for --resume to make sense
    if resume_path is not None:
        read_train_state(resume_path, tag, mmap=True)  # a bad file fails now, before any data is read
    if resume_path is None and (run_dir / "checkpoints" / "last.pt").exists():
        raise UsageError(
            f"run directory {run_dir} already holds a run",
            "pass --resume latest to continue it, or choose another --out",
        )
    # Data and loss options are checked before the run directory is made: bad input writes nothing.
    stream = build_stream(recipe, data_root)
    loss = build_loss(recipe, stream.classes)
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        dump_recipe(recipe, run_dir / "recipe.yaml")
        if resume_path is not None:
            adopt_run_file(resume_path, run_dir, "text_encoder.json")  # the tokenizer its weights know
    distributed.barrier()  # other ranks read text_encoder.json only once it is the one to use

    bad_images.listing = run_dir / BAD_IMAGE_LIST
    stream.bad_images = bad_images
    model = build_consistent_model(recipe, stream, run_dir)
    mean, std = model.image_encoder.normalization()
    stream.transform = ImageTransform(recipe.data.image_size, mean, std, model.image_encoder.in_chans)
    t = recipe.train
    augment = BatchAugment(**recipe.data.augmentation.model_dump()) if recipe.data.augment else None
    objective = PretrainObjective(
        model,
        loss,
        t.lr,
        t.weight_decay,
        t.text_lr,
        augment=augment,
        pair_weight=recipe.model.prompt.pair_weight,
        class_weight=recipe.model.prompt.class_weight,
    )
    fitted = fit(
        objective,
        stream,
        objective.collate(),  # tokenises in the loader's workers
        lambda rank, world: WeightedDistributedSampler(stream.weights, rank, world, seed=recipe.seed),
        t,
        run_dir,
        seed=recipe.seed,
        resume=resume_path,
        state_tag=tag,
        description=f"pretrain {recipe.name}",
        num_workers=recipe.data.num_workers,
    )
    model_path = run_dir / "model.pt"
    if info.is_main:
        payload = model_payload(
            model,
            recipe.model.image_encoder.name,
            recipe.model.text_encoder.name,
            recipe=recipe.model_dump(mode="json"),
            recipe_hash=recipe.digest(),
        )
        save_model(payload, model_path)
        training_curves(run_dir / "metrics.jsonl", run_dir / "training_curves.png")
    distributed.barrier()
    return PretrainResult(
        recipe=recipe.name,
        run_dir=run_dir,
        model_path=model_path,
        steps=fitted.steps,
        samples_per_s=fitted.samples_per_s,
        final_loss=fitted.final_loss,
        skipped_images=skipped_images(run_dir / BAD_IMAGE_LIST) if info.is_main else [],
        is_main=info.is_main,
    )
