"""Plugin discovery and loading through entry points.

Discovery (reading entry-point metadata) is separate from loading (importing the object), so
``umcl plugins`` lists everything without importing torch-heavy modules, and one broken plugin
never hides the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from umcl_cli.errors import UsageError

KIND_NAMES = {
    "image_encoders": "image encoder",
    "text_encoders": "text encoder",
    "datasets": "dataset",
    "losses": "loss",
}
GROUPS: dict[str, str] = {
    "image_encoders": "umcl.image_encoders",
    "text_encoders": "umcl.text_encoders",
    "datasets": "umcl.datasets",
    "losses": "umcl.losses",
}


@dataclass(frozen=True)
class PluginInfo:
    name: str
    group: str
    value: str
    distribution: str


def discover(kind: str) -> dict[str, EntryPoint]:
    """Entry points of one kind (``image_encoders``, ``text_encoders``, ``datasets``, ``losses``)."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=GROUPS[kind]):
        found.setdefault(ep.name, ep)  # the first distribution on sys.path wins, as imports do
    return found


def describe_all() -> list[PluginInfo]:
    rows = []
    for kind, group in GROUPS.items():
        for name, ep in sorted(discover(kind).items()):
            dist = ep.dist.name if ep.dist is not None else "?"
            rows.append(PluginInfo(name=name, group=group, value=ep.value, distribution=dist))
    return rows


def load(kind: str, name: str) -> Any:
    """Import and return the object registered as ``name``; errors name the plugin and the fix."""
    known = discover(kind)
    if name not in known:
        names = ", ".join(sorted(known)) or "none"
        raise UsageError(
            f"unknown {KIND_NAMES[kind]} plugin '{name}' (installed: {names})",
            f"use one of the installed names, or install the package that provides '{name}'",
        )
    ep = known[name]
    try:
        return ep.load()
    except Exception as exc:  # any import-time failure of third-party code
        raise UsageError(
            f"plugin '{name}' ({ep.value}) failed to load: {type(exc).__name__}: {exc}",
            "reinstall or fix that plugin's package (`umcl plugins` lists what is installed)",
        ) from exc
