"""``metrics.json``: the stable, versioned record every evaluation command writes.

Schema (``schema_version`` 1). Keys marked * are in every file; the rest depend on the command.
Numbers that are undefined (an AUROC without positives, …) are ``null``; JSON has no NaN.

Common
    * ``schema_version`` (int), ``umcl_version`` (str), ``command`` (``zeroshot`` | ``linear-probe`` |
      ``retrieve`` | ``prompt-tune``), ``checkpoint`` (path), ``dataset`` (name), ``dataset_dir``.
    * ``metrics``: the headline numbers, a flat ``{name: number | null}`` map; ``umcl report`` shows one
      row per key. Names qualified by a condition read ``NAME@CONDITION`` (``mean_auroc@0.1``,
      ``accuracy@16-shot``).
    ``ci95``: ``{name: {estimate, low, high, n, skipped}}`` percentile-bootstrap 95% interval of the
      headline metric of the same name (``n`` resamples, ``skipped`` where it was undefined);
      ``{}`` with ``--bootstrap 0``.
    ``std``: ``{name: number}`` population standard deviation (ddof=0) over seeds, for seed-averaged
      headline metrics (present only with several seeds).
    ``chance``: ``{name: number}`` the value a random scorer would get, where it is known.
    ``plots``: PNG file names beside ``metrics.json``.

``zeroshot``
    ``task`` (multiclass | multilabel | binary), ``split``, ``prompts`` (source), ``classes``, ``n``,
    ``per_class``. Multiclass metrics ``accuracy``, ``macro_f1`` and ``confusion_matrix`` (rows = true);
    multilabel ``mean_auroc`` (all scored classes), ``mean_auroc_eval_classes`` (the dataset's standard
    classes, listed in ``eval_classes``); binary ``auroc``, ``accuracy``, ``sensitivity``,
    ``specificity`` and ``threshold``.
``linear-probe``
    ``mode`` (linear | finetune), ``finetune`` (settings or null), ``fractions``, ``seeds``,
    ``fraction`` (the largest), ``n_train`` (at it), ``n_test``, ``classes``, ``eval_classes``.
    ``metrics``: ``mean_auroc`` and ``mean_auroc_eval_classes`` at the largest fraction, mean over seeds;
    ``NAME@F`` at each smaller fraction F. ``by_fraction``: ``{F: {fraction, n_train, NAME: {mean, std,
    n, values}, ci95}}``; ``runs``: one entry per (fraction, seed); ``per_class`` at the largest fraction.
``retrieve``
    ``mode``: ``recall`` (``split``, ``n`` pairs; metrics ``{image_to_text,text_to_image}_{R@K,
    median_rank, mean_rank, P@K}``, CIs from a query-level bootstrap), ``text-to-image`` (``query``,
    ``top``: ``[{rank, score, image, findings}]``) or ``image-to-text`` (``image``, ``top``: ``[{rank,
    score, text, findings}]``); searches have empty ``metrics``.
``prompt-tune``
    ``shots``, ``seeds``, ``settings``, ``tuned_classes``, ``runs`` (per (shots, seed): ``prompts`` path,
    ``final_loss``, ``metrics``, ``ci95``). When evaluated: ``eval_dataset``, ``task``, ``classes``,
    ``metrics`` ``NAME@templates``, ``NAME@learned`` (the checkpoint's prompts, if it has them) and
    ``NAME@K-shot`` (mean over seeds), ``by_shots``, ``baselines``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from umcl_cli import __version__

SCHEMA_VERSION = 1


def _clean(value: Any) -> Any:
    """JSON has no NaN: undefined numbers become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def write_metrics(out_dir: Path, command: str, record: dict[str, Any]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "metrics.json"
    doc = {"schema_version": SCHEMA_VERSION, "umcl_version": __version__, "command": command, **record}
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_clean(doc), indent=2) + "\n")
    tmp.replace(path)
    return path


def default_out(ckpt: Path, command: str, dataset_name: str) -> Path:
    return Path(ckpt).parent / "eval" / f"{command}-{dataset_name.replace('/', '_')}"
