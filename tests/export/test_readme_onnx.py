"""The guide's "Take a model anywhere" (docs/guide/export.md) and its results (docs/results.md): the ONNX export of a shipped model from the CLI, the
numpy-only snippet (run with torch made unimportable), and the throughput table against its JSON."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import vaekit
from vaekit import cli

pytest.importorskip("onnxruntime")
ROOT = Path(__file__).parents[2]
SECTION = (ROOT / "docs" / "guide" / "export.md").read_text()
RESULTS = (ROOT / "docs" / "results.md").read_text()


def test_export_of_a_shipped_model_verifies_and_the_numpy_snippet_runs_without_torch(tmp_path, capsys):
    assert cli.main(["export", "pretrained:keras-conv", "--format", "onnx", "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    diff = float(re.search(r"on 256 mnist test inputs: max abs diff (\S+) <= 0.0001", out)[1])
    assert diff <= 1e-4
    snippet = re.search(r"```python\n(.*?)```", SECTION, re.S)[1]
    assert len(snippet.strip().splitlines()) <= 20
    code = ("import sys\nsys.modules['torch'] = None  # the snippet must not need torch\n" + snippet
            + "np.savez('result.npz', z=z, samples=samples, code=code, recon=recon)\n")
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, timeout=120)
    r = np.load(tmp_path / "result.npz")
    model = vaekit.load("pretrained:keras-conv")
    assert r["samples"].shape == (16, 1, 28, 28) and r["code"].shape == (16, 2)
    assert 0 <= r["samples"].min() and r["samples"].max() <= 1
    t = {k: torch.from_numpy(r[k]) for k in r.files}
    assert float((model.decode(t["z"]) - t["samples"]).abs().max()) <= 1e-4
    assert float((model.encode(t["samples"]) - t["code"]).abs().max()) <= 1e-4
    assert float((model.decode(t["code"]) - t["recon"]).abs().max()) <= 1e-4


def test_the_docs_throughput_table_is_the_benchmark_json():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_onnx import readme_table

    results = json.loads((ROOT / "benchmarks" / "results" / "onnx.json").read_text())
    table = re.search(r"<!-- onnx-table[^>]*-->\n(.*?)\n<!-- /onnx-table -->", RESULTS, re.S)[1]
    assert table == readme_table(results)
    for by in results["decode"].values():
        for r in by.values():
            assert r["max_abs_diff"] <= 1e-4 and len(r["pytorch"]["seconds"]) == len(r["onnxruntime"]["seconds"])


def test_the_cvae_snippet_feeds_the_label_without_torch(tmp_path):
    from vaekit.export.onnx import export_onnx
    from vaekit.models import build

    cfg = vaekit.resolve("pytorch-example", overrides=[{
        "data": {"source": "digits"}, "model": {"name": "cvae", "hidden": [16], "latent_dim": 3}}])
    torch.manual_seed(0)
    model = build(cfg, (1, 8, 8)).eval()
    export_onnx(vaekit.Run(dir=tmp_path, config=cfg, model=model), tmp_path / "out", log=lambda s: None)
    snippet = re.findall(r"```python\n(.*?)```", SECTION, re.S)[1]
    code = ("import sys\nsys.modules['torch'] = None  # the snippet must not need torch\n" + snippet
            + "np.savez('result.npz', z=z, y=y, sevens=sevens, code=code)\n")
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, timeout=120)
    r = {k: torch.from_numpy(v) for k, v in np.load(tmp_path / "result.npz").items()}
    assert r["y"].shape == (16, 10) and (r["y"].argmax(1) == 7).all() and r["sevens"].shape == (16, 1, 8, 8)
    assert float((model.decode(r["z"], 7) - r["sevens"]).abs().max()) <= 1e-4
    assert float((model.encode(r["sevens"], 7) - r["code"]).abs().max()) <= 1e-4
