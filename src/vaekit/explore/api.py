"""What the explorer computes, independent of HTTP: codes, frames, decodes, encodes and scores.

:class:`Explorer` is opened once per run. It holds the model (eval mode), the held-out split
(test, else validation, else training data, as ``vaekit plot`` uses), the codes of its first
``points`` examples, and the reference scores the anomaly view ranks a new image against. The
server (served page) and the exporter (one-file page) both read :meth:`Explorer.info`, so both
pages see the same frame, slider order and reference numbers.

Shapes: ``D`` latent size, ``S`` the data shape ``(C, H, W)`` or ``(D_x,)``, ``P = prod(S)``.
"""

from __future__ import annotations

import base64
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data import Data, Split, binarize, epoch_generator, tabular
from ..errors import VaekitError
from ..metrics.diagnostics import ACTIVE_THRESHOLD
from ..models import Model
from ..viz import latent as L

MAX_BATCH = 64  # codes per decode request: a strip or a sample grid, never a bulk job


def b64_f32(t: Tensor | np.ndarray) -> str:
    """A tensor as base64 of its little-endian float32 bytes (what the page turns into a Float32Array)."""
    a = np.ascontiguousarray(np.asarray(t, dtype="<f4"))
    return base64.b64encode(a.tobytes()).decode("ascii")


def b64_u8(t: Tensor) -> str:
    """Pixels in [0, 1] as base64 of uint8 0..255 (thumbnails: 4x smaller than float32)."""
    a = (t.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return base64.b64encode(a.tobytes()).decode("ascii")


def numbers(flat: Any, count: int, name: str, what: str) -> Tensor:
    """A JSON list of exactly ``count`` numbers -> float32 (count,); anything else is a one-line error."""
    if not isinstance(flat, list) or len(flat) != count:
        raise VaekitError(f"{name} must be a list of {what} numbers")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in flat):
        raise VaekitError(f"{name} must hold numbers only")
    return torch.tensor(flat, dtype=torch.float32)


@dataclass
class Explorer:
    """A run opened for exploring. Use :meth:`open`; every public method is thread-safe."""

    run_dir: Path
    model: Model
    data: Data
    split_name: str
    split: Split  # the first ``points`` examples of the held-out split
    codes: Tensor  # (N, D) deterministic codes of ``split``
    full: Split  # the whole held-out split: any of its examples can be picked
    binarize_seed: int  # data.test_binarize_seed: how held-out data was binarized
    score_samples: int = 8
    scores: Tensor = field(default_factory=lambda: torch.empty(0))  # (N,) sorted reference scores
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, run_dir: str | Path, points: int = 1000, score_samples: int = 8) -> "Explorer":
        from ..data import open_data
        from ..run import load_run

        run = load_run(run_dir)
        data = open_data(run.config.data)
        name, full = data.pick_split()
        split = full.subset(slice(0, points))
        model = run.model
        codes = L.encode_all(model, split.x)
        ex = cls(Path(run_dir), model, data, name, split, codes, full, run.config.data.test_binarize_seed,
                 score_samples)
        ex.scores = ex.score(split.x).sort().values  # negative ELBO, or the AE's reconstruction loss
        return ex

    # ---- what the page needs to draw itself ------------------------------------------------

    @property
    def conditional(self) -> int:
        """K for a model conditioned on labels (the cvae), else 0."""
        # The declared trait, not a probe: an unconditional VAE's num_classes is an error.
        return int(self.model.num_classes) if self.model.conditional else 0

    def frame(self) -> dict[str, Any]:
        """The pad's plane: d = 2 is z itself; d > 2 the codes' principal plane, the rest at the mean."""
        d = self.model.latent_dim
        mean = self.codes.mean(0)
        if d == 2:
            basis = torch.eye(2)
        elif d == 1:
            basis = torch.tensor([[1.0], [0.0]])
        else:
            _, basis = L.principal_directions(self.codes)
        return {"mean": mean.tolist(), "pca": basis.tolist()}

    def slider_order(self) -> dict[str, Any]:
        """Dimensions ordered by KL (VAEs with a N(0, I) prior) or code variance; collapsed ones marked.

        A dimension is collapsed (inactive) when the variance over the data of its code is below
        0.01 (Burda et al. 2015, sec. 5.2), the criterion ``vaekit evaluate`` reports.
        """
        activity = self.codes.var(0) if len(self.codes) > 1 else torch.ones(self.model.latent_dim)
        if L.has_posterior(self.model) and L.has_standard_prior(self.model):
            score, what = L.kl_per_dim(self.model, self.split.x), "KL"
        else:
            score, what = activity, "code variance"
        order = score.argsort(descending=True).tolist()
        return {"order": order, "score": score.tolist(), "score_name": what,
                "collapsed": (activity < ACTIVE_THRESHOLD).tolist()}

    def ranges(self) -> dict[str, Any]:
        """Slider ranges: +-3 prior sd under N(0, I); else the codes' mean +- 3 sd (at least the codes' span)."""
        if L.has_standard_prior(self.model):
            lo, hi = -3 * torch.ones(self.model.latent_dim), 3 * torch.ones(self.model.latent_dim)
        else:
            m, s = self.codes.mean(0), self.codes.std(0).nan_to_num(1.0).clamp_min(1e-3)
            lo, hi = m - 3 * s, m + 3 * s
        lo = torch.minimum(lo, self.codes.min(0).values)
        hi = torch.maximum(hi, self.codes.max(0).values)
        return {"lo": lo.tolist(), "hi": hi.tolist()}

    def columns(self) -> list[dict[str, Any]] | None:
        """A table run's columns, each with the offset ``at`` of its values in a decoded row (the
        layout of :mod:`vaekit.data.tabular`): the page shows decoded rows in the file's own units
        (numeric: ``mean + std * v``; categorical: the most probable level). None for images."""
        cols = self.model.cfg.columns
        if not cols:
            return None
        return [{"name": c["name"], "type": "numeric", "at": at, "mean": c["mean"], "std": c["std"]}
                if c["type"] == "numeric" else
                {"name": c["name"], "type": "categorical", "at": at, "levels": list(c["levels"])}
                for c, at in zip(cols, tabular.offsets(cols))]

    def sampler(self) -> dict[str, Any]:
        """What the exported page draws z from: N(0, I) under a standard prior, else a Gaussian fit
        to the codes (the served page calls ``model.sample`` instead)."""
        d = self.model.latent_dim
        if L.has_standard_prior(self.model) or len(self.codes) <= d:
            return {"mean": [0.0] * d, "tril": torch.eye(d).tolist(), "what": "N(0, I)"}
        c = self.codes.double()
        cov = torch.cov(c.T).reshape(d, d) + 1e-6 * torch.eye(d, dtype=torch.float64)
        return {"mean": c.mean(0).tolist(), "tril": torch.linalg.cholesky(cov).tolist(),
                "what": "a Gaussian fitted to the codes"}

    def info(self, thumbs: int = 48) -> dict[str, Any]:
        """Everything static the page needs, as JSON-able values (codes and pixels as base64)."""
        cfg = self.model.cfg
        y = self.split.y
        n_thumbs = min(thumbs, len(self.split))
        classes = self.data.classes
        return {
            "run": self.run_dir.resolve().name,
            "model": self.model.name,
            "arch": cfg.arch,
            "likelihood": cfg.likelihood,
            "shape": list(self.model.shape),
            "image": len(self.model.shape) == 3,
            "latent_dim": self.model.latent_dim,
            "has_posterior": L.has_posterior(self.model),
            "standard_prior": L.has_standard_prior(self.model),
            "conditional": self.conditional,
            "classes": classes if classes else ([str(i) for i in range(self.conditional)] or None),
            "split": self.split_name,
            "split_size": len(self.full),
            "binarize": self.data.binarize,
            "threshold": self.data.threshold,
            "binarize_seed": self.binarize_seed,
            "points": {"n": len(self.codes), "codes": b64_f32(self.codes),
                       "labels": None if y is None else y.tolist()},
            "frame": self.frame(),
            "sliders": {**self.slider_order(), **self.ranges()},
            "thumbs": {"n": n_thumbs, "pixels": b64_u8(self.split.x[:n_thumbs])},
            "scores": {"sorted": self.scores.tolist(), "samples": self.score_samples,
                       "what": "negative ELBO [nats]" if L.has_posterior(self.model) else "reconstruction loss"},
            "sampler": self.sampler(),
            "columns": self.columns(),
        }

    # ---- computations the page asks for ------------------------------------------------------

    def check_label(self, label: Any) -> int | None:
        """A label for a conditional model (default 0), None for the others; bad values are errors."""
        if not self.conditional:
            return None
        if label is None:
            return 0
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < self.conditional:
            raise VaekitError(f"label must be an integer in 0..{self.conditional - 1}")
        return label

    @staticmethod
    def check_n(n: Any) -> int:
        """How many codes or samples one request may ask for: 1..MAX_BATCH."""
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_BATCH:
            raise VaekitError(f"n must be an integer in 1..{MAX_BATCH}")
        return n

    def check_codes(self, flat: Any, n: Any) -> Tensor:
        """A flat list of n*D finite numbers -> codes (n, D)."""
        d, n = self.model.latent_dim, self.check_n(n)
        z = numbers(flat, n * d, "z", f"n * {d}").view(n, d)
        if not torch.isfinite(z).all() or z.abs().max() > 1e4:
            raise VaekitError("z must be finite numbers of magnitude below 10000")
        return z

    @torch.no_grad()
    def decode(self, z: Tensor, label: int | None = None) -> Tensor:
        """``model.decode(z)`` (n, *S) for codes (n, D); a cvae decodes with ``label``."""
        with self.lock:
            out = self.model.decode(z) if label is None else self.model.decode(z, label)  # type: ignore[call-arg]
        return out.float().contiguous()

    @torch.no_grad()
    def sample(self, n: int, temperature: float, label: int | None, seed: int) -> Tensor:
        """``model.sample`` (n, *S) with its own sampler (prior, ancestral, or fitted code density)."""
        if not (isinstance(temperature, (int, float)) and 0 <= temperature <= 5):
            raise VaekitError("temperature must be a number in 0..5")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise VaekitError("seed must be an integer")
        with self.lock, torch.random.fork_rng():
            torch.manual_seed(seed % (2**63))
            extra = {} if label is None else {"label": label}
            out = self.model.sample(n, float(temperature), **extra)
        return out.float().contiguous()

    @torch.no_grad()
    def score(self, x: Tensor) -> Tensor:
        """Per-example negative ELBO (recon + KL, beta = 1) with ``score_samples`` z draws, seeded: (B,).

        The same estimator for the reference set and for a new image, so the percentile compares
        like with like. For an autoencoder it is the reconstruction loss (its KL is 0).
        """
        out = []
        with torch.random.fork_rng():
            torch.manual_seed(0)
            for i in range(0, len(x), 256):
                t = self.model(x[i : i + 256], None, samples=self.score_samples, reduce=False)
                out.append((t.recon + t.kl).double())
        return torch.cat(out).float()

    def percentile(self, value: float) -> float:
        """Share (%) of the reference examples whose score is at most ``value``."""
        return 100.0 * float((self.scores <= value).sum()) / max(1, len(self.scores))

    def convert(self, x: Tensor) -> Tensor:
        """Pixels (1, *S) in [0, 1] as the run's held-out data: binarized the same way (one seeded
        Bernoulli draw for static/dynamic, ``x > t`` for threshold)."""
        g = epoch_generator(self.binarize_seed, 0)
        return binarize(x, self.data.binarize, self.data.threshold, g)

    @torch.no_grad()
    def analyse(self, x: Tensor, label: int | None = None) -> dict[str, Any]:
        """A new image x (1, *S), already converted: code, spread, reconstruction, score, percentile."""
        y = () if label is None else (torch.tensor([label]),)  # a cvae encodes q(z|x, y)
        with self.lock:
            code = self.model.encode(x, *y)  # (1, D)
            spread = self.model.posterior(x, *y).std if L.has_posterior(self.model) else None  # type: ignore[operator]
            recon = self.model.decode(code, *(() if label is None else (label,)))  # (1, *S)
            value = float(self.score(x)[0])
        return {"code": code[0].tolist(), "spread": None if spread is None else spread[0].tolist(),
                "x": x.flatten().tolist(), "recon": recon.flatten().tolist(),
                "score": value if math.isfinite(value) else None, "percentile": self.percentile(value)}

    def check_pixels(self, flat: Any) -> Tensor:
        """A flat list of P numbers in [0, 1] -> x (1, *S)."""
        p = math.prod(self.model.shape)
        x = numbers(flat, p, "x", f"{p} (the data shape {list(self.model.shape)})")
        if not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1:
            raise VaekitError("x must hold numbers in [0, 1]")
        return x.view(1, *self.model.shape)

    def item(self, i: Any) -> dict[str, Any]:
        """Example ``i`` of the held-out split: its pixels, code and label."""
        full = self.full
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(full):
            raise VaekitError(f"index must be an integer in 0..{len(full) - 1}")
        x = full.x[i : i + 1]
        with self.lock:
            code = self.model.encode(x)
        return {"index": i, "x": x.flatten().tolist(), "code": code[0].tolist(),
                "label": None if full.y is None else int(full.y[i])}


__all__ = ["MAX_BATCH", "Explorer", "b64_f32", "b64_u8"]
