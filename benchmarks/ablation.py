"""The UMCL ablation: five arms x three seeds on hard synthetic data, one identical step budget.

(a) clip, pairs only; (b) clip, pairs + label rows through one template; (c) itl on (b)'s data;
(d) full UMCL (itl + continuous prompts); (e) soft targets on (d)'s data. For each run: zero-shot
5x200 accuracy / macro-F1 (hand-written ensemble, and the learned prompt where the arm has one),
linear-probe mean AUROC, retrieval R@5, and prompt sensitivity: zero-shot accuracy under ten single
hand-written templates, half of them in phrasings that never occur in the training reports.

    python benchmarks/ablation.py --work /tmp/umcl-ablation          # resumable: finished runs are kept
    python benchmarks/ablation.py --seeds 0 --arms d-umcl --max-steps 100   # a quick look
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from types import SimpleNamespace

import torch

from umcl_cli.data.manifest import CHEXPERT_COMPETITION, PreparedDataset
from umcl_cli.data.resolve import resolve_dataset
from umcl_cli.evaluation import metrics as M
from umcl_cli.evaluation.labels import multiclass_targets
from umcl_cli.evaluation.prompt_sources import from_learner, from_text_prompts, hand_written
from umcl_cli.evaluation.zeroshot import eval_labels, zeroshot_scores
from umcl_cli.model.checkpoint import load_model
from umcl_cli.workflows.linear_probe import linear_probe
from umcl_cli.workflows.pretrain import pretrain
from umcl_cli.workflows.retrieval import retrieve
from umcl_datasets.synthetic import HELD_OUT_PHRASES, TRAINING_PHRASES, SyntheticDataset

ROOT = Path(__file__).resolve().parents[1]
ARMS = ("a-clip-pairs", "b-clip-template", "c-itl-template", "d-umcl", "e-soft-prompt")
CLASSES = list(CHEXPERT_COMPETITION)
# (frame, which phrase list, index): five in training wording, five in held-out synonyms.
TEMPLATES = (
    ("{}", "seen", 0),
    ("there is {}", "seen", 0),
    ("findings consistent with {}", "seen", 0),
    ("{} is present", "seen", 1),
    ("a chest x-ray showing {}", "seen", 1),
    ("{}", "unseen", 0),
    ("there is {}", "unseen", 1),
    ("a radiograph with {}", "unseen", 2),
    ("signs of {}", "unseen", 0),
    ("the image shows {}", "unseen", 1),
)


def class_wording(kind: str, index: int) -> dict[str, str]:
    source = TRAINING_PHRASES if kind == "seen" else HELD_OUT_PHRASES
    return {c: source[c][min(index, len(source[c]) - 1)] for c in CLASSES}


def template_prompts(frame: str, kind: str, index: int) -> dict[str, str]:
    return {c: frame.format(p) for c, p in class_wording(kind, index).items()}


def zeroshot_block(ckpt: Path, ds: PreparedDataset) -> dict:
    """5x200-style zero-shot of one checkpoint: hand-written ensemble, ten single templates, and the
    learned prompt (alone and with each template's class wording)."""
    model, payload = load_model(ckpt)
    feats, _ = zeroshot_scores(model, ds, "test", payload["image_size"])
    targets = multiclass_targets(eval_labels(ds, "test", CLASSES))

    def score(texts) -> dict:
        result = M.multiclass_metrics(feats @ texts.positive.T, targets, CLASSES)
        return {"accuracy": result["accuracy"], "macro_f1": result["macro_f1"]}

    out = {"ensemble": score(hand_written(model, CLASSES)), "templates": []}
    for frame, kind, index in TEMPLATES:
        prompts = template_prompts(frame, kind, index)
        table = {c: {"positive": [p], "negative": [f"no {p}"]} for c, p in prompts.items()}
        out["templates"].append(
            {"kind": kind, "example": prompts["Cardiomegaly"], **score(from_text_prompts(model, table, "template"))}
        )
    learner = model.prompt_learner
    if learner is not None:
        out["learned"] = score(from_learner(model, learner, CLASSES, "learned"))
        # The learned context in place of the sentence frame, with each template's class wording.
        sets = [[learner.classes.index(c)] for c in CLASSES]
        out["learned_wordings"] = []
        for _, kind, index in TEMPLATES:
            with torch.no_grad():
                pos = model.encode_prompts(list(class_wording(kind, index).values()), sets).float()
            out["learned_wordings"].append({"kind": kind, **score(SimpleNamespace(positive=pos))})
    return out


def run_arm(arm: str, seed: int, work: Path, max_steps: int | None) -> dict:
    run = work / "runs" / f"{arm}-seed{seed}"
    result_file = run / "ablation.json"
    if result_file.is_file():
        return json.loads(result_file.read_text())
    overrides = [f"seed={seed}"] + ([f"train.max_steps={max_steps}"] if max_steps else [])
    started = time.perf_counter()
    if not (run / "model.pt").is_file():
        pretrain(
            ROOT / "recipes" / "ablation" / f"{arm}.yaml",
            overrides,
            run,
            resume="latest" if (run / "checkpoints" / "last.pt").is_file() else None,
            data_root=str(work / "data"),
        )
    train_s = time.perf_counter() - started
    ckpt = run / "model.pt"
    lp = linear_probe(ckpt, "synthetic-hard", bootstrap=0, data_root=str(work / "data"))
    rt = retrieve(ckpt, "synthetic-hard", data_root=str(work / "data"), bootstrap=0)
    result = {
        "arm": arm,
        "seed": seed,
        "train_seconds": train_s,
        "zeroshot": zeroshot_block(ckpt, resolve_dataset("synthetic-hard/5x200", work / "data")),
        "linear_probe_mean_auroc": lp.metrics["mean_auroc"],
        "retrieval_R@5": (rt.metrics["image_to_text_R@5"] + rt.metrics["text_to_image_R@5"]) / 2,
    }
    result_file.write_text(json.dumps(result, indent=2))
    return result


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def optional(rows: list[dict], key: str) -> str:
    """mean ± std of a metric some benchmarks skip (the realistic one trains more arms instead)."""
    return mean_std([r[key] for r in rows]) if all(key in r for r in rows) else "-"


def spread(values: list[float]) -> tuple[float, float]:
    return max(values) - min(values), statistics.pstdev(values)


def summarise(results: list[dict], arms: tuple[str, ...] | list[str] = ARMS) -> str:
    """Two markdown tables: the headline metrics, then prompt sensitivity."""
    main = [
        "| arm | zero-shot acc (hand-written ensemble) | macro-F1 (ensemble) | zero-shot acc (learned prompt) "
        "| macro-F1 (learned) | linear probe mean AUROC | retrieval R@5 |",
        "|---|---|---|---|---|---|---|",
    ]
    sensitivity = [
        "| arm | 10 templates: mean acc | seen / unseen wording | template spread max-min | template spread std "
        "| learned prompt over seeds: max-min / std | learned context x 10 wordings: max-min | std |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arm in arms:
        rows = [r for r in results if r["arm"] == arm]
        if not rows:
            continue
        z = [r["zeroshot"] for r in rows]
        learned = [x["learned"] for x in z if "learned" in x]
        main.append(
            f"| {arm} | {mean_std([x['ensemble']['accuracy'] for x in z])} "
            f"| {mean_std([x['ensemble']['macro_f1'] for x in z])} "
            f"| {mean_std([x['accuracy'] for x in learned]) if learned else '-'} "
            f"| {mean_std([x['macro_f1'] for x in learned]) if learned else '-'} "
            f"| {optional(rows, 'linear_probe_mean_auroc')} | {optional(rows, 'retrieval_R@5')} |"
        )
        tmpl = [[t["accuracy"] for t in x["templates"]] for x in z]
        seen = statistics.mean(t["accuracy"] for x in z for t in x["templates"] if t["kind"] == "seen")
        unseen = statistics.mean(t["accuracy"] for x in z for t in x["templates"] if t["kind"] == "unseen")
        learned_cells = "- | - | -"
        if learned:
            over_seeds = spread([x["accuracy"] for x in learned])
            wordings = [spread([w["accuracy"] for w in x["learned_wordings"]]) for x in z]
            learned_cells = (
                f"{over_seeds[0]:.3f} / {over_seeds[1]:.3f} | {mean_std([w[0] for w in wordings])} "
                f"| {mean_std([w[1] for w in wordings])}"
            )
        sensitivity.append(
            f"| {arm} | {mean_std([statistics.mean(t) for t in tmpl])} | {seen:.3f} / {unseen:.3f} "
            f"| {mean_std([spread(t)[0] for t in tmpl])} | {mean_std([spread(t)[1] for t in tmpl])} | {learned_cells} |"
        )
    return "\n".join(main) + "\n\n" + "\n".join(sensitivity)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/umcl-ablation"))
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--max-steps", type=int, default=None, help="override the recipes' budget (quick looks)")
    parser.add_argument("--n", type=int, default=3000)
    args = parser.parse_args()
    torch.set_num_threads(2)
    data = args.work / "data" / "synthetic-hard"
    if not (data / "dataset.json").is_file():
        plugin = SyntheticDataset()
        plugin.prepare(plugin.Options(n=args.n, seed=0, label_sets=12, label_only_fraction=0.6), data)
    results = []
    arms = args.arms.split(",")
    for arm in arms:
        for seed in (int(s) for s in args.seeds.split(",")):
            results.append(run_arm(arm, seed, args.work, args.max_steps))
            print(f"done {arm} seed {seed}", flush=True)
    table = summarise(results, arms)  # every arm asked for, those of recipes/ablation/ beyond the five too
    (args.work / "ablation.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
