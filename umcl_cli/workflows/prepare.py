"""Preparing a dataset through its plugin, built aside and swapped in whole, and its image cache."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from umcl_cli import registry
from umcl_cli.data.cache import MODES, build_cache
from umcl_cli.data.manifest import INFO, MANIFEST, PreparedDataset
from umcl_cli.data.staging import prepare_staged
from umcl_cli.errors import UsageError
from umcl_cli.recipe import describe_validation_error


@dataclass
class PrepareResult:
    """The prepared directories (empty list of datasets with ``cache_only``) and each cache built."""

    datasets: list[PreparedDataset] = field(default_factory=list)
    caches: list[tuple[Path, int]] = field(default_factory=list)  # (cache directory, images)


def prepared_dirs(target: Path) -> list[Path]:
    """An already-prepared directory and the prepared directories directly inside it (e.g. ``5x200``)."""
    PreparedDataset(target)  # raises the "not prepared yet" error with its fix
    inside = [d for d in sorted(target.iterdir()) if (d / MANIFEST).is_file() and (d / INFO).is_file()]
    return [target, *inside]


def prepare(
    name: str,
    options: dict[str, Any],
    target: Path,
    cache_size: int | None = None,
    cache_mode: str = "pad",
    cache_workers: int | None = None,
    cache_only: bool = False,
) -> PrepareResult:
    """Run dataset plugin ``name`` with ``options`` (validated into its ``Options``) into ``target``;
    with ``cache_size`` also cache every image at that size. A failed or killed run leaves an
    earlier ``target`` intact."""
    plugin_cls = registry.load("datasets", name)
    if cache_mode not in MODES:
        raise UsageError(f"--cache-mode {cache_mode} is not one of {', '.join(MODES)}", "pass --cache-mode pad or crop")
    result = PrepareResult()
    if cache_only:
        if cache_size is None:
            raise UsageError("--cache-only needs --cache-size PX", "add e.g. --cache-size 224")
        if options:
            raise UsageError(
                f"--cache-only reads the prepared {target} as it is, so plugin options "
                f"(--{next(iter(options)).replace('_', '-')} …) do not apply",
                "drop them, or prepare again without --cache-only",
            )
        written = prepared_dirs(target)
    else:
        try:
            validated = plugin_cls.Options.model_validate(options)
        except ValidationError as exc:
            raise UsageError(describe_validation_error(exc, f"umcl prepare {name}"), "fix the option value") from exc
        written = prepare_staged(target, lambda staging: plugin_cls().prepare(validated, staging))
        result.datasets = [PreparedDataset(d) for d in written]
    if cache_size is not None:
        for directory in written:
            cache = build_cache(directory, cache_size, cache_mode, workers=cache_workers)
            result.caches.append((cache.directory, len(cache)))
    return result
