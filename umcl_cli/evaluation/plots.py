"""PNG plots (matplotlib, no display needed)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def training_curves(metrics_jsonl: Path, out: Path) -> Path | None:
    if not metrics_jsonl.is_file():
        return None
    rows = [json.loads(line) for line in metrics_jsonl.read_text().splitlines() if line.strip()]
    if not rows:
        return None
    keys = [k for k in ("loss", "logit_scale", "lr", "samples_per_s") if k in rows[0]]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3))
    for ax, key in zip(list(axes) if len(keys) > 1 else [axes], keys, strict=True):
        ax.plot([r["step"] for r in rows], [r[key] for r in rows])
        ax.set_title(key)
        ax.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def confusion_matrix_png(matrix: Sequence[Sequence[int]], names: Sequence[str], out: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 1.2 * len(names) + 1.5))
    im = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    peak = max((max(r) for r in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            ax.text(j, i, str(v), ha="center", va="center", color="white" if v > peak / 2 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def roc_curves_png(curves: dict[str, tuple[list[float], list[float], float | None]], out: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, (fpr, tpr, auc) in curves.items():
        label = f"{name} ({auc:.3f})" if auc is not None else name
        ax.plot(fpr, tpr, label=label)
    ax.plot([0, 1], [0, 1], "k--", linewidth=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def image_grid_png(paths: Sequence[Path], captions: Sequence[str], out: Path, title: str) -> Path:
    from PIL import Image

    n = len(paths)
    cols = min(n, 5)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, path, caption in zip(axes.flat, paths, captions, strict=False):
        with Image.open(path) as im:
            ax.imshow(im.convert("L"), cmap="gray")
        ax.set_title(caption, fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def curve_png(
    xs: Sequence[float],
    series: dict[str, tuple[Sequence[float | None], Sequence[float | None]]],
    out: Path,
    title: str,
    xlabel: str,
    ylabel: str,
    baselines: dict[str, float | None] | None = None,
    log_x: bool = True,
) -> Path:
    """Lines of mean values with ± std error bars over ``xs``; dashed horizontal lines for baselines.

    Used for the data-efficiency curve (AUROC vs labelled fraction) and prompt tuning (metric vs shots).
    """
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, (means, stds) in series.items():
        points = [(x, m, s or 0.0) for x, m, s in zip(xs, means, stds, strict=True) if m is not None]
        if points:
            px, pm, ps = zip(*points, strict=True)
            ax.errorbar(px, pm, yerr=ps, marker="o", capsize=3, label=name)
    for name, value in (baselines or {}).items():
        if value is not None:
            ax.axhline(value, linestyle="--", linewidth=0.9, color="grey")
            ax.annotate(name, (min(xs), value), fontsize=7, va="bottom")
    if log_x:
        ax.set_xscale("log")
    ax.set_xticks(list(xs), [f"{x:g}" for x in xs])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def text_hits_png(image: Path, lines: Sequence[str], out: Path, title: str) -> Path:
    """The query image beside its ranked texts (image→text search)."""
    from PIL import Image

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6), gridspec_kw={"width_ratios": [1, 2]})
    with Image.open(image) as im:
        left.imshow(im.convert("L"), cmap="gray")
    left.axis("off")
    right.axis("off")
    wrapped = "\n".join(textwrap.fill(line, 80, subsequent_indent="    ") for line in lines)
    right.text(0, 1, wrapped, va="top", ha="left", fontsize=7, family="monospace", transform=right.transAxes)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def sensitivity_png(
    per_style: dict[str, float | None], references: dict[str, float | None], out: Path, title: str, metric: str
) -> Path:
    """One dot per prompt style (sorted), with the compared prompt sources as vertical lines."""
    styles = sorted(((v, s) for s, v in per_style.items() if v is not None), reverse=True)
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(styles) + 1.5))
    ax.scatter([v for v, _ in styles], range(len(styles)), color="tab:blue", zorder=3)
    ax.set_yticks(range(len(styles)), [s for _, s in styles])
    ax.invert_yaxis()
    colours = iter(("tab:red", "tab:green", "tab:purple", "tab:orange"))
    for name, value in references.items():
        if value is not None:
            ax.axvline(value, linestyle="--", linewidth=1.2, color=next(colours, "grey"), label=f"{name} ({value:.3f})")
    ax.set_xlabel(metric)
    ax.set_title(title)
    if references:
        ax.legend(fontsize=7, loc="lower right")
    ax.grid(axis="x", linewidth=0.4)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
