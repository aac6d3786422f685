"""The HTML report: self-contained, escaped, robust to odd evaluation files, and rendered by a real
browser (headless Chromium) with every image loaded. Also the ``plot`` and ``report`` commands."""

import base64
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vaekit
from vaekit.cli import main
from vaekit.viz.catalog import PLOTS
from vaekit.viz.report import render_report, render_value, write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A 2-epoch digits VAE with a 2-D latent, every plot drawn by ``vaekit plot``, and an evaluation."""
    out = tmp_path_factory.mktemp("report") / "run"
    over = {"data": {"source": "digits"}, "model": {"latent_dim": 2, "hidden": [32]},
            "train": {"epochs": 2, "batch_size": 128, "progress": False, "tensorboard": False}}
    vaekit.train(vaekit.resolve(overrides=[over]), out, log=lambda s: None)
    assert main(["plot", str(out), "--steps", "8"]) == 0
    from vaekit.evaluate import evaluate_run

    report = evaluate_run(out, k=5, limit=50, progress=False, save=False)
    report["run"] = "<script>alert(1)</script> x<y & z"  # text from files is escaped
    (out / "evaluations").mkdir()
    (out / "evaluations" / "test-n50-k5-L1-seed0.json").write_text(json.dumps(report))
    return out


def test_plot_command_writes_every_plot_and_reports_input_errors(run_dir, capsys):
    assert sorted(p.stem for p in (run_dir / "plots").glob("*.png")) == sorted(PLOTS)
    assert Image.open(run_dir / "plots" / "manifold.png").size == (900, 900)
    capsys.readouterr()
    assert main(["plot", str(run_dir), "nosuch"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown plot 'nosuch'" in err
    assert main(["plot", str(run_dir), "manifold", "--dims", "0", "2", "-o", str(run_dir / "x")]) == 2
    assert "dimension 2 does not exist" in capsys.readouterr().err


def test_report_is_self_contained_and_escaped(run_dir, capsys):
    assert main(["report", str(run_dir), "--no-plots"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {run_dir / 'report.html'}"
    page = (run_dir / "report.html").read_text()
    assert "<script" not in page and not re.search(r'(src|href)="(?!data:)', page)  # nothing to fetch, no JS
    images = IMG.findall(page)
    plots = sorted((run_dir / "plots").glob("*.png"))
    assert len(images) == len(plots) == len(PLOTS)
    for encoded, name in zip(images, PLOTS):  # catalogue order, each image byte-identical to its file
        raw = base64.b64decode(encoded)
        assert raw == (run_dir / "plots" / f"{name}.png").read_bytes(), name
        assert Image.open(io.BytesIO(raw)).size[0] > 0
    assert "&lt;script&gt;alert(1)&lt;/script&gt; x&lt;y &amp; z" in page
    e = json.loads((run_dir / "evaluations" / "test-n50-k5-L1-seed0.json").read_text())
    assert f"{e['elbo']['neg_elbo']:.2f} nats" in page and "IS NLL (k = 5)" in page  # headline, with units
    assert page.count("<rect ") == 2 and "KL per latent dimension in nats" in page  # KL bars for d = 2
    assert "stale" not in page  # evaluated on the current weights
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert f"{rows[-1]['test_loss']:.2f}" in page and "latent_dim" in page


def test_report_survives_broken_inputs(tmp_path, run_dir):
    run = tmp_path / "copy"
    shutil.copytree(run_dir, run, ignore=shutil.ignore_patterns("plots", "report.html"))
    (run / "evaluations" / "test-n9-k1-L1-seed0.json").write_text("{not json")
    (run / "plots").mkdir()
    (run / "plots" / "extra.png").write_bytes(b"not a png")
    (run / "progress").mkdir()
    shutil.copy(run / "samples.png", run / "progress" / "samples_epoch001.png")
    page = render_report(run)
    assert "test-n9-k1-L1-seed0.json could not be read" in page and "extra.png could not be read" in page
    # The run's own samples.png and reconstructions.png, then the progress snapshot.
    assert len(IMG.findall(page)) == 3 and "1 snapshot during training" in page
    assert render_value([]) == "[]" and "(empty)" in render_value({})
    assert render_value(1.0) == "1" and render_value(0.00012) == "0.00012" and render_value(158.987) == "158.99"
    assert render_value(float("nan")) == "nan" and render_value(list(range(60))).endswith("10 more]")
    with pytest.raises(vaekit.VaekitError, match="not a vaekit run folder"):
        write_report(tmp_path / "plots")


def test_report_command_draws_only_the_missing_plots(tmp_path, run_dir, capsys):
    run = tmp_path / "copy"
    shutil.copytree(run_dir, run, ignore=shutil.ignore_patterns("report.html"))
    kept = {p.name: p.stat().st_mtime_ns for p in (run / "plots").glob("*.png")}
    for name in ("kl", "traversal"):
        (run / "plots" / f"{name}.png").unlink()
        del kept[f"{name}.png"]
    assert main(["report", str(run), "-o", str(tmp_path / "r.html")]) == 0
    assert sorted(p.stem for p in (run / "plots").glob("*.png")) == sorted(PLOTS)
    assert {p.name: p.stat().st_mtime_ns for p in (run / "plots").glob("*.png") if p.name in kept} == kept
    assert len(IMG.findall((tmp_path / "r.html").read_text())) == len(PLOTS)


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(tmp_path, run_dir):
    page = render_report(run_dir)
    expected = [Image.open(io.BytesIO(base64.b64decode(b))).size for b in IMG.findall(page)]
    # A probe, added to a copy only (the report itself has no JS): record each image's decoded size.
    probe = ('<script>addEventListener("load",()=>{const p=document.createElement("pre");p.id="probe";'
             'p.textContent=JSON.stringify([...document.images].map(i=>[i.complete,i.naturalWidth,'
             'i.naturalHeight]));document.body.appendChild(p)})</script>')
    probed = tmp_path / "probe.html"
    probed.write_text(page.replace("</body>", probe + "</body>"))
    r = _chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", probed.as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', r.stdout)
    assert found, r.stderr[-2000:]
    loaded = json.loads(found.group(1))
    assert [(w, h) for _, w, h in loaded] == expected and all(done for done, _, _ in loaded)
    # The screenshot of the real page shows text and pictures, not a blank window.
    (tmp_path / "report.html").write_text(page)
    shot = tmp_path / "shot.png"
    r = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,3000", (tmp_path / "report.html").as_uri())
    assert shot.is_file(), r.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (3000, 1200) and pixels.std() > 10
    assert (pixels < 128).mean() > 0.05  # dark pixels: text, digit images, the manifold (~15% here)
