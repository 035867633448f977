"""Parsed report chunks → one polars row per study."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import polars as pl

from .reports import SEP, Chunk

_COLUMNS = ("text", "findings", "impression")


def sections_frame(study_ids: pl.Series, chunks: Iterable[Chunk]) -> pl.DataFrame:
    """One row per study: text, findings, impression (null when absent) and report_found.

    Chunks become columns one at a time, so the raw text of only one chunk is held twice.
    """
    columns: dict[str, list[pl.Series]] = {name: [] for name in _COLUMNS}
    found = []
    for chunk in chunks:
        for name in _COLUMNS:
            values = [text or None for text in getattr(chunk, name).split(SEP)]
            columns[name].append(pl.Series(name, values, dtype=pl.String))
        found.append(np.frombuffer(chunk.found, dtype=np.uint8).astype(bool))
    frame = pl.DataFrame({"study_id": study_ids, "report_found": np.concatenate(found) if found else []})
    return frame.with_columns(
        pl.concat(parts) if parts else pl.Series(name, [], dtype=pl.String) for name, parts in columns.items()
    )
