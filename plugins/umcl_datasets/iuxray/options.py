"""Options of ``umcl prepare iuxray``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from umcl_datasets.public import HeldOutOptions


class IUXrayOptions(HeldOutOptions):
    strip_deid: bool = Field(
        False, description="Remove the de-identification token XXXX from report text (default: keep it as written)."
    )
    unlisted: Literal["negative", "null"] = Field(
        "negative",
        description="A class the report's MeSH terms do not name: 'negative' (0; the terms were indexed by "
        "hand from the whole report) or 'null' (not mentioned).",
    )
