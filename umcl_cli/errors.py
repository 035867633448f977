"""Known failures. The CLI turns each into one line (problem, then fix) and an exit code."""

from __future__ import annotations


class UmclError(Exception):
    """A failure the user can fix; ``fix`` says how."""

    exit_code = 1

    def __init__(self, problem: str, fix: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix

    def one_line(self) -> str:
        return f"{self.problem}. {self.fix}" if self.fix else self.problem

    def __str__(self) -> str:
        # The fix travels with the text: a DataLoader worker's error reaches the CLI only as text.
        return self.one_line()

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Keeps the fix when a process pool sends the error back to its parent.
        return type(self), (self.problem, self.fix)


class UsageError(UmclError):
    """Bad input: a recipe, a path, an option, a plugin name (exit code 2)."""

    exit_code = 2


class RuntimeFailure(UmclError):
    """The input was fine but the work failed (exit code 1)."""

    exit_code = 1


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an error, shortened: torch's errors run to many lines."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:160]
