"""Entry-point discovery, lazy loading, and a plugin from another distribution."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from umcl_cli import registry
from umcl_cli.cli.app import app
from umcl_cli.errors import UsageError


def install_fake_distribution(root: Path, name: str, entry_points: str, modules: dict[str, str]) -> None:
    """A real (if minimal) installed distribution: a dist-info with entry_points.txt on sys.path."""
    info = root / f"{name.replace('-', '_')}-0.1.dist-info"  # wheel naming: no dashes in the name
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    for module, source in modules.items():
        (root / f"{module}.py").write_text(source)


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    install_fake_distribution(
        tmp_path,
        "umcl-extra-loss",
        "[umcl.losses]\nhinge = extra_loss:HingeLoss\nbroken = extra_broken:Nothing\n",
        {
            "extra_loss": ("from umcl_losses.clip import ClipLoss\n\nclass HingeLoss(ClipLoss):\n    pass\n"),
            "extra_broken": "import a_module_that_does_not_exist\n",
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    return tmp_path


def test_first_party_plugins_are_found_through_entry_points() -> None:
    rows = {(p.group, p.name): p for p in registry.describe_all()}
    for key in [
        ("umcl.image_encoders", "timm"),
        ("umcl.text_encoders", "hf"),
        ("umcl.datasets", "synthetic"),
        ("umcl.losses", "clip"),
        ("umcl.losses", "itl"),
        ("umcl.losses", "soft"),
    ]:
        assert key in rows
        assert rows[key].distribution == "umcl"


def test_plugin_from_another_distribution_resolves_by_name(third_party: Path) -> None:
    cls = registry.load("losses", "hinge")
    assert cls.__name__ == "HingeLoss"
    assert any(p.name == "hinge" and p.distribution == "umcl-extra-loss" for p in registry.describe_all())
    result = CliRunner().invoke(app, ["plugins"], terminal_width=200)
    assert result.exit_code == 0
    assert "hinge" in result.output and "umcl-extra-loss" in result.output


def test_broken_plugin_is_reported_with_its_name_and_error(third_party: Path) -> None:
    with pytest.raises(UsageError) as info:
        registry.load("losses", "broken")
    assert "plugin 'broken'" in str(info.value) and "ModuleNotFoundError" in str(info.value)
    # One broken plugin does not hide the others.
    assert registry.load("losses", "itl").__name__ == "ImageTextLabelLoss"


def test_unknown_name_lists_the_installed_ones() -> None:
    with pytest.raises(UsageError) as info:
        registry.load("losses", "nope")
    message = info.value.one_line()
    assert "unknown loss plugin 'nope'" in message and "clip, itl, soft" in message
