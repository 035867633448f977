"""What the core expects of a dataset plugin (entry-point group ``umcl.datasets``).

The entry point names a class; the core instantiates it with no arguments. ``Options`` is a
pydantic model (``extra="forbid"``) of the plugin's ``umcl prepare NAME`` options: each field
becomes ``--field-name VALUE`` on the command line and its ``description`` is the help text. The
core validates the command line into ``Options`` before calling ``prepare``, so a plugin receives
an instance of its own ``Options`` and never validates again.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict


class PrepareOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


OptionsT = TypeVar("OptionsT", bound=PrepareOptions)


class DatasetPlugin(ABC, Generic[OptionsT]):
    name: ClassVar[str]
    summary: ClassVar[str]
    Options: ClassVar[type[PrepareOptions]] = PrepareOptions

    @abstractmethod
    def prepare(self, options: OptionsT, out: Path) -> list[Path]:
        """Write one or more prepared dataset directories (see ``manifest.write_prepared``).

        Returns the directories written (the first is ``out``). Raises ``UsageError`` for input the
        user can fix.
        """
