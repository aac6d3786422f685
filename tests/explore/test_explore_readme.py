"""The explorer numbers of docs/results.md are the committed benchmark's (benchmarks/results/explore.json)."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_docs_latency_table_and_sizes_equal_the_json():
    spec = importlib.util.spec_from_file_location("bench_explore", ROOT / "benchmarks" / "bench_explore.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = json.loads((ROOT / "benchmarks" / "results" / "explore.json").read_text())
    assert [r["preset"] for r in result["rows"]] == ["pytorch-example", "keras-conv"]
    assert all(r[k]["n"] == result["settings"]["moves"] for r in result["rows"] for k in ("served", "exported"))
    page = (ROOT / "docs" / "results.md").read_text()
    assert bench.readme_table(result) in page
    assert (ROOT / "docs" / "images" / "explore.png").is_file()
