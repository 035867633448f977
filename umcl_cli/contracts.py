"""Every contract a plugin author needs, in one public place: ``from umcl_cli.contracts import ...``.

A plugin is any installed distribution that declares entry points; umcl discovers them by group
and checks what each one names when it loads it (``umcl plugins`` shows the result per plugin):

``umcl.datasets``
    A class subclassing :class:`DatasetPlugin` that sets the class attributes ``name`` and
    ``summary`` (and ``Options``, a :class:`PrepareOptions` subclass). umcl instantiates it with no
    arguments and calls ``prepare(options, out)``, which writes each directory with
    :func:`write_prepared` (class names from :data:`CANONICAL_CLASSES`, splits from :data:`SPLITS`).
``umcl.losses``
    A class subclassing :class:`ContrastiveLoss`, instantiated with the recipe's ``loss.options``;
    it implements ``targets(...)`` (see :func:`identity_targets` and :func:`label_keys`) and receives
    a :class:`ContrastiveBatch`. Options that name classes are resolved in ``bind_classes(classes)``,
    called once before training with the labels' column order. ``text_view`` (a weight) passed on to
    ``ContrastiveLoss.__init__`` adds the text-to-text term over the same targets.
``umcl.image_encoders`` / ``umcl.text_encoders``
    A factory: a callable taking keyword options (the recipe's ``model.*_encoder.options``, or a
    checkpoint's ``rebuild_spec()``) and returning an :class:`ImageEncoder` / :class:`TextEncoder`.
    ``rebuild_spec()`` returns JSON-able keyword options from which the same factory rebuilds the
    architecture offline, with no download (weights then come from the checkpoint); that is what
    makes ``model.pt`` self-contained. ``set_grad_checkpointing(enabled)`` is optional (the default
    refuses ``model.grad_checkpointing: true`` with a ``UsageError`` naming the encoder).

Input the user can fix is reported by raising :class:`UsageError` (problem, then fix): the CLI prints
it as one line and exits 2.

The torch-based contracts (losses, encoders) are imported on first use, so a dataset plugin that
imports only the dataset contracts starts without torch (``umcl prepare`` never needs it).

Layering: this module imports only umcl's base modules, ``umcl_cli.engine`` and ``umcl_cli.data``,
never the model, evaluation, CLI or workflow layers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from umcl_cli.data.manifest import (
    CANONICAL_CLASSES,
    CHEXPERT_CLASSES,
    CHEXPERT_COMPETITION,
    SPLITS,
    PreparedDataset,
    write_prepared,
)
from umcl_cli.data.plugin import DatasetPlugin, PrepareOptions
from umcl_cli.errors import UsageError

if TYPE_CHECKING:
    from umcl_cli.engine.contrastive import ContrastiveBatch, ContrastiveLoss, identity_targets, label_keys
    from umcl_cli.engine.encoders import ImageEncoder, TextEncoder

__all__ = [
    "CANONICAL_CLASSES",
    "CHEXPERT_CLASSES",
    "CHEXPERT_COMPETITION",
    "SPLITS",
    "ContrastiveBatch",
    "ContrastiveLoss",
    "DatasetPlugin",
    "ImageEncoder",
    "PrepareOptions",
    "PreparedDataset",
    "TextEncoder",
    "UsageError",
    "identity_targets",
    "label_keys",
    "write_prepared",
]

# Contracts that need torch: name → defining module, imported when first asked for.
_LAZY = {
    "ContrastiveBatch": "umcl_cli.engine.contrastive",
    "ContrastiveLoss": "umcl_cli.engine.contrastive",
    "identity_targets": "umcl_cli.engine.contrastive",
    "label_keys": "umcl_cli.engine.contrastive",
    "ImageEncoder": "umcl_cli.engine.encoders",
    "TextEncoder": "umcl_cli.engine.encoders",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
