"""The README's "Use from Python" example runs exactly as written, and the API agrees with the
evaluation pipeline the commands use."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from e2e_helpers import RECIPES, TINY, prepare_tiny
from PIL import Image

from umcl_cli.api import load_model
from umcl_cli.evaluation.features import encode_image_files
from umcl_cli.workflows.pretrain import pretrain

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    section = README.read_text().split("## Use from Python", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the section holds one Python example"
    return blocks[0]


@pytest.fixture(scope="module")
def demo_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directories `umcl demo` leaves, with a tiny model."""
    root = tmp_path_factory.mktemp("api")
    prepare_tiny(root / "runs" / "demo" / "data")
    pretrain(RECIPES / "demo.yaml", TINY, root / "runs" / "demo" / "pretrain", data_root=str(root / "runs/demo/data"))
    return root


def test_the_readme_example_runs_as_written(demo_layout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = readme_example()
    assert len([line for line in code.splitlines() if line.strip()]) <= 12
    monkeypatch.chdir(demo_layout)
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)
    probs, own, image_emb, text_emb = (namespace[k] for k in ("probs", "own", "image_emb", "text_emb"))
    assert probs.shape == (10, 3) and torch.allclose(probs.sum(dim=1), torch.ones(10), atol=1e-5)
    assert own.shape == (10, 2) and image_emb.shape[0] == 10 and text_emb.shape[0] == 3
    assert torch.allclose(image_emb.norm(dim=1), torch.ones(10), atol=1e-5)
    result = namespace["result"]
    written = json.loads((result.out_dir / "metrics.json").read_text())
    assert written["metrics"]["accuracy"] == result.metrics["accuracy"] and 0 <= result.metrics["accuracy"] <= 1
    assert {k: written[k] for k in result.to_record()} == json.loads(json.dumps(result.to_record()))


def test_the_api_matches_the_evaluation_pipeline(demo_layout: Path) -> None:
    model = load_model(demo_layout / "runs/demo/pretrain/model.pt")
    paths = sorted((demo_layout / "runs/demo/data/synthetic/images").glob("*.png"))[:6]
    pipeline = encode_image_files(model.network, paths, model.network.image_encoder.image_size)
    assert torch.allclose(model.encode_images(paths), pipeline, atol=1e-6)
    assert torch.allclose(model.encode_images([Image.open(p) for p in paths]), pipeline, atol=1e-6)
    assert torch.allclose(model.encode_images(model.pixels(paths)), pipeline, atol=1e-6)
    # Zero-shot probabilities: softmax over classes of the temperature-scaled cosine similarity.
    classes = {"A": ["pleural effusion"], "B": ["enlarged heart"], "C": ["clear lungs"]}
    text = torch.nn.functional.normalize(torch.stack([model.encode_texts(v)[0] for v in classes.values()]), dim=-1)
    expected = (float(model.network.scale().detach()) * pipeline @ text.T).softmax(dim=-1)
    assert torch.allclose(model.zeroshot(paths, classes), expected, atol=1e-5)


def test_an_unreadable_input_is_one_clear_error(demo_layout: Path) -> None:
    model = load_model(demo_layout / "runs/demo/pretrain/model.pt")
    with pytest.raises(Exception, match="cannot read an image from dict"):
        model.encode_images([{"not": "an image"}])
