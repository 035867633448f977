"""Every recipe shipped under recipes/ validates, and its loss builds with its options."""

from __future__ import annotations

from pathlib import Path

import pytest

from umcl_cli import registry
from umcl_cli.contracts import CHEXPERT_CLASSES
from umcl_cli.recipe import load_recipe

RECIPES = sorted((Path(__file__).resolve().parents[2] / "recipes").rglob("*.yaml"))


def test_recipes_are_found() -> None:
    assert len(RECIPES) >= 3


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_shipped_recipe_validates_and_builds_its_loss(path: Path) -> None:
    recipe = load_recipe(path, [])
    loss = registry.load("losses", recipe.loss.name)(**recipe.loss.options)
    loss.bind_classes(list(CHEXPERT_CLASSES))
