"""``metrics.json``: the stable, versioned record every evaluation command writes."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from umcl_cli import __version__

SCHEMA_VERSION = 1


def _clean(value: Any) -> Any:
    """JSON has no NaN: undefined numbers become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_metrics(out_dir: Path, command: str, record: dict[str, Any]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "metrics.json"
    doc = {"schema_version": SCHEMA_VERSION, "umcl_version": __version__, "command": command, **record}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_clean(doc), indent=2) + "\n")
    tmp.replace(path)
    return path


def default_out(ckpt: Path, command: str, dataset_name: str) -> Path:
    return Path(ckpt).parent / "eval" / f"{command}-{dataset_name.replace('/', '_')}"
