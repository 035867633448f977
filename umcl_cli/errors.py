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


class UsageError(UmclError):
    """Bad input: a recipe, a path, an option, a plugin name (exit code 2)."""

    exit_code = 2


class RuntimeFailure(UmclError):
    """The input was fine but the work failed (exit code 1)."""

    exit_code = 1
