"""Plugin discovery, loading and contract checks through entry points.

Discovery (reading entry-point metadata: ``discover``, ``describe_all``) is separate from loading
(importing the object: ``load``), so callers that need only names never import a plugin, and one
broken plugin never hides the others. ``load`` checks the object against its group's contract (see
``umcl_cli.contracts``); every failure is one ``PluginError`` line naming the entry point, its
distribution and a fix. ``check_all`` loads every plugin for ``umcl plugins``' status column.

Layering: this module imports only umcl's base modules, ``umcl_cli.engine`` and ``umcl_cli.data``
(the latter two lazily, so discovery stays cheap).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from umcl_cli.errors import UsageError, first_line

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


@dataclass(frozen=True)
class PluginStatus:
    """One plugin loaded and checked: ``reason`` is None when it is usable."""

    info: PluginInfo
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None

    @property
    def status(self) -> str:
        return "ok" if self.reason is None else f"broken: {self.reason}"


class PluginError(UsageError):
    """An installed plugin that breaks its contract (exit code 2); ``reason`` is the short form."""

    def __init__(self, problem: str, fix: str = "", reason: str = "") -> None:
        super().__init__(problem, fix)
        self.reason = reason or problem


def discover(kind: str) -> dict[str, EntryPoint]:
    """Entry points of one kind (``image_encoders``, ``text_encoders``, ``datasets``, ``losses``)."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=GROUPS[kind]):
        found.setdefault(ep.name, ep)  # the first distribution on sys.path wins, as imports do
    return found


def _info(ep: EntryPoint) -> PluginInfo:
    dist = ep.dist.name if ep.dist is not None else "?"
    return PluginInfo(name=ep.name, group=ep.group, value=ep.value, distribution=dist)


def describe_all() -> list[PluginInfo]:
    """Every installed plugin from entry-point metadata alone: nothing is imported."""
    return [_info(ep) for kind in GROUPS for _, ep in sorted(discover(kind).items())]


def entry_point(kind: str, name: str) -> EntryPoint:
    """The entry point registered as ``name``; an unknown name lists the installed ones."""
    known = discover(kind)
    if name not in known:
        names = ", ".join(sorted(known)) or "none"
        raise UsageError(
            f"unknown {KIND_NAMES[kind]} plugin '{name}' (installed: {names})",
            f"use one of the installed names, or install the package that provides '{name}'",
        )
    return known[name]


def describe(kind: str, name: str) -> PluginInfo:
    return _info(entry_point(kind, name))


def unusable(kind: str, info: PluginInfo, reason: str, fix: str = "", detail: str = "") -> PluginError:
    """The one-line error for a plugin that failed to import or breaks its contract.

    ``reason`` is the short form ``umcl plugins`` shows; ``detail`` (default: ``reason``) goes in the message.
    """
    kind_name = KIND_NAMES[kind]
    problem = (
        f"{kind_name} plugin '{info.name}' is unusable: {detail or reason} "
        f"(entry point `{info.name} = {info.value}` in group {info.group}, distribution {info.distribution})"
    )
    fix = fix or f"fix or reinstall the {info.distribution} package"
    return PluginError(problem, f"{fix}, or choose another {kind_name} (`umcl plugins` shows which work)", reason)


def what(obj: Any) -> str:
    """A short description of an object for messages: ``class m.C``, ``function m.f``, ``a Linear object``."""
    if inspect.isclass(obj):
        return f"class {obj.__module__}.{obj.__qualname__}"
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return f"function {obj.__module__}.{obj.__qualname__}"
    return f"{article(type(obj).__name__)} object"


def article(noun: str) -> str:
    return f"{'an' if noun[:1].upper() in 'AEIOU' else 'a'} {noun}"


def _contract_violation(kind: str, obj: Any) -> tuple[str, str, str] | None:
    """``(short reason, reason naming the object, what the entry point must name)`` if ``obj`` breaks
    its group's contract (see ``umcl_cli.contracts``)."""
    if kind in ("image_encoders", "text_encoders"):
        if not callable(obj):
            return "not callable", f"{what(obj)} is not callable", "a factory: a callable that returns an encoder"
        return None
    if kind == "datasets":
        from umcl_cli.data.plugin import DatasetPlugin

        base, must = DatasetPlugin, "a DatasetPlugin subclass that sets name and summary"
    else:
        from umcl_cli.engine.contrastive import ContrastiveLoss

        base, must = ContrastiveLoss, "a ContrastiveLoss subclass"
    if not (inspect.isclass(obj) and issubclass(obj, base)):
        short = f"not a {base.__name__} subclass"
        return short, f"{what(obj)} is {short}", must
    if inspect.isabstract(obj):
        short = f"abstract ({', '.join(sorted(getattr(obj, '__abstractmethods__', ())))} not implemented)"
        return short, f"{what(obj)} is {short}", must
    if kind == "datasets":
        unset = [a for a in ("name", "summary") if not isinstance(getattr(obj, a, None), str)]
        if unset:
            short = f"does not set {' and '.join(unset)}"
            return short, f"{what(obj)} {short}", must
    return None


def _load_checked(kind: str, ep: EntryPoint) -> Any:
    info = _info(ep)
    try:
        obj = ep.load()
    except (Exception, SystemExit) as exc:  # any import-time failure of third-party code
        raise unusable(kind, info, f"import failed with {type(exc).__name__}: {first_line(exc)}") from exc
    try:
        violation = _contract_violation(kind, obj)
    except Exception as exc:  # an object so odd that inspecting it fails (a metaclass that raises)
        raise unusable(kind, info, f"its object cannot be checked ({type(exc).__name__}: {first_line(exc)})") from exc
    if violation is not None:
        reason, detail, must = violation
        fix = f"the entry point must name {must} (see umcl_cli.contracts): fix the {info.distribution} package"
        raise unusable(kind, info, reason, fix, detail)
    return obj


def load(kind: str, name: str) -> Any:
    """Import the object registered as ``name`` and check it against its group's contract.

    Every failure (unknown name, import error, wrong kind of object) is a ``UsageError`` whose one
    line names the plugin, its entry point and distribution, and the fix.
    """
    return _load_checked(kind, entry_point(kind, name))


def check_all() -> list[PluginStatus]:
    """Load and check every installed plugin; a broken one becomes a status, never an exception."""
    rows = []
    for kind in GROUPS:
        for _, ep in sorted(discover(kind).items()):
            try:
                _load_checked(kind, ep)
            except PluginError as exc:
                rows.append(PluginStatus(_info(ep), exc.reason))
            else:
                rows.append(PluginStatus(_info(ep)))
    return rows
