"""Tiny trained runs and the headless browser shared by the explorer tests (a helper module, not a
conftest: the root conftest is imported as ``conftest`` and a second one would shadow it)."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
import threading
from pathlib import Path

import numpy as np
import torch

import vaekit
from vaekit.explore.api import Explorer
from vaekit.explore.server import ExploreServer

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

# name -> config sections: one epoch on scikit-learn's 8x8 digits, seconds each.
RUNS = {
    "mlp2": {"model": {"latent_dim": 2, "hidden": [64]}},
    "conv3": {"model": {"arch": "conv", "latent_dim": 3, "channels": [4, 8], "dense": [16]}},
    "cvae": {"model": {"name": "cvae", "latent_dim": 2, "hidden": [32]}},
    "ae": {"model": {"name": "ae", "latent_dim": 2, "hidden": [32], "likelihood": "gaussian"}},
    # RGB 16x16 squares (tests/viz/vizkit.rgb_npz), a conv decoder with a learned per-pixel variance
    "rgb": {"data": {"source": "arrays"}, "model": {"arch": "conv", "latent_dim": 2, "channels": [4, 8],
                                                   "dense": [16], "likelihood": "gaussian-learned"}},
    # a table: two numeric columns and a categorical one (vaekit.data.tabular), the mixed likelihood
    "table": {"data": {"source": "csv"}, "model": {"latent_dim": 2, "hidden": [16]}},
}


def table_csv(root: Path) -> Path:
    """300 rows: height, weight ~ 0.4 height, and a colour that follows the height's third."""
    rng = np.random.default_rng(0)
    h = rng.normal(170, 10, 300)
    w = 0.4 * h + rng.normal(0, 3, 300)
    colour = np.where(h < 165, "blue", np.where(h < 175, "green", "red"))
    path = root / "table.csv"
    path.write_text("height,weight,colour\n" + "".join(f"{a:.1f},{b:.1f},{c}\n" for a, b, c in zip(h, w, colour)))
    return path


@functools.lru_cache(maxsize=None)
def _root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="vaekit-explore-tests-"))
    atexit.register(shutil.rmtree, root, True)
    return root


@functools.lru_cache(maxsize=None)
def trained(name: str) -> Path:
    """The run folder of RUNS[name], trained once per test session."""
    over = [{"data": {"source": "digits"}, "train": {"epochs": 1, "batch_size": 64, "progress": False,
                                                      "tensorboard": False, "seed": 0}}, RUNS[name]]
    out = _root() / name
    if name == "rgb":
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "viz"))
        from vizkit import rgb_npz

        over.append({"data": {"path": str(rgb_npz(_root()))}})
    if name == "table":
        over.append({"data": {"path": str(table_csv(_root()))}})
    vaekit.train(vaekit.resolve(overrides=over), out, log=lambda s: None)
    return out


@functools.lru_cache(maxsize=None)
def explorer(name: str) -> Explorer:
    return Explorer.open(trained(name))


@functools.lru_cache(maxsize=None)
def server(name: str) -> ExploreServer:
    """A live server for RUNS[name] on a free loopback port, in a daemon thread."""
    srv = ExploreServer(explorer(name), "127.0.0.1", 0)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def canvas_pixels(page, selector: str) -> np.ndarray:  # noqa: ANN001 - a playwright Page
    """A canvas's RGBA pixels read back from the page: (H, W, 4) uint8."""
    w, h, data = page.evaluate(
        """(sel) => { const c = document.querySelector(sel);
        return [c.width, c.height, Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)]; }""",
        selector)
    return np.asarray(data, dtype=np.uint8).reshape(h, w, 4)


def expected_pixels(images: torch.Tensor) -> np.ndarray:
    """What the page shows for model outputs (1, C, H, W) in [0, 1]: round(255 v) per pixel, (H, W, 3)."""
    x = images[0].clamp(0, 1).numpy() * 255
    x = np.repeat(x, 3, 0) if x.shape[0] == 1 else x
    return np.floor(x + 0.5).transpose(1, 2, 0)  # JS Math.round: halves round up
