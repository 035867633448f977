"""The base of every workflow result: a dataclass that knows what of it goes into ``metrics.json``.

Field metadata: ``NOT_RECORDED`` keeps a field out of the record (where it was written, live
objects); ``OPTIONAL`` leaves the key out when its value is ``None`` (keys that apply to one task).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

NOT_RECORDED = {"record": False}
OPTIONAL = {"optional": True}


@dataclass
class Result:
    def to_record(self) -> dict[str, Any]:
        """The result as ``metrics.json`` stores it (paths as strings), in field order."""
        record: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if not f.metadata.get("record", True) or (f.metadata.get("optional") and value is None):
                continue
            record[f.name] = str(value) if isinstance(value, Path) else value
        return record
