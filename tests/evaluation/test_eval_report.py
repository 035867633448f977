"""``umcl report`` over two demo-like runs (UMCL and its CLIP baseline), and retrieval records."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch
from e2e_helpers import RECIPES, TINY, prepare_tiny
from typer.testing import CliRunner

from umcl_cli.cli.app import app
from umcl_cli.data.reports import select_text
from umcl_cli.data.resolve import resolve_dataset
from umcl_cli.evaluation.features import encode_image_files, encode_text_list
from umcl_cli.model.checkpoint import load_model
from umcl_cli.workflows.linear_probe import linear_probe
from umcl_cli.workflows.pretrain import pretrain
from umcl_cli.workflows.retrieval import retrieve
from umcl_cli.workflows.zeroshot import zeroshot

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), terminal_width=200, env={"UMCL_DEBUG": ""})


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """Two runs laid out like `umcl demo`'s: a run directory with its evaluations under eval/."""
    root = tmp_path_factory.mktemp("eval-report")
    prepare_tiny(root / "data")
    data = str(root / "data")
    dirs = []
    for recipe in ("demo", "demo-clip"):
        run = pretrain(RECIPES / f"{recipe}.yaml", TINY, root / recipe, data_root=data).run_dir
        ckpt = run / "model.pt"
        zeroshot(ckpt, "synthetic/5x200", "templates", run / "eval" / "zeroshot", data_root=data, bootstrap=20)
        linear_probe(ckpt, "synthetic", [0.5, 1.0], [0, 1], run / "eval" / "linear-probe", bootstrap=10, data_root=data)
        retrieve(ckpt, "synthetic", out=run / "eval" / "retrieve", data_root=data, bootstrap=10)
        dirs.append(run)
    return root, dirs


class Cells(HTMLParser):
    """Collects the report table: {row label: {run: (text, data-value)}} and the image sources."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, dict[str, tuple[str, str | None]]] = {}
        self.images: list[str] = []
        self._row: str | None = None
        self._cell: dict[str, str | None] | None = None
        self._in_row_header = False
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "th" and a.get("scope") == "row":
            self._in_row_header, self._text = True, ""
        elif tag == "td":
            self._cell, self._text = a, ""
        elif tag == "img":
            self.images.append(a["src"] or "")

    def handle_data(self, data: str) -> None:
        self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "th" and self._in_row_header:
            self._row, self._in_row_header = self._text, False
            self.rows[self._row] = {}
        elif tag == "td" and self._cell is not None and self._row is not None:
            self.rows[self._row][self._cell["data-run"]] = (self._text, self._cell.get("data-value"))
            self._cell = None


def test_report_puts_two_runs_side_by_side_in_markdown_and_html(runs) -> None:
    root, dirs = runs
    out = root / "report"
    result = invoke("report", *map(str, dirs), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "| metric" in result.output and "demo-clip" in result.output
    assert "zeroshot synthetic-5x200 (eval/zeroshot) · accuracy" in result.output
    page = (out / "report.html").read_text()
    assert (out / "report.md").read_text().startswith("# umcl report")
    assert "http://" not in page and "https://" not in page and "<link" not in page and "<script" not in page

    cells = Cells()
    cells.feed(page)
    checked = 0
    for run in dirs:
        for path in sorted(run.rglob("metrics.json")):
            doc = json.loads(path.read_text())
            where = path.parent.relative_to(run).as_posix()
            for key, value in doc["metrics"].items():
                text, raw = cells.rows[f"{doc['command']} {doc['dataset']} ({where}) · {key}"][run.name]
                assert float(raw) == value  # the exact number in the cell's data-value
                assert text.startswith(f"{value:.4f}")  # and what the reader sees
                if key in doc.get("ci95", {}):
                    assert f"[{doc['ci95'][key]['low']:.4f}, {doc['ci95'][key]['high']:.4f}]" in text
                if key in doc.get("std", {}):
                    assert f"± {doc['std'][key]:.4f}" in text
                checked += 1
    assert checked >= 2 * (2 + 4 + 16)  # zero-shot, linear probe (2 fractions), retrieval (16 keys)
    # Every plot of every evaluation and each run's training curves, embedded.
    expected = sum(len(json.loads(p.read_text())["plots"]) for d in dirs for p in d.rglob("metrics.json")) + 2
    assert len(cells.images) == expected and all(s.startswith("data:image/png;base64,") for s in cells.images)


def test_report_without_metrics_is_refused(tmp_path: Path) -> None:
    result = invoke("report", str(tmp_path), "--out", str(tmp_path / "r"))
    assert result.exit_code == 2 and result.output.startswith("error: no metrics.json under")


def test_recall_gives_every_metric_a_ci(runs) -> None:
    _, dirs = runs
    doc = json.loads((dirs[0] / "eval" / "retrieve" / "metrics.json").read_text())
    assert doc["mode"] == "recall" and set(doc["ci95"]) == set(doc["metrics"])
    # Both Recall@K families, the report-level one over fewer (merged) items; patients resampled.
    for direction in ("image_to_text", "text_to_image"):
        assert {f"{direction}_R@1", f"{direction}_report_R@1", f"{direction}_report_median_rank"} <= set(doc["metrics"])
    assert 1 < doc["n_report_items"] <= doc["n"]
    assert doc["bootstrap"] == {"resamples": 10, "seed": 0, "unit": "patient", "level": 0.95}


def test_image_search_ranks_report_texts_and_writes_a_record(runs) -> None:
    root, dirs = runs
    ckpt, out = dirs[0] / "model.pt", root / "search-image"
    ds = resolve_dataset("synthetic", root / "data")
    image = ds.image_file(ds.split("test")["image_path"][0])
    result = invoke(
        "retrieve",
        "--ckpt",
        str(ckpt),
        "--dataset",
        "synthetic",
        "--data-root",
        str(root / "data"),
        "--image",
        str(image),
        "--top",
        "3",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["schema_version"] == 2 and doc["command"] == "retrieve" and doc["mode"] == "image-to-text"
    assert [h["rank"] for h in doc["top"]] == [1, 2, 3] and doc["metrics"] == {}
    assert (out / doc["plots"][0]).is_file()
    # Independently: cosine of the image embedding with every distinct report text of the split.
    model, payload = load_model(ckpt)
    texts = sorted({select_text(t, "both") for t in ds.split("test")["text"].to_list() if t is not None})
    query = encode_image_files(model, [image], payload["image_size"])[0]
    scores = encode_text_list(model, texts) @ query
    best = torch.topk(scores, 3)
    assert [h["text"] for h in doc["top"]] == [texts[i] for i in best.indices.tolist()]
    assert [h["score"] for h in doc["top"]] == pytest.approx(best.values.tolist(), abs=1e-5)


def test_text_query_writes_a_record_and_a_grid(runs) -> None:
    root, dirs = runs
    out = root / "search-text"
    record = retrieve(
        dirs[1] / "model.pt",
        "synthetic",
        query="small left pleural effusion",
        top=4,
        out=out,
        data_root=str(root / "data"),
    )
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["mode"] == "text-to-image" and doc["query"] == record.query and len(doc["top"]) == 4
    assert doc["plots"] == ["query_grid.png"] and (out / "query_grid.png").is_file()
    scores = [h["score"] for h in doc["top"]]
    assert scores == sorted(scores, reverse=True)


def test_query_and_image_together_are_refused(runs) -> None:
    root, dirs = runs
    result = invoke(
        "retrieve",
        "--ckpt",
        str(dirs[0] / "model.pt"),
        "--dataset",
        "synthetic",
        "--data-root",
        str(root / "data"),
        "--query",
        "edema",
        "--image",
        str(dirs[0] / "training_curves.png"),
    )
    assert result.exit_code == 2 and "pass only one of them" in result.output
