"""Recipes: pydantic models (``extra="forbid"``), YAML files and dotted ``--set`` overrides."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from umcl_cli.errors import UsageError
from umcl_cli.safe_yaml import MAX_BYTES, load_bounded

RECIPE_SUFFIXES = (".yaml", ".yml")
# Switches outside ``train`` that change speed and memory but not what is learnt: left out of
# ``Recipe.digest``, so a run can be resumed with them changed (and older runs resumed at all).
RUNTIME_ONLY = (("model", "grad_checkpointing"),)


class Strict(BaseModel):
    # inf / nan pass a "gt=0" bound and only fail deep inside training.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class DatasetSource(Strict):
    name: str = Field(description="prepared dataset: a name under the data root, or a directory")
    weight: float = Field(1.0, gt=0, description="sampling weight of this source in the mixed stream")
    split: str = "train"
    use_text: bool = Field(True, description="train on the reports of rows that have one")
    use_labels: bool = Field(True, description="use the labels of rows that have them")


UncertainPolicy = Literal["ones", "zeros", "ignore"]


class AugmentConfig(Strict):
    """Strength of the batch augmentation (``data.augment: true``); no flips, laterality matters."""

    scale: tuple[float, float] = Field((0.8, 1.0), description="area of the random crop, as a fraction")
    degrees: float = Field(7.0, ge=0, le=45)
    translate: float = Field(0.04, ge=0, le=0.5, description="shift, as a fraction of the side")
    brightness: float = Field(0.2, ge=0, le=1)
    contrast: float = Field(0.2, ge=0, le=1)

    @field_validator("scale")
    @classmethod
    def _crop_area(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not 0 < v[0] <= v[1] <= 1:
            raise ValueError("must be two fractions 0 < low <= high <= 1")
        return v


class DataConfig(Strict):
    root: str | None = Field(None, description="data root for dataset names (default: $UMCL_DATA or ./data)")
    datasets: list[DatasetSource] = Field(min_length=1)
    text_section: Literal["findings", "impression", "both", "random_sentence"] = "both"
    uncertain: UncertainPolicy | dict[str, Literal[0, 1, "ignore"]] = "ones"
    label_text: Literal["prompt", "template", "drop"] = Field(
        "prompt",
        description="label-only rows: continuous prompt, the hand-written template, or not used",
    )
    template: str = "a chest x-ray showing {}"
    image_size: int = Field(224, ge=16, le=4096)
    augment: bool = True
    augmentation: AugmentConfig = Field(default_factory=lambda: AugmentConfig())
    num_workers: int = Field(2, ge=0)


class PluginRef(Strict):
    name: str
    options: dict[str, Any] = Field(default_factory=dict)


class PromptConfig(Strict):
    enabled: bool = True
    n_ctx: int | None = Field(
        None,
        ge=1,
        le=64,
        description="context vectors (default: as many as init has tokens, or 4 without init); "
        "with init, pads with N(0, 0.02) vectors or drops the words farthest from the class",
    )
    init: str | None = Field("a chest x-ray showing", description="initial words; null = N(0, 0.02)")
    csc: bool = Field(False, description="class-specific contexts instead of one shared context")
    position: Literal["front", "end"] = "end"
    pair_weight: float = Field(
        0.0,
        ge=0,
        le=10,
        description="weight of the label view: labelled image-report pairs also matched to the prompt of "
        "their label set, so prompts learn from report-labelled images (0 = off)",
    )
    class_weight: float = Field(
        0.0,
        ge=0,
        le=10,
        description="weight of the class view: every labelled image classified over the single-class "
        "prompts that zero-shot uses, its positive classes as targets (0 = off)",
    )
    compose: Literal["joint", "per_class"] = Field(
        "joint",
        description="label-only rows with several classes: one prompt naming all (joint), or the mean of "
        "the single-class prompts (per_class), which trains the prompts zero-shot uses",
    )


class ModelConfig(Strict):
    embed_dim: int = Field(512, ge=8, le=65536)
    image_encoder: PluginRef
    text_encoder: PluginRef
    prompt: PromptConfig = Field(default_factory=PromptConfig)
    logit_scale_init: float = Field(1 / 0.07, gt=0, le=1e4)
    logit_scale_max: float = Field(100.0, gt=0, le=1e4)
    grad_checkpointing: bool = Field(
        False,
        description="recompute encoder activations in the backward pass instead of storing them: less memory, "
        "about a third more compute, same outputs and gradients",
    )


Beta = Annotated[float, Field(ge=0, lt=1)]


class TrainConfig(Strict):
    epochs: float = Field(10, gt=0, le=1e6)
    max_steps: int | None = Field(None, ge=1)
    batch_size: int = Field(64, ge=2, description="per process")
    accum_steps: int = Field(
        1, ge=1, le=4096, description="micro-batches per optimizer step; global batch = batch_size x this x ranks"
    )
    loggers: list[Literal["jsonl", "tensorboard", "wandb"]] = Field(
        default_factory=lambda: ["jsonl"], description="metrics.jsonl is always written; tensorboard/wandb are extras"
    )
    # An AdamW learning rate above 10 is always a slip (1e39 overflows, 1e6 diverges at once).
    lr: float = Field(1e-4, gt=0, le=10)
    text_lr: float | None = Field(None, gt=0, le=10, description="learning rate of the text encoder (default: lr)")
    weight_decay: float = Field(0.1, ge=0)
    betas: tuple[Beta, Beta] = (0.9, 0.98)
    optimizer: Literal["adamw", "sgd"] = Field("adamw", description="sgd: momentum SGD, as CoOp tunes prompts")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum")
    warmup_steps: int = Field(100, ge=0)
    warmup_lr: float | None = Field(
        None, gt=0, le=10, description="constant learning rate during warm-up (CoOp); default: linear warm-up"
    )
    grad_clip: float | None = Field(1.0, gt=0)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    log_every: int = Field(20, ge=1)
    checkpoint_every: int = Field(500, ge=1, description="steps between checkpoints/last.pt writes")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int | None = Field(None, ge=1, description="torch CPU threads per process")
    compile: bool = Field(
        False, description="torch.compile the image and text encoders (falls back to eager with a warning)"
    )
    channels_last: bool = Field(False, description="image encoder and image batches in channels_last memory format")


class Recipe(Strict):
    name: str = "umcl"
    seed: int = 0
    data: DataConfig
    model: ModelConfig
    loss: PluginRef = Field(default_factory=lambda: PluginRef(name="itl"))
    train: TrainConfig = Field(default_factory=TrainConfig)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        if not v or "/" in v:
            raise ValueError("must be a non-empty name without '/'")
        return v

    @model_validator(mode="after")
    def _something_to_learn_from(self) -> Recipe:
        idle = [
            f"data.datasets.{i} ({s.name})"
            for i, s in enumerate(self.data.datasets)
            if not (s.use_text or s.use_labels)
        ]
        if idle:
            raise ValueError(
                f"{', '.join(idle)}: use_text and use_labels are both off, so it gives nothing to train on"
            )
        if self.data.label_text == "prompt" and not self.model.prompt.enabled:
            raise ValueError("data.label_text is 'prompt' but model.prompt.enabled is false")
        return self

    def digest(self, sections: tuple[str, ...] = ()) -> str:
        """Short hash of the recipe (or of some top-level sections of it)."""
        tree = self.model_dump(mode="json")
        for section, key in RUNTIME_ONLY:  # how the same weights are computed: may change on --resume
            tree[section].pop(key, None)
        if sections:
            tree = {k: tree[k] for k in sections}
        return hashlib.sha256(json.dumps(tree, sort_keys=True).encode()).hexdigest()[:16]


def apply_overrides(tree: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides (value parsed as YAML; list items addressed by index).

    An override that names another plugin (``loss.name=clip``) drops the recipe's options of the old
    one first, as ``extends`` does; options given by other overrides apply whatever their order.
    """
    parsed = [parse_override(item) for item in overrides]
    for key, value, _ in parsed:
        if key.endswith(".name"):
            plugin = _existing(tree, key.split(".")[:-1])
            if isinstance(plugin, dict) and switches_plugin(plugin, {"name": value}):
                plugin.pop("options", None)
    for key, value, item in parsed:
        node: Any = tree
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            node = _child(node, part, ".".join(parts[: i + 1]), item)
        last = parts[-1]
        if isinstance(node, list):
            node[_index(node, last, key, item)] = value
        elif isinstance(node, dict):
            node[last] = value
        else:
            raise UsageError(f"override '{item}': {'.'.join(parts[:-1])} is not a mapping", "check the key path")
    return tree


def parse_override(item: str) -> tuple[str, Any, str]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise UsageError(f"override '{item}' is not KEY=VALUE", "write it as --set train.lr=1e-4")
    try:
        value = load_bounded(raw, f"override '{key}'") if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return key, value, item


def _existing(node: Any, parts: list[str]) -> Any:
    """The value at ``parts`` if the tree already has it, else None (nothing is created)."""
    for part in parts:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _child(node: Any, part: str, path: str, item: str) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, path, item)]
    if isinstance(node, dict):
        return node.setdefault(part, {})
    raise UsageError(f"override '{item}': {path} is not a mapping", "check the key path")


def _index(node: list, part: str, path: str, item: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise UsageError(f"override '{item}': {path} needs a list index below {len(node)}", "check the key path")
    return int(part)


def load_recipe(path: Path, overrides: list[str] | None = None) -> Recipe:
    """Read, override and validate a recipe; every failure is one line naming file and field."""
    tree = read_tree(Path(path))
    tree = apply_overrides(tree, overrides or [])
    return validate_recipe(tree, str(path))


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` wins; mappings merge key by key, everything else (lists included) is replaced.

    A plugin mapping (one with ``name``) that names another plugin replaces the inherited one: the old
    plugin's ``options`` mean nothing to the new one (a recipe that switches ``loss`` from itl to clip
    must not hand clip itl's options).
    """
    out = dict(base)
    for key, value in top.items():
        inherited = out.get(key)
        merge = isinstance(value, dict) and isinstance(inherited, dict) and not switches_plugin(inherited, value)
        out[key] = deep_merge(inherited, value) if merge else value
    return out


def switches_plugin(inherited: dict[str, Any], top: dict[str, Any]) -> bool:
    return "name" in top and "name" in inherited and top["name"] != inherited["name"]


def read_tree(path: Path, seen: tuple[Path, ...] = (), child: Path | None = None) -> dict[str, Any]:
    """The YAML mapping of a recipe, with ``extends: OTHER.yaml`` (relative to this file) merged under it.

    ``child`` is the recipe whose ``extends`` named ``path``. Only ``.yaml``/``.yml`` files whose
    top-level keys are recipe sections are read, and nothing of a refused file is echoed, so a
    shared recipe cannot make umcl read or print an arbitrary file.
    """
    what = f"recipe {child} extends {path}, which" if child else f"recipe {path}"
    if not path.is_file():
        if child:
            raise UsageError(f"{what} is not a file", "point 'extends' at another recipe, relative to this one")
        raise UsageError(f"recipe file {path} not found", "pass the path of a YAML recipe, e.g. recipes/demo.yaml")
    if not all(p.suffix.lower() in RECIPE_SUFFIXES for p in (path, path.resolve())):
        raise UsageError(f"{what} is not a .yaml or .yml file", "recipes are YAML files named *.yaml or *.yml")
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise UsageError(f"{what} is larger than {MAX_BYTES // 1024} KB", "a recipe is a short YAML file")
        tree = load_bounded(data.decode("utf-8"), f"recipe {path}")
    except UnicodeDecodeError:
        raise UsageError(f"{what} is not UTF-8 text", "recipes are YAML text files") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise UsageError(f"recipe {path}: YAML syntax error{where}: {problem}", "fix the YAML syntax") from exc
    if not isinstance(tree, dict):
        raise UsageError(f"{what} is not a YAML mapping", "start from recipes/demo.yaml")
    if child and not set(map(str, tree)) <= {*Recipe.model_fields, "extends"}:
        raise UsageError(f"{what} is not a umcl recipe (its top-level keys are not recipe sections)", "fix 'extends'")
    parent = tree.pop("extends", None)
    if parent is None:
        return tree
    base_path = (path.parent / str(parent)).resolve()
    if base_path in seen:
        raise UsageError(f"recipe {path} extends itself through {base_path}", "remove the cycle of 'extends'")
    return deep_merge(read_tree(base_path, (*seen, base_path), child=path), tree)


def validate_recipe(tree: dict[str, Any], source: str) -> Recipe:
    try:
        return Recipe.model_validate(tree)
    except ValidationError as exc:
        raise UsageError(
            describe_validation_error(exc, f"recipe {source}"), "fix the recipe or the --set value"
        ) from exc


def describe_validation_error(exc: ValidationError, what: str) -> str:
    errors = exc.errors()
    first = errors[0]
    field = ".".join(str(p) for p in first["loc"]) or "(top level)"
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    else:
        message = first["msg"]
        if "input" in first and not isinstance(first["input"], dict | list):
            message += f" (got {first['input']!r})"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{what}: {field}: {message}{more}"


def dump_recipe(recipe: Recipe, path: Path) -> None:
    path.write_text(yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False))
