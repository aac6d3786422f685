"""The CLI end to end, in real subprocesses, on a small MNIST subset."""

import json
import os
import subprocess
import sys

import pytest
from PIL import Image

ENV = dict(os.environ, OMP_NUM_THREADS="1")


def vaekit(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "vaekit", *map(str, args)], capture_output=True, text=True,
                          env=ENV, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    r = vaekit("train", "--preset", "pytorch-example", "--limit", "600", "--set", "data.test_limit=100", "--epochs", "2", "--batch-size", "100",
               "--latent-dim", "8", "--set", "model.hidden=[64]", "--no-progress", "--out", out)
    assert r.returncode == 0, r.stderr
    assert f"wrote {out}" in r.stdout
    return out


def test_train_writes_a_run(run_dir):
    assert (run_dir / "model.safetensors").is_file() and (run_dir / "checkpoints" / "last.safetensors").is_file()
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["model"]["latent_dim"] == 8 and cfg["model"]["hidden"] == [64] and cfg["data"]["limit"] == 600
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 2


def test_evaluate_prints_json(run_dir):
    r = vaekit("evaluate", run_dir, "--json", "--k", "5", "--no-progress")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["split"] == "test" and out["n"] == 100 and out["nll"]["k"] == 5
    e = out["elbo"]
    assert e["loss"] == pytest.approx(e["recon"] + e["kl"])
    last = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])
    assert e["loss"] == pytest.approx(last["test_loss"], rel=1e-6)  # same seed, same sampled z
    assert out["meaning"]["kind"] == "bce"  # Bernoulli on continuous pixels: a loss, not an NLL
    saved = run_dir / "evaluations" / "test-n100-k5-L1-seed0.json"  # keyed by its settings
    assert json.loads(saved.read_text()) == out and out["weights"]["epoch"] == 2
    table = vaekit("evaluate", run_dir, "--k", "5", "--limit", "10", "--no-progress")
    assert table.returncode == 0 and "IS NLL (k=5)" in table.stdout and "not a likelihood" in table.stdout


def test_sample_and_reconstruct_write_pngs(run_dir, tmp_path):
    r = vaekit("sample", run_dir, "-n", "16", "-o", tmp_path / "s.png")
    assert r.returncode == 0, r.stderr
    img = Image.open(tmp_path / "s.png")
    assert img.size == (2 * (4 * 30 + 2), 2 * (4 * 30 + 2))  # 4x4 tiles of 28 px + 2 px gaps, scaled 2x
    r = vaekit("reconstruct", run_dir, "-n", "16", "-o", tmp_path / "r.png")
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "r.png").size == (2 * (8 * 30 + 2), 2 * (4 * 30 + 2))


def test_resume_extends_a_run(run_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    r = vaekit("train", "--out", copy, "--resume", "--epochs", "3", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert [json.loads(x)["epoch"] for x in (copy / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--bogus"], "unrecognized arguments: --bogus"),
        (["train", "--preset", "keras_conv"], "did you mean 'keras-conv'"),
        (["train", "--set", "model.latnet_dim=3"], "unknown key 'latnet_dim' (did you mean 'latent_dim'?)"),
        (["train", "--config", "missing.toml"], "config file missing.toml does not exist"),
        (["train", "--data", "folder", "--data-path", "no/such/dir"], "no/such/dir"),
        (["train", "--beta", "-1"], "model.beta: must be >= 0"),
        (["train", "--latent-dim", "0"], "model.latent_dim: must be at least 1"),
        (["train", "--resume"], "--resume needs --out"),
        (["evaluate", "no/such/run"], "run folder no/such/run does not exist"),
        (["sample", "."], "config.json is missing"),
        (["sample", ".", "-n", "-1"], "argument -n: must be at least 1"),
        (["evaluate", ".", "--k", "-5"], "argument --k: must be >= 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path):
    r = vaekit(*args, cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert message in lines[0]
    assert not (tmp_path / "runs").exists()  # nothing half-written


def test_existing_run_needs_overwrite(run_dir):
    r = vaekit("train", "--out", run_dir, "--limit", "100", "--epochs", "1")
    assert r.returncode == 2 and "already holds a run" in r.stderr


def test_help_and_presets():
    r = vaekit("--help")
    assert r.returncode == 0 and "train" in r.stdout and "evaluate" in r.stdout
    r = vaekit("presets")
    assert "keras-conv" in r.stdout and "pytorch-example" in r.stdout


def test_streamed_npy_and_csv_tables_train_from_the_cli(tmp_path):
    """Two data paths end to end: a memory-mapped .npy streamed with --stream, and a CSV
    table (mixed likelihood) trained then scored."""
    import numpy as np

    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.integers(0, 256, (700, 28, 28), dtype=np.uint8))
    out = tmp_path / "streamed"
    r = vaekit("train", "--data", "arrays", "--data-path", tmp_path / "x.npy", "--stream", "--epochs", "1",
               "--batch-size", "100", "--set", "model.hidden=[32]", "--latent-dim", "2", "--no-progress", "--out", out)
    assert r.returncode == 0, r.stderr
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["data"]["stream"] == "on" and (out / "model.safetensors").is_file()
    rows = [f"{a:.3f},{2 * a:.3f},{'red' if a > 0 else 'blue'}" for a in rng.normal(size=300)]
    (tmp_path / "t.csv").write_text("a,b,colour\n" + "\n".join(rows) + "\n")
    table = tmp_path / "table"
    r = vaekit("train", "--data", "csv", "--data-path", tmp_path / "t.csv", "--epochs", "2", "--batch-size", "50",
               "--set", "model.hidden=[16]", "--latent-dim", "2", "--no-progress", "--out", table)
    assert r.returncode == 0, r.stderr
    cfg = json.loads((table / "config.json").read_text())
    assert cfg["model"]["likelihood"] == "mixed" and [c["name"] for c in cfg["model"]["columns"]] == ["a", "b", "colour"]
    r = vaekit("score", table, "--data", tmp_path / "t.csv", "-o", tmp_path / "s.csv")
    assert r.returncode == 0, r.stderr
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0] == "line,score,neg_elbo,recon,kl,observed" and len(lines) == 301
