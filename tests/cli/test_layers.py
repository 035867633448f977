"""The package's layers import only downward: a lower layer never imports a higher one, and the
command modules stay thin (signature, call, rendering)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "umcl_cli"
# Lowest first. A module may import its own layer and the layers listed before it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("umcl_cli", "umcl_cli.errors", "umcl_cli.io_safety", "umcl_cli.safe_yaml", "umcl_cli.recipe")),
    ("engine", ("umcl_cli.engine",)),
    ("data", ("umcl_cli.data",)),
    ("plugin contracts", ("umcl_cli.contracts", "umcl_cli.registry")),
    ("model", ("umcl_cli.model",)),
    ("evaluation", ("umcl_cli.evaluation",)),
    ("workflows", ("umcl_cli.workflows",)),
    ("interface", ("umcl_cli.cli", "umcl_cli.api", "umcl_cli.__main__")),
]


def layer_of(module: str) -> int:
    """Index of the most specific layer prefix that ``module`` falls under."""
    best, length = -1, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > length:
                best, length = index, len(prefix)
    if best < 0:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS")
    return best


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(source: str, package_dir: Path) -> set[str]:
    """umcl_cli modules imported anywhere in ``source`` (lazy imports inside functions included)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "umcl_cli"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "umcl_cli":
            for alias in node.names:  # `from umcl_cli import registry` imports a module
                sub = f"{node.module}.{alias.name}"
                is_module = (package_dir / Path(*sub.split(".")[1:])).with_suffix(".py").is_file() or (
                    package_dir / Path(*sub.split(".")[1:]) / "__init__.py"
                ).is_file()
                found.add(sub if is_module else node.module)
    return found


def violations(files: dict[str, str]) -> list[str]:
    bad = []
    for module, source in sorted(files.items()):
        mine = layer_of(module)
        for target in sorted(imported(source, PACKAGE)):
            if layer_of(target) > mine:
                bad.append(f"{module} ({LAYERS[mine][0]}) imports {target} ({LAYERS[layer_of(target)][0]})")
    return bad


def test_no_module_imports_a_higher_layer() -> None:
    files = {module_name(p): p.read_text() for p in PACKAGE.rglob("*.py")}
    assert len(files) > 50
    assert violations(files) == []


def test_the_checker_sees_an_upward_import_even_inside_a_function() -> None:
    source = "def f():\n    from umcl_cli.workflows.zeroshot import zeroshot\n"
    assert violations({"umcl_cli.data.example": source}) == [
        "umcl_cli.data.example (data) imports umcl_cli.workflows.zeroshot (workflows)"
    ]
    assert violations({"umcl_cli.model.example": "from umcl_cli import registry\n"}) == []
    assert violations({"umcl_cli.engine.example": "from umcl_cli import registry\n"}) != []


@pytest.mark.parametrize("path", sorted((PACKAGE / "cli").glob("*.py")), ids=lambda p: p.name)
def test_command_modules_are_thin(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= 130, f"{path.name} has {lines} lines: move the work into umcl_cli/workflows"
    tree = ast.parse(path.read_text())
    # Training (the engine's fit), scoring (evaluate) and tensors belong to the layers below.
    training = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in ("fit", "evaluate", "torch")]
    assert not training, f"{path.name} trains or evaluates itself"
