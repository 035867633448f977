"""Where a dataset's downloaded files live when ``--root`` is not given.

Looked up in order: the ``--root`` option, the environment variable ``UMCL_<NAME>_ROOT`` (``NAME`` upper
case, ``-`` as ``_``: ``UMCL_CHEXPERT_5X200_ROOT``), then the user file ``datasets.yaml`` in
``$XDG_CONFIG_HOME/umcl/`` (default ``~/.config/umcl/``), a YAML mapping ``name: /path/to/data``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from umcl_cli.contracts import UsageError


def env_var(name: str) -> str:
    """``mimic`` → ``UMCL_MIMIC_ROOT``; ``chexpert-5x200`` → ``UMCL_CHEXPERT_5X200_ROOT``."""
    return "UMCL_" + re.sub(r"[^A-Z0-9]", "_", name.upper()) + "_ROOT"


def config_file() -> Path:
    """The user's dataset map, honouring ``XDG_CONFIG_HOME``."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "umcl" / "datasets.yaml"


def resolve_root(name: str, root: Path | None, what: str) -> Path:
    """The existing data folder of dataset ``name``, resolved to an absolute path.

    ``what`` describes the folder for messages, e.g. "the MIMIC-CXR-JPG folder (holding files/)".
    Raises ``UsageError`` when the folder found does not exist, or when nothing points at one; the
    message says where it looked and how to point it at the data.
    """
    var = env_var(name)
    if root is not None:
        return _existing(Path(root), "--root", what)
    if os.environ.get(var):
        return _existing(Path(os.environ[var]), f"${var}", what)
    config = config_file()
    configured = _from_config(config, name)
    if configured is not None:
        return _existing(configured, f"'{name}' in {config}", what)
    raise UsageError(
        f"no data folder for '{name}': --root not given, ${var} not set, no '{name}' entry in {config}",
        f"pass --root DIR ({what}), or set {var}=DIR, or add the line `{name}: DIR` to {config}",
    )


def _from_config(config: Path, name: str) -> Path | None:
    if not config.is_file():
        return None
    try:
        mapping = yaml.safe_load(config.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UsageError(
            f"{config} is not valid YAML ({str(exc).splitlines()[0]})",
            "write one `name: /path/to/data` line per dataset",
        ) from exc
    if not isinstance(mapping, dict):
        raise UsageError(f"{config} is not a mapping", "write one `name: /path/to/data` line per dataset")
    value = mapping.get(name)
    return None if value is None else Path(str(value))


def _existing(path: Path, origin: str, what: str) -> Path:
    path = path.expanduser()
    if not path.is_dir():
        raise UsageError(f"data folder {path} (from {origin}) does not exist", f"point {origin} at {what}")
    return path.resolve()
