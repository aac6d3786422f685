"""The speed table of docs/results.md is what benchmarks/tables.py makes from benchmarks/results/*.json."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def tables():
    spec = importlib.util.spec_from_file_location("tables", ROOT / "benchmarks" / "tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_docs_speed_table_matches_the_committed_json():
    t = tables()
    assert t.readme_table((ROOT / "docs" / "results.md").read_text()) == t.render(), (
        "docs/results.md's speed table differs from benchmarks/results/*.json: run python benchmarks/tables.py --write")


def test_the_table_shows_the_ratio_of_medians_of_an_alternating_result(tmp_path):
    summary = {
        "vaekit": {"seconds": {"median": 20.0, "best": 19.0, "worst": 22.0}, "loss": {"mean": 165.0, "sd": 1.0}},
        "keras": {"seconds": {"median": 25.0, "best": 24.0, "worst": 27.0}, "loss": {"mean": 166.0, "sd": 2.0},
                  "vaekit_speedup": {"median": 1.25, "range": [1.2, 1.3]}},
    }
    settings = {"threads": 2, "rounds": 2, "epochs": 3, "images": 20000, "machine_before": {"loadavg": [0.5, 0, 0]}}
    (tmp_path / "conv.json").write_text(json.dumps({"method": "alternating", "settings": settings, "summary": summary}))
    table = tables().render(tmp_path)
    row = next(line for line in table.splitlines() if "| 2 | Keras" in line)
    assert row.startswith("| Conv VAE (20k) |")  # the images the run really used
    assert "| 25.00 (24.00–27.00) | 20.00 (19.00–22.00) | **1.25× faster** (1.20–1.30) |" in row
    assert "166.00 ± 2.00 vs 165.00 ± 1.00" in row
    assert "not measured yet" in table  # the files missing from tmp_path


def test_speedup_is_the_ratio_of_medians_with_the_range_over_rounds():
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _common import speedup, summarize

    ours = summarize([{"seconds": [9.0, 2.0, 2.0, 2.2]}, {"seconds": [9.0, 2.4, 2.0, 2.0]}])
    theirs = summarize([{"seconds": [5.0, 3.0, 3.0, 3.3]}, {"seconds": [5.0, 3.0, 3.6, 3.0]}])
    assert ours["median"] == 2.0 and ours["best"] == 2.0 and ours["worst"] == 2.4  # epochs 2..N only
    assert speedup(ours, theirs) == {"median": 1.5, "range": [1.5, 1.5]}
