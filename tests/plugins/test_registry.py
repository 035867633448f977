"""Entry-point discovery, lazy loading, contract checks, and plugins from other distributions (good and broken)."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from e2e_helpers import prepare_tiny
from torch import nn
from typer.testing import CliRunner

from umcl_cli import contracts, registry
from umcl_cli.cli.app import app
from umcl_cli.errors import UsageError
from umcl_cli.model.checkpoint import load_model, model_payload, save_model


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


# Broken third-party plugins: each is reported with its entry point and distribution, never hides the rest.

BROKEN_DIST = "umcl-broken-extras"
BROKEN_MODULE = """
from pathlib import Path

from torch import nn

from umcl_cli.contracts import DatasetPlugin


def not_a_loss(*args, **kwargs):
    return 0.0


class PlainLoss:
    pass


class PlainDataset:
    name = "plain"
    summary = "not a DatasetPlugin"


class NamelessDataset(DatasetPlugin):
    def prepare(self, options, out: Path) -> list[Path]:
        return [out]


def build_linear(**options):
    return nn.Linear(2, 2)


NOT_CALLABLE = 3
"""
BROKEN_ENTRY_POINTS = """\
[umcl.losses]
fn_loss = broken_extras:not_a_loss
plain_loss = broken_extras:PlainLoss
import_loss = broken_missing:Anything

[umcl.datasets]
plain_dataset = broken_extras:PlainDataset
nameless_dataset = broken_extras:NamelessDataset

[umcl.image_encoders]
linear = broken_extras:build_linear
number = broken_extras:NOT_CALLABLE
"""
TINY = Path(__file__).parents[1] / "recipes" / "tiny.yaml"


@pytest.fixture
def broken_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "site"
    install_fake_distribution(
        root,
        BROKEN_DIST,
        BROKEN_ENTRY_POINTS,
        {"broken_extras": BROKEN_MODULE, "broken_missing": "import a_module_that_does_not_exist\n"},
    )
    monkeypatch.syspath_prepend(str(root))
    importlib.invalidate_caches()
    return root


def invoke(args: list[str]):
    return CliRunner().invoke(app, args, env={"UMCL_DEBUG": "", "COLUMNS": "400"})


def one_error_line(result, *fragments: str) -> str:
    """Exit 2, and the whole output is one ``error:`` line holding every fragment (see test_cli_errors)."""
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ") and "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("kind", "name", "value", "detail", "short"),
    [
        (
            "losses",
            "fn_loss",
            "broken_extras:not_a_loss",
            "function broken_extras.not_a_loss is not a ContrastiveLoss subclass",
            "not a ContrastiveLoss subclass",
        ),
        (
            "losses",
            "plain_loss",
            "broken_extras:PlainLoss",
            "class broken_extras.PlainLoss is not a ContrastiveLoss subclass",
            "not a ContrastiveLoss subclass",
        ),
        (
            "losses",
            "import_loss",
            "broken_missing:Anything",
            "import failed with ModuleNotFoundError: No module named 'a_module_that_does_not_exist'",
            "import failed with ModuleNotFoundError",
        ),
        (
            "datasets",
            "plain_dataset",
            "broken_extras:PlainDataset",
            "class broken_extras.PlainDataset is not a DatasetPlugin subclass",
            "not a DatasetPlugin subclass",
        ),
        (
            "datasets",
            "nameless_dataset",
            "broken_extras:NamelessDataset",
            "class broken_extras.NamelessDataset does not set name and summary",
            "does not set name and summary",
        ),
        ("image_encoders", "number", "broken_extras:NOT_CALLABLE", "an int object is not callable", "not callable"),
    ],
)
def test_broken_plugin_fails_to_load_naming_entry_point_and_distribution(
    broken_plugins: Path, kind: str, name: str, value: str, detail: str, short: str
) -> None:
    with pytest.raises(registry.PluginError) as info:
        registry.load(kind, name)
    assert isinstance(info.value, UsageError) and info.value.exit_code == 2
    message = info.value.one_line()
    assert "\n" not in message
    for fragment in (f"plugin '{name}' is unusable: {detail}", f"`{name} = {value}` in group umcl.{kind}", BROKEN_DIST):
        assert fragment in message, message
    assert info.value.reason.startswith(short)
    assert any(s.status == f"broken: {info.value.reason}" for s in registry.check_all() if s.info.name == name)


def test_plugins_lists_broken_ones_and_still_the_good_ones(broken_plugins: Path) -> None:
    result = invoke(["plugins"])
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") >= 6}
    for name in ("fn_loss", "plain_loss", "import_loss", "plain_dataset", "nameless_dataset", "number"):
        assert BROKEN_DIST in rows[name] and "broken: " in rows[name], rows[name]
    assert "import failed with ModuleNotFoundError" in rows["import_loss"]
    # An encoder factory is only checked for being callable here; what it returns is checked when it builds.
    assert rows["linear"].split("│")[5].strip() == "ok"
    for name in ("timm", "convnet", "hf", "synthetic", "csv", "clip", "itl", "soft"):
        cells = [c.strip() for c in rows[name].split("│")]
        assert cells[4] == "umcl" and cells[5] == "ok", rows[name]


def test_check_all_reports_every_plugin_once(broken_plugins: Path) -> None:
    statuses = {(s.info.group, s.info.name): s for s in registry.check_all()}
    assert {(i.group, i.name) for i in registry.describe_all()} == set(statuses)
    assert statuses[("umcl.losses", "fn_loss")].status == "broken: not a ContrastiveLoss subclass"
    assert statuses[("umcl.losses", "itl")].status == "ok"


@pytest.mark.parametrize(
    ("loss", "fragment"),
    [
        ("fn_loss", "not a ContrastiveLoss subclass"),
        ("plain_loss", "not a ContrastiveLoss subclass"),
        ("import_loss", "import failed with ModuleNotFoundError"),
    ],
)
def test_pretrain_with_a_broken_loss_fails_before_reading_data(
    broken_plugins: Path, tmp_path: Path, loss: str, fragment: str
) -> None:
    # No data root exists: reaching the data would fail differently.
    args = ["pretrain", str(TINY), "--set", f"loss.name={loss}", "--out", str(tmp_path / "run")]
    result = invoke([*args, "--data-root", str(tmp_path / "no-data")])
    one_error_line(result, f"loss plugin '{loss}'", f"`{loss} = broken_", "group umcl.losses", BROKEN_DIST, fragment)
    assert not (tmp_path / "run").exists()


def test_pretrain_with_an_encoder_factory_returning_the_wrong_type(broken_plugins: Path, tmp_path: Path) -> None:
    prepare_tiny(tmp_path / "data", n=64, per_class=4)
    args = ["pretrain", str(TINY), "--set", "model.image_encoder.name=linear", "--out", str(tmp_path / "run")]
    result = invoke([*args, "--data-root", str(tmp_path / "data")])
    one_error_line(
        result,
        "image encoder plugin 'linear'",
        "its factory returned a Linear object, not an ImageEncoder",
        "`linear = broken_extras:build_linear` in group umcl.image_encoders",
        BROKEN_DIST,
    )
    assert not (tmp_path / "run" / "model.pt").exists()


def test_checkpoint_rebuild_refuses_a_factory_of_the_wrong_type(
    broken_plugins: Path, tmp_path: Path, tiny_model
) -> None:
    save_model(model_payload(tiny_model, "timm", "hf"), tmp_path / "good.pt")
    model, _ = load_model(tmp_path / "good.pt")
    assert type(model.image_encoder) is type(tiny_model.image_encoder)
    # The same weights, but the checkpoint names an image encoder whose factory returns an nn.Linear.
    save_model(model_payload(tiny_model, "linear", "hf"), tmp_path / "bad.pt")
    with pytest.raises(registry.PluginError) as info:
        load_model(tmp_path / "bad.pt")
    message = info.value.one_line()
    assert "image encoder plugin 'linear' is unusable: its factory returned a Linear object" in message, message
    assert f"distribution {BROKEN_DIST}" in message and "not an ImageEncoder" in message


def test_first_party_plugins_import_umcl_only_through_contracts() -> None:
    plugins = Path(__file__).parents[2] / "plugins"
    imports = []
    for path in sorted(plugins.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            imports += [f"{path.relative_to(plugins)}: {n}" for n in names if n.split(".")[0] == "umcl_cli"]
    assert imports and all(i.endswith(": umcl_cli.contracts") for i in imports), imports


def test_contracts_export_every_name_and_the_dataset_side_needs_no_torch() -> None:
    assert all(getattr(contracts, name) is not None for name in contracts.__all__)
    assert issubclass(contracts.ImageEncoder, nn.Module) and issubclass(contracts.ContrastiveLoss, nn.Module)
    # `umcl prepare` imports a dataset plugin and the dataset contracts only: torch stays out.
    code = (
        "import sys, umcl_cli.contracts, umcl_datasets.synthetic, umcl_datasets.csv_table.plugin; "
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
