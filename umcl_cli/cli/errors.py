"""The one place that turns failures into a one-line message and an exit code.

Known errors print ``error: <problem>. <fix>`` and exit 2 (bad input) or 1 (runtime failure);
Ctrl-C exits 130. ``UMCL_DEBUG=1`` re-raises so the traceback shows.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from umcl_cli.errors import RuntimeFailure, UmclError, UsageError
from umcl_cli.io_safety import write_failure

F = TypeVar("F", bound=Callable[..., Any])
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def translate(exc: BaseException) -> UmclError | None:
    """Map third-party failures users hit to actionable messages; None if unknown."""
    if isinstance(exc, UmclError):
        return from_worker(exc)
    if isinstance(exc, PermissionError):
        return UsageError(f"permission denied: {exc.filename}", "choose a location you can write, e.g. --out ./runs/x")
    if isinstance(exc, FileNotFoundError):
        return UsageError(
            f"file not found: {exc.filename}", "check the path (relative paths start at the current directory)"
        )
    if isinstance(exc, OSError) and exc.errno == 28:
        return write_failure(Path(exc.filename or "a file"), exc)
    if type(exc).__name__ == "OutOfMemoryError":
        return RuntimeFailure("the accelerator ran out of memory", "lower train.batch_size or use train.precision=bf16")
    return None


def from_worker(exc: UmclError) -> UmclError:
    """A DataLoader worker's error arrives as the same type whose text is the worker's whole
    traceback; its last line holds the original one-line message."""
    text = str(exc)
    if "\nOriginal Traceback" not in text:
        return exc
    last = text.rstrip().splitlines()[-1]
    return type(exc)(last.split(": ", 1)[-1])


def report(exc: BaseException) -> int:
    known = translate(exc)
    if known is None:
        err_console.print(
            f"[red]error:[/red] unexpected {type(exc).__name__}: {escape(str(exc))}. "
            "Set UMCL_DEBUG=1 to see the traceback and report it"
        )
        return 1
    err_console.print(f"[red]error:[/red] {escape(known.one_line())}")  # "[wandb]" is text, not markup
    return known.exit_code


def handle_errors(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt:
            if os.environ.get("UMCL_DEBUG"):
                raise
            err_console.print("interrupted; checkpoints already written are kept")
            raise typer.Exit(130) from None
        except Exception as exc:
            if os.environ.get("UMCL_DEBUG"):
                raise
            raise typer.Exit(report(exc)) from None

    return wrapper  # type: ignore[return-value]
