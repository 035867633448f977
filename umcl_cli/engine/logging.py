"""Run logging on rank 0: ``metrics.jsonl`` lines and progress (rich bar on a TTY, plain lines otherwise)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from umcl_cli.io_safety import atomic_write

console = Console(stderr=True)


class MetricsLog:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def keep_until(self, step: int) -> None:
        """Drop records after ``step`` (and any line torn by a kill), so a resumed run logs each step once."""
        if self.path is None or not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("step", 0) <= step:
                kept.append(line + "\n")
        atomic_write(self.path, lambda p: p.write_text("".join(kept)))

    def write(self, record: dict[str, Any]) -> None:
        if self.path is None:
            return
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")


class StepProgress:
    """A bar when a person watches; one log line every ``every`` steps when output is captured."""

    def __init__(self, total: int, start: int, description: str, enabled: bool, every: int) -> None:
        self.enabled = enabled
        self.every = every
        self.total = total
        self.description = description
        self.tty = enabled and sys.stderr.isatty()
        self._bar: Progress | None = None
        self._t0 = time.time()
        if self.tty:
            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeRemainingColumn(),
                console=console,
                transient=False,
            )
            self._task = self._bar.add_task(description, total=total, completed=start, info="")
            self._bar.start()

    def update(self, step: int, info: dict[str, float]) -> None:
        if not self.enabled:
            return
        text = " ".join(f"{k}={v:.4g}" for k, v in info.items())
        if self._bar is not None:
            self._bar.update(self._task, completed=step, info=text)
        elif step % self.every == 0 or step == self.total:
            console.print(f"{self.description} {step}/{self.total} {text}".rstrip(), highlight=False, soft_wrap=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
