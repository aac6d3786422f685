"""A new user's first hour: every path and option is used or refused, evaluations are
tied to the weights they measured, the CLI explains itself. Real subprocesses on tiny data."""

import json
import os
import subprocess
from pathlib import Path
import sys

import numpy as np
import pytest
from PIL import Image

ENV = dict(os.environ, OMP_NUM_THREADS="1")
TINY = ["--epochs", "1", "--batch-size", "50", "--latent-dim", "2", "--set", "model.hidden=[16]", "--no-progress"]


def vaekit(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "vaekit", *map(str, args)], capture_output=True, text=True,
                          env=env or ENV, cwd=cwd, timeout=300)


def one_line_error(r, message):
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert message in lines[0], lines[0]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("hour") / "run"
    r = vaekit("train", "--data", "digits", *TINY, "--out", out)
    assert r.returncode == 0, r.stderr
    return out


def test_a_data_path_alone_is_used_not_ignored(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (120, 6, 6), dtype=np.uint8)
    np.save(tmp_path / "mine.npy", x)
    r = vaekit("train", "--data-path", "mine.npy", *TINY, "--out", "R", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    cfg = json.loads((tmp_path / "R" / "config.json").read_text())
    assert cfg["data"]["source"] == "arrays" and cfg["data"]["path"].endswith("mine.npy")
    import vaekit as vk

    assert vk.load(tmp_path / "R").shape == (1, 6, 6)  # trained on the file, not on MNIST


@pytest.mark.parametrize("args, message", [
    (["--data", "digits", "--data-path", "/nonexistent.npy"], "data path /nonexistent.npy does not exist"),
    (["--data-path", "/nonexistent.npy"], "data path /nonexistent.npy does not exist"),
    (["--data", "mnist", "--data-path", "imgs"], "--data mnist reads no file"),
    (["--data", "arrays", "--data-path", "imgs"], "--data arrays cannot read imgs: it is folder data"),
    (["--data", "folder"], "--data folder needs a path"),
    (["--data", "notes.txt"], "a '.txt' file is no data vaekit reads"),
    (["--epoch", "3"], "did you mean --epochs?"),
    (["--device", "gpu"], "'gpu' is not a device"),
])
def test_train_refuses_what_it_would_ignore(args, message, tmp_path):
    (tmp_path / "imgs" / "a").mkdir(parents=True)
    Image.new("L", (8, 8)).save(tmp_path / "imgs" / "a" / "x.png")
    (tmp_path / "notes.txt").write_text("hi")
    one_line_error(vaekit("train", *args, *TINY, "--out", "R", cwd=tmp_path), message)
    assert not (tmp_path / "R").exists()


def test_data_folder_path_is_inferred(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(30):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / "imgs" / cls / f"{i}.png")
    r = vaekit("train", "--data", "imgs", *TINY, "--batch-size", "20", "--out", "R", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "R" / "config.json").read_text())["data"]["source"] == "folder"


@pytest.mark.parametrize("command", ["evaluate", "sample", "reconstruct", "plot"])
@pytest.mark.parametrize("device", ["cuda", "gpu"])
def test_every_command_checks_the_device(command, device, digits_run):
    import torch

    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("a CUDA device is present: cuda is valid here")
    one_line_error(vaekit(command, digits_run, "--device", device), "argument --device")


def test_help_lists_defaults_and_models_and_threads():
    r = vaekit("train", "--help")
    assert r.returncode == 0 and "--threads" in r.stdout and "(train.epochs)" in r.stdout
    r = vaekit("evaluate", "--help")
    assert "(default: 1000)" in r.stdout  # --k's default is shown
    from vaekit.models import MODELS

    r = vaekit("models")
    assert [line.split()[0] for line in r.stdout.splitlines()] == sorted(MODELS)


def test_threads_flag_reaches_the_config(tmp_path):
    r = vaekit("train", "--data", "digits", *TINY, "--threads", "1", "--out", tmp_path / "R")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "R" / "config.json").read_text())["train"]["threads"] == 1


def test_outputs_go_into_the_run_and_never_overwrite(digits_run, tmp_path):
    r = vaekit("sample", digits_run, "-n", "4", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (digits_run / "outputs" / "samples.png").is_file() and not list(tmp_path.iterdir())
    one_line_error(vaekit("sample", digits_run, "-n", "4"), "already exists; pass --overwrite")
    assert vaekit("sample", digits_run, "-n", "4", "--overwrite").returncode == 0
    one_line_error(vaekit("sample", digits_run, "-o", tmp_path / "no" / "dir" / "x.png"), "does not exist")
    assert not (tmp_path / "no").exists()
    one_line_error(vaekit("reconstruct", digits_run, "-o", tmp_path / "no" / "r.png"), "does not exist")


@pytest.mark.parametrize("n, cols, rows", [(5, 5, 2), (12, 8, 4), (1, 1, 2)])
def test_reconstruct_shows_every_pair(n, cols, rows, digits_run, tmp_path):
    out = tmp_path / "r.png"
    r = vaekit("reconstruct", digits_run, "-n", n, "-o", out)
    assert r.returncode == 0, r.stderr
    img = np.asarray(Image.open(out))
    tile = 2 * (8 + 2)  # 8-px digits, 2-px gaps, scaled 2x
    assert img.shape[:2] == (rows * tile + 4, cols * tile + 4)
    # Every original tile has ink (not blank white): rows 0, 2, ... hold the n originals.
    for i in range(n):
        r0, c0 = divmod(i, cols)
        t = img[4 + 2 * r0 * tile: 4 + 2 * r0 * tile + 16, 4 + c0 * tile: 4 + c0 * tile + 16]
        assert t.min() < 200, i


def test_evaluations_are_keyed_and_a_stale_one_is_never_shown_as_current(digits_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    full = vaekit("evaluate", run, "--k", "5", "--json", "--no-progress")
    quick = vaekit("evaluate", run, "--k", "3", "--limit", "20", "--json", "--no-progress")
    assert full.returncode == 0 and quick.returncode == 0, full.stderr + quick.stderr
    files = sorted(p.name for p in (run / "evaluations").iterdir())
    assert files == ["test-n20-k3-L1-seed0.json", "test-n300-k5-L1-seed0.json"]  # the quick one replaced nothing
    first = json.loads(full.stdout)
    assert vaekit("report", run, "--no-plots").returncode == 0
    page = (run / "report.html").read_text()
    assert f"{first['nll']['value']:.2f}" in page and "stale" not in page
    r = vaekit("train", "--out", run, "--resume", "--epochs", "2", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert vaekit("report", run, "--no-plots").returncode == 0
    page = (run / "report.html").read_text()
    assert "No evaluation of the current weights" in page and "2 stale evaluation(s)" in page
    again = json.loads(vaekit("evaluate", run, "--k", "5", "--json", "--no-progress").stdout)
    assert again["weights"]["id"] != first["weights"]["id"] and again["weights"]["epoch"] == 2
    vaekit("report", run, "--no-plots")
    page = (run / "report.html").read_text()
    assert f"{again['nll']['value']:.2f}" in page and "No evaluation of the current weights" not in page


def test_evaluate_prints_progress_lines_without_a_terminal(digits_run):
    env = dict(ENV, VAEKIT_PROGRESS_SECONDS="0")
    r = vaekit("evaluate", digits_run, "--k", "20", "--batch-size", "100", "--json", env=env)
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("IS NLL (k=20): ")]
    assert len(lines) >= 2 and "/6000" in lines[-1] and "ETA" in lines[0]


def test_a_conditional_model_says_which_bound_it_reports(tmp_path):
    r = vaekit("train", "--model", "cvae", "--data", "digits", *TINY, "--out", tmp_path / "c")
    assert r.returncode == 0, r.stderr
    out = json.loads(vaekit("evaluate", tmp_path / "c", "--k", "4", "--json", "--no-progress").stdout)
    last = json.loads((tmp_path / "c" / "metrics.jsonl").read_text().splitlines()[-1])
    assert out["elbo"]["conditional"] and "log p(x|y)" in out["elbo"]["bound"]
    assert out["elbo"]["loss"] == pytest.approx(last["test_loss"], rel=1e-6)  # what training logged
    assert "log p(x|y), given the labels" in last["test_what"] and "mean over 300 examples" in last["test_what"]
    assert "label-marginal" in out["elbo_marginal"]["bound"]
    assert out["elbo_marginal"]["neg_elbo"] != pytest.approx(out["elbo"]["neg_elbo"])
    assert "labels summed out" in out["nll"]["estimate"]
    table = vaekit("evaluate", tmp_path / "c", "--k", "4", "--no-progress").stdout
    assert "negative ELBO of log p(x|y)" in table and "negative ELBO of log p(x)" in table


def test_folder_class_names_are_saved_with_the_run_and_the_codes(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("1", "10", "2"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(20):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / "imgs" / cls / f"{i}.png")
    r = vaekit("train", "--data", "imgs", *TINY, "--batch-size", "20", "--out", "R", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "R" / "data.json").read_text())["classes"] == ["1", "2", "10"]  # natural order
    r = vaekit("embed", "R", "-o", "codes.npz", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    codes = np.load(tmp_path / "codes.npz")
    assert list(codes["classes"]) == ["1", "2", "10"] and set(codes["y"]) <= {0, 1, 2}


def test_the_digits_preset_shows_a_vae_working_in_seconds(tmp_path):
    """The quick-run preset the README uses: the code carries information (the default preset on
    digits left KL at 1.6 nats, grey blobs) and reconstructions beat the per-pixel mean."""
    import time

    import torch

    import vaekit as vk

    cfg = vk.resolve("digits", overrides=[{"train": {"progress": False, "tensorboard": False, "threads": 1}}])
    start = time.perf_counter()
    run = vk.train(cfg, tmp_path / "d", log=lambda s: None)
    seconds = time.perf_counter() - start
    last = run.metrics[-1]
    assert last["test_kl"] > 8, last  # ~12 nats measured: the code is used
    data = vk.data.open_data(cfg.data)
    x = data.test.x
    err = ((run.model.reconstruct(x) - x) ** 2).mean()
    baseline = ((data.train.x.mean(0, keepdim=True) - x) ** 2).mean()
    assert err < 0.25 * baseline, (float(err), float(baseline))
    assert seconds < 120  # a few seconds on an idle core; generous for a loaded CI machine
    torch.manual_seed(0)
    assert run.model.sample(4).shape == (4, 1, 8, 8)


def test_skipped_bad_files_are_listed_in_the_run(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "imgs").mkdir()
    for i in range(40):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / "imgs" / f"{i}.png")
    (tmp_path / "imgs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    r = vaekit("train", "--data", "imgs", *TINY, "--batch-size", "20", "--out", "R", cwd=tmp_path)
    assert r.returncode == 2 and "broken.png" in r.stderr
    r = vaekit("train", "--data", "imgs", *TINY, "--batch-size", "20", "--set", "data.skip_bad=true", "--out", "R",
               cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    skipped = json.loads((tmp_path / "R" / "data.json").read_text())["skipped"]
    assert [Path(s["path"]).name for s in skipped] == ["broken.png"] and skipped[0]["why"]
