"""Mapping a table's label columns onto umcl's canonical class names, and checking their values."""

from __future__ import annotations

import polars as pl

from umcl_cli.contracts import CANONICAL_CLASSES, UsageError

_BY_KEY = {c.lower(): c for c in CANONICAL_CLASSES}


def _key(name: str) -> str:
    return " ".join(name.replace("_", " ").lower().split())


def parse_label_map(text: str | None) -> dict[str, str]:
    """``'Effusion=Pleural Effusion,Nodule=Nodule'`` → ``{"Effusion": "Pleural Effusion", ...}``."""
    mapping: dict[str, str] = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        source, eq, target = item.partition("=")
        if not eq or not source.strip() or not target.strip():
            raise UsageError(
                f"--label-map entry '{item.strip()}' is not COLUMN=CLASS", "write e.g. Effusion=Pleural Effusion"
            )
        mapping[source.strip()] = target.strip()
    return mapping


def canonical_names(columns: list[str], label_map: dict[str, str]) -> dict[str, str]:
    """Label column → canonical class. Names match ignoring case and ``_`` vs space; others need the map."""
    unused = [k for k in label_map if k not in columns]
    if unused:
        raise UsageError(f"--label-map names {unused}, which are not among --label-columns {columns}", "fix the map")
    out: dict[str, str] = {}
    unmappable = []
    for column in columns:
        canonical = _BY_KEY.get(_key(label_map.get(column, column)))
        if canonical is None:
            unmappable.append(label_map.get(column, column))
        out[column] = canonical or ""
    if unmappable:
        raise UsageError(
            f"label names {unmappable} are not in umcl's vocabulary ({', '.join(CANONICAL_CLASSES)})",
            "map them with --label-map 'NAME=Canonical Name,...'",
        )
    targets = list(out.values())
    twice = sorted({t for t in targets if targets.count(t) > 1})
    if twice:
        raise UsageError(f"several label columns map to {twice}", "map each class from one column only")
    return out


def label_values(frame: pl.DataFrame, column: str, source: str) -> pl.Series:
    """``column`` as Float32 after checking every value is 1, 0, -1 or blank."""
    try:
        values = frame[column].cast(pl.Float32)
    except pl.exceptions.PolarsError as exc:
        raise UsageError(
            f"label column '{column}' of {source} is not numeric ({frame[column].dtype})",
            "use 1 (positive), 0 (negative), -1 (uncertain) or blank",
        ) from exc
    bad = values.filter(values.is_not_null() & ~values.is_in([1.0, 0.0, -1.0])).unique().sort()
    if bad.len():
        raise UsageError(
            f"label column '{column}' of {source} holds {bad.head(5).to_list()}",
            "use 1 (positive), 0 (negative), -1 (uncertain) or blank",
        )
    return values
