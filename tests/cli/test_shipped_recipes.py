"""Every recipe shipped under recipes/ validates, and its loss builds with its options."""

from __future__ import annotations

from pathlib import Path

import pytest

from umcl_cli import registry
from umcl_cli.contracts import CHEXPERT_CLASSES
from umcl_cli.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[2] / "recipes"
RECIPES = sorted(ROOT.rglob("*.yaml"))


def test_recipes_are_found() -> None:
    assert len(RECIPES) >= 3


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_shipped_recipe_validates_and_builds_its_loss(path: Path) -> None:
    recipe = load_recipe(path, [])
    loss = registry.load("losses", recipe.loss.name)(**recipe.loss.options)
    loss.bind_classes(list(CHEXPERT_CLASSES))


def test_extending_recipe_that_switches_a_plugin_drops_the_old_plugins_options(tmp_path: Path) -> None:
    demo = ROOT / "demo.yaml"
    (tmp_path / "base.yaml").write_text(
        f"extends: {demo}\nname: base\n"
        "loss: {name: itl, options: {text_view: 1.0}}\ntrain: {lr: 0.01, epochs: 2}\n"
    )
    (tmp_path / "same.yaml").write_text("extends: base.yaml\nname: same\nloss: {name: itl}\ntrain: {lr: 0.02}\n")
    (tmp_path / "other.yaml").write_text("extends: base.yaml\nname: other\nloss: {name: clip}\n")
    same, other = load_recipe(tmp_path / "same.yaml", []), load_recipe(tmp_path / "other.yaml", [])
    assert same.loss.options == {"text_view": 1.0} and (same.train.lr, same.train.epochs) == (0.02, 2)
    assert other.loss.name == "clip" and other.loss.options == {}
    assert other.name == "other"  # the recipe's own name is not a plugin switch


def test_set_that_switches_a_plugin_drops_the_old_plugins_options_in_any_order() -> None:
    demo = ROOT / "demo.yaml"
    assert load_recipe(demo, ["loss.name=itl"]).loss.options == {"text_view": 1.0}
    clip = load_recipe(demo, ["loss.name=clip"])
    registry.load("losses", clip.loss.name)(**clip.loss.options)  # the demo as a CLIP baseline builds
    assert clip.loss.options == {}
    soft = load_recipe(demo, ["loss.options.temperature=0.5", "loss.name=soft"])
    assert soft.loss.options == {"temperature": 0.5}
