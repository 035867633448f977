"""``metrics.json``: the stable, versioned record every evaluation command writes.

Schema (``schema_version`` 2). Keys marked * are in every file; the rest depend on the command.
Numbers that are undefined (an AUROC without positives, …) are ``null``; JSON has no NaN.
Labels everywhere: blank (not mentioned) = negative, -1 (uncertain) = left out of that class
(``evaluation/labels.py``).

Version 2 (from 1): ``bootstrap`` added; multilabel means in ``ci95`` average a fixed class set;
zero-shot adds ``draws``/``by_draw`` and the ``sensitivity`` mode;
zero-shot pos/neg scores are log-odds; ``retrieve`` adds the report-level keys and ``n_report_items``,
and instance-level ties follow gallery order; ``linear-probe`` adds ``protocol``, ``l2``, ``val_split``,
``subsets`` and per-run ``l2``, ``l2_sweep``, ``val_mean_auroc``, ``best_epoch``.

Common
    * ``schema_version`` (int), ``umcl_version`` (str), ``command`` (``zeroshot`` | ``linear-probe`` |
      ``retrieve`` | ``prompt-tune``), ``checkpoint`` (path), ``dataset`` (name), ``dataset_dir``.
    * ``metrics``: the headline numbers, a flat ``{name: number | null}`` map; ``umcl report`` shows one
      row per key. Names qualified by a condition read ``NAME@CONDITION`` (``mean_auroc@0.1``,
      ``accuracy@16-shot``).
    ``ci95``: ``{name: {estimate, low, high, n, skipped}}`` percentile-bootstrap 95% interval of the
      headline metric of the same name (``n`` resamples, ``skipped`` where it was undefined, e.g. a
      mean AUROC whose resample lost a class's positives); ``{}`` with ``--bootstrap 0``.
    ``bootstrap``: ``{resamples, seed, unit, level}``: how ``ci95`` was drawn; ``unit`` is what was
      resampled: ``patient`` (``subject_id``), ``study`` (``study_id``) or ``image``.
    ``std``: ``{name: number}`` population standard deviation (ddof=0) over seeds, for seed-averaged
      headline metrics (present only with several seeds).
    ``chance``: ``{name: number}`` the value a random scorer would get, where it is known.
    ``plots``: PNG file names beside ``metrics.json``.

``zeroshot``
    ``task`` (multiclass | multilabel | binary), ``split``, ``prompts`` (source), ``classes``, ``n``,
    ``per_class``. Multiclass metrics ``accuracy``, ``macro_f1`` and ``confusion_matrix`` (rows = true);
    multilabel ``mean_auroc`` (all scored classes), ``mean_auroc_eval_classes`` (the dataset's standard
    classes, listed in ``eval_classes``); binary ``auroc``, ``accuracy``, ``sensitivity``,
    ``specificity`` and ``threshold`` (a probability of the positive prompt). On a multi-draw set
    (``prepare chexpert-5x200 --draws K``): ``draws`` (K), ``metrics`` and ``std`` the mean and std
    over draws, ``ci95`` ``{}``, ``by_draw`` ``[{dir, seed, n, metrics, ci95}]``; ``per_class`` and
    plots are the first draw's. With ``--sensitivity``: ``mode`` ``sensitivity``, ``styles_source``,
    ``metrics`` ``NAME@style:STYLE`` and ``NAME@SOURCE`` (templates, learned, …), ``styles`` ``{style:
    {metrics, prompts (of the first class)}}``, ``spread`` ``{NAME: {min, max, range, std, best,
    worst}}``, ``compared`` ``{source: {metrics, standing: {NAME: {value, beats, of, percentile}}}}``.
``linear-probe``
    ``mode`` (linear | finetune), ``finetune`` (settings or null), ``protocol`` (clip | gloria; null
    when fine-tuning), ``l2`` (clip: ``{selection: fixed | validation sweep, value, grid}``),
    ``val_split`` (null when unused), ``subsets`` (how fractions are drawn), ``fractions``, ``seeds``,
    ``fraction`` (the largest), ``n_train`` (at it), ``n_test``, ``classes``, ``eval_classes``.
    ``metrics``: ``mean_auroc`` and ``mean_auroc_eval_classes`` at the largest fraction, mean over seeds;
    ``NAME@F`` at each smaller fraction F. ``by_fraction``: ``{F: {fraction, n_train, NAME: {mean, std,
    n, values}, ci95}}``; ``runs``: one entry per (fraction, seed), with ``l2`` (chosen), ``l2_sweep``
    (``{l2: validation mean AUROC}``), ``val_mean_auroc`` and ``best_epoch`` (gloria); ``per_class`` at
    the largest fraction.
``retrieve``
    ``mode``: ``recall`` (``split``, ``n`` pairs, ``n_report_items``; metrics
    ``{image_to_text,text_to_image}_{R@K, median_rank, mean_rank, P@K}`` (instance-level, open_clip's
    definition; tied items keep gallery order) and ``{image_to_text,text_to_image}_report_{R@K,
    median_rank, mean_rank}`` (report-level: identical normalised reports and the views of one study
    are one item); CIs from a query-level bootstrap), ``text-to-image`` (``query``,
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
from umcl_cli.io_safety import atomic_write

SCHEMA_VERSION = 2


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
    text = json.dumps(_clean(doc), indent=2) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text))
    return path


def default_out(ckpt: Path, command: str, dataset_name: str) -> Path:
    return Path(ckpt).parent / "eval" / f"{command}-{dataset_name.replace('/', '_')}"
