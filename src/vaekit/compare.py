"""VAE vs autoencoder vs PCA on the same data, networks and latent size.

``compare`` trains a VAE and a plain autoencoder ("ae") from one config (or loads existing run
folders), fits PCA with as many components as the latent size, and reports on the test split:
reconstruction error (MSE, BCE), a linear probe and kNN accuracy on the codes, and, for 28x28 grey
10-class data, FID and Inception Score of generated images with a "real data" reference row.
Results go to ``comparison.json`` and ``comparison.md`` in the output folder.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor

from .checkpoint import atomic_write_text
from .config import Config, ModelConfig
from .data import Split, open_data
from .embed import batched
from .errors import VaekitError
from .metrics import generation as gen
from .metrics.probes import knn_accuracy, linear_probe, reconstruction_errors


class PCABaseline:
    """PCA with ``latent_dim`` components, shaped like a model: encode, decode, reconstruct, sample.

    The codes are the principal-component scores z = W^T (x - m) (N, D); ``sample`` draws
    z ~ N(0, diag(lambda)) with the component variances lambda and decodes m + W z: the
    Gaussian that probabilistic PCA (Tipping & Bishop 1999) fits, without its isotropic noise.
    """

    name = "pca"

    def __init__(self, latent_dim: int) -> None:
        self.latent_dim = latent_dim
        self.shape: tuple[int, ...] = ()

    def fit(self, x: Tensor) -> "PCABaseline":
        """Fit on training data x (N, *S): the top eigenvectors of the sample covariance.

        Computed in float64 with torch (covariance (P, P), then ``eigh``), which honours the torch
        thread setting; the SVD route through a multi-threaded BLAS can stall when other processes
        hold the cores.
        """
        flat = x.detach().cpu().double().flatten(1)  # (N, P)
        n, p = flat.shape
        if self.latent_dim > min(n - 1, p):
            raise VaekitError(
                f"PCA: latent size {self.latent_dim} exceeds min(examples - 1, features) = {min(n - 1, p)}; "
                "use a smaller --latent-dim or more data"
            )
        self.mean = flat.mean(0)  # (P,)
        centred = flat - self.mean
        evals, evecs = torch.linalg.eigh(centred.T @ centred / (n - 1))  # ascending, (P,), (P, P)
        top = torch.argsort(evals, descending=True)[: self.latent_dim]
        self.variances = evals[top].clamp_min(0)  # (D,) variance of each component's scores
        w = evecs[:, top]  # (P, D) orthonormal columns
        self.components = w * torch.sign(w[w.abs().argmax(0), torch.arange(self.latent_dim)])  # fix signs
        self.shape = tuple(x.shape[1:])
        return self

    def encode(self, x: Tensor) -> Tensor:
        """Principal-component scores (N, D) = (x - m) W."""
        return ((x.detach().cpu().double().flatten(1) - self.mean) @ self.components).float()

    def decode(self, z: Tensor) -> Tensor:
        """m + W z, reshaped to the data shape (N, *S); not clipped to [0, 1]."""
        out = z.detach().cpu().double() @ self.components.T + self.mean  # (N, P)
        return out.float().view(-1, *self.shape)

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))

    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        """``n`` draws from the Gaussian in code space, decoded and clipped to [0, 1] (n, *S)."""
        std = self.variances.sqrt()  # (D,)
        return self.decode(temperature * std * torch.randn(n, self.latent_dim, dtype=torch.float64)).clamp(0, 1)


def evaluate_codes(model: Any, train: Split, test: Split, *, k: int = 5) -> dict[str, float | None]:
    """Test reconstruction errors plus linear-probe and kNN accuracy of ``model.encode`` codes."""
    row: dict[str, float | None] = dict(reconstruction_errors(test.x, batched(model.reconstruct, test.x)))
    if train.y is None or test.y is None:
        return {**row, "probe": None, "knn": None}
    z_train, z_test = batched(model.encode, train.x), batched(model.encode, test.x)  # (N, D) each
    row["probe"] = linear_probe(z_train, train.y, z_test, test.y)
    row["knn"] = knn_accuracy(z_train, train.y, z_test, test.y, k=k)
    return row


def _generate(model: Any, n: int, seed: int) -> Tensor:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return torch.cat([model.sample(min(1000, n - i)).cpu() for i in range(0, n, 1000)])


def _train_models(cfg: Config, out: Path, overwrite: bool, log: Callable[[str], None]) -> dict[str, Any]:
    from .train import train

    from .models import MODELS

    models, defaults = {}, ModelConfig()
    for name in ("vae", "ae"):
        # The keys this family does not read go back to their defaults (e.g. beta: the VAE's, not the ae's).
        unread = {key: getattr(defaults, key) for key in {"beta", "kl", "samples"} - MODELS[name].reads}
        c = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, name=name, **unread))
        log(f"training {name} -> {out / name}")
        models[name] = train(c, out / name, overwrite=overwrite, log=log).model
    return models


def _load_models(runs: list[Path]) -> tuple[dict[str, Any], Config]:
    from .run import load_run

    loaded = [load_run(r) for r in runs]
    first = loaded[0].config
    for r in loaded[1:]:
        if r.config.data != first.data:
            raise VaekitError(f"--runs: {r.dir} was trained on other data than {loaded[0].dir}; compare like with like")
    models: dict[str, Any] = {}
    for r in loaded:
        label = r.config.model.name if r.config.model.name not in models else f"{r.config.model.name} ({r.dir.name})"
        models[label] = r.model
    return models, first


def compare(
    cfg: Config | None = None,
    out: str | Path = "runs/compare",
    *,
    runs: list[str | Path] | None = None,
    k: int = 5,
    n_samples: int = 10000,
    seed: int = 0,
    overwrite: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train (from ``cfg``) or load (``runs``) the models, add PCA, score them all; write the report."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    if k < 1 or n_samples < 2:
        raise VaekitError(f"compare: need k >= 1 and at least 2 samples for FID, got k={k}, n_samples={n_samples}")
    out = Path(out)
    if runs:
        models, cfg = _load_models([Path(r) for r in runs])
    elif cfg is None:
        raise VaekitError("compare: give a config to train from or --runs RUN [RUN ...]")
    else:
        models = _train_models(cfg, out, overwrite, log)
    if cfg.train.threads:  # the thread budget of training holds for the scoring too (torch, BLAS)
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(cfg.train.threads)
        threadpool_limits(limits=cfg.train.threads)
    data = open_data(cfg.data)
    train, test = data.train, data.pick_split()[1]
    latent = cfg.model.latent_dim
    models["pca"] = PCABaseline(latent).fit(train.x)
    why_not = gen.supports(data.shape, len(data.classes) if data.classes else None)
    ref = gen.Reference(test.x) if why_not is None else None
    rows = []
    for name, model in models.items():
        log(f"scoring {name}")
        row: dict[str, Any] = {"model": name, **evaluate_codes(model, train, test, k=k)}
        if ref is not None:
            scores = ref.score(_generate(model, n_samples, seed))
            row.update({"fid": scores["fid"], "is": scores["is"]})
        rows.append(row)
    notes = [f"data {data.name}: {len(train)} train / {len(test)} test examples; latent size {latent}; k = {k}"]
    if ref is not None:
        # The reference: real training images (what a perfect generator of the training data
        # would produce), as many as the generated sets, against the test set.
        idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n_samples]
        real = ref.score(train.x[idx])
        rows.append({"model": "real data", "fid": real["fid"], "is": real["is"]})
        notes.append(f"FID: {n_samples} generated images per model ({len(idx)} real training images for the "
                     f"reference row) vs the {len(test)} test images, in the penultimate features of the "
                     "shipped MNIST classifier; IS from its class probabilities")
    else:
        notes.append(f"no FID / IS: {why_not}")
    result = {"config": cfg.to_dict(), "rows": rows, "notes": notes}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "comparison.json", json.dumps(result, indent=2))
    atomic_write_text(out / "comparison.md", markdown(result))
    return result


COLUMNS = [("mse", "MSE / image", 2), ("mse_pixel", "MSE / pixel", 4), ("bce", "BCE / image", 2),
           ("probe", "linear probe", 4), ("knn", "kNN acc.", 4), ("fid", "FID", 2), ("is", "IS", 2)]


def markdown(result: dict[str, Any]) -> str:
    """The comparison as a Markdown table with notes below it."""
    lines = ["| model | " + " | ".join(title for _, title, _ in COLUMNS) + " |",
             "|---|" + "---:|" * len(COLUMNS)]
    for row in result["rows"]:
        cells = ["—" if row.get(key) is None else f"{row[key]:.{d}f}" for key, _, d in COLUMNS]
        lines.append(f"| {row['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines + [""] + [f"- {n}" for n in result["notes"]]) + "\n"


__all__ = ["PCABaseline", "compare", "evaluate_codes", "markdown"]
