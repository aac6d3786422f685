"""The latent-space arithmetic behind the pictures: codes, grids, paths and per-example scores.

Everything here returns tensors (no drawing), so tests can check the numbers: the manifold's
corner tiles are ``model.decode`` of the corner codes, slerp starts and ends at its endpoints,
a traversal changes one coordinate only.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..models import Model


def has_posterior(model: Model) -> bool:
    """True for models with a posterior q(z|x) (the VAE family); False for e.g. ``ae`` (declared on
    the model class, :attr:`vaekit.models.Model.has_posterior`)."""
    return model.has_posterior


def has_standard_prior(model: Model) -> bool:
    """True when p(z) = N(0, I): then codes live on the prior's scale, and KL splits per dimension
    (declared on the model class, :attr:`vaekit.models.Model.standard_prior`)."""
    return model.standard_prior


def _device(model: Model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def encode_all(model: Model, x: Tensor, batch_size: int = 1024) -> Tensor:
    """Deterministic codes (N, D) of ``x`` (N, *S), batched, on the CPU."""
    dev = _device(model)
    starts = range(0, len(x), batch_size)
    return torch.cat([model.encode(x[i : i + batch_size].to(dev)).cpu() for i in starts])


@torch.no_grad()
def decode_all(model: Model, z: Tensor, batch_size: int = 1024) -> Tensor:
    """E[x|z] for codes (N, D), batched, on the CPU."""
    dev = _device(model)
    starts = range(0, len(z), batch_size)
    return torch.cat([model.decode(z[i : i + batch_size].to(dev)).cpu() for i in starts])


# ---- frames: where in latent space a picture looks ----------------------------------------------


def principal_directions(codes: Tensor, k: int = 2) -> tuple[Tensor, Tensor]:
    """The mean (D,) and the ``k`` leading principal directions (k, D), unit length, of codes (N, D)."""
    c = codes.double()
    mean = c.mean(0)
    # Right singular vectors of the centred codes are the covariance's eigenvectors, largest first.
    _, _, vh = torch.linalg.svd(c - mean, full_matrices=False)
    dirs = vh[:k]
    # Fix each direction's sign (largest entry positive) so pictures do not flip between runs.
    signs = torch.sign(dirs.gather(1, dirs.abs().argmax(1, keepdim=True)))
    return mean.float(), (dirs * signs).float()


def axis_basis(dims: tuple[int, int], latent_dim: int) -> Tensor:
    """Unit vectors (2, D) along two chosen latent dimensions."""
    from ..errors import VaekitError

    for d in dims:
        if not 0 <= d < latent_dim:
            raise VaekitError(f"--dims: latent dimension {d} does not exist (the model has {latent_dim})")
    if dims[0] == dims[1]:
        raise VaekitError(f"--dims: choose two different latent dimensions, got {dims[0]} twice")
    basis = torch.zeros(2, latent_dim)
    basis[0, dims[0]] = 1.0
    basis[1, dims[1]] = 1.0
    return basis


def manifold_codes(center: Tensor, basis: Tensor, xs: Tensor, ys: Tensor) -> Tensor:
    """Codes (rows, cols, D) on a plane: ``center + x * basis[0] + y * basis[1]``.

    As in the Keras tutorial's ``plot_latent_space``, column j takes ``xs[j]`` and row i takes
    ``ys`` reversed, so the top-left tile is (x_min, y_max) and y grows upwards like a plot's axis.
    """
    yy = ys.flip(0)
    grid_x = xs.view(1, -1, 1) * basis[0].view(1, 1, -1)
    grid_y = yy.view(-1, 1, 1) * basis[1].view(1, 1, -1)
    return center.view(1, 1, -1) + grid_x + grid_y


@torch.no_grad()
def manifold(model: Model, center: Tensor, basis: Tensor, xs: Tensor, ys: Tensor) -> tuple[Tensor, Tensor]:
    """Decode a grid of codes: returns codes (rows, cols, D) and images (rows, cols, *S)."""
    z = manifold_codes(center, basis, xs, ys)
    rows, cols, d = z.shape
    images = decode_all(model, z.reshape(-1, d))
    return z, images.view(rows, cols, *images.shape[1:])


# ---- paths between and along codes ---------------------------------------------------------------


def lerp(z0: Tensor, z1: Tensor, ts: Tensor) -> Tensor:
    """Straight-line codes (T, D) from z0 to z1 at fractions ``ts`` (T,)."""
    t = ts.view(-1, 1).to(z0.dtype)
    return (1 - t) * z0 + t * z1


def slerp(z0: Tensor, z1: Tensor, ts: Tensor) -> Tensor:
    """Spherical interpolation (T, D) around the origin (White, 2016, *Sampling Generative Networks*).

    Under a N(0, I) prior, codes concentrate near a sphere; a straight line between two of them
    passes through the low-norm middle that samples never visit, the great-circle arc does not.
    Nearly parallel codes fall back to :func:`lerp` (the arc is then a line).
    """
    t = ts.view(-1, 1).to(z0.dtype)
    n0, n1 = z0.norm(), z1.norm()
    if float(n0) == 0.0 or float(n1) == 0.0:
        return lerp(z0, z1, ts)
    cos = torch.clamp((z0 @ z1) / (n0 * n1), -1.0, 1.0)
    omega = torch.arccos(cos)
    if float(torch.sin(omega)) < 1e-6:
        return lerp(z0, z1, ts)
    s = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / s) * z0 + (torch.sin(t * omega) / s) * z1


def traversal_codes(base: Tensor, dims: list[int], values: Tensor) -> Tensor:
    """Codes (len(dims), T, D): row r is ``base`` with coordinate ``dims[r]`` set to each value."""
    z = base.view(1, 1, -1).repeat(len(dims), len(values), 1)
    for r, d in enumerate(dims):
        z[r, :, d] = values
    return z


# ---- per-dimension and per-example scores ---------------------------------------------------------


@torch.no_grad()
def kl_per_dim(model: Model, x: Tensor, batch_size: int = 1024) -> Tensor:
    """Average KL(q(z_d|x) || N(0, 1)) per latent dimension (D,) over ``x``, in nats.

    A dimension whose KL is ~0 carries no information about x: posterior collapse. It uses each
    marginal N(mu_d, sigma_d^2) of q, so it also works for a full-covariance posterior (whose
    total KL then exceeds the sum by the correlations' share); for a diagonal q the sum is the KL.
    """
    dev = _device(model)
    total = torch.zeros(model.latent_dim, dtype=torch.float64)
    for i in range(0, len(x), batch_size):
        q = model.posterior(x[i : i + batch_size].to(dev))  # type: ignore[operator]
        mu, var = q.mu.double(), q.std.double() ** 2
        total += (0.5 * (var + mu**2 - 1 - torch.log(var))).sum(0).cpu()
    return (total / len(x)).float()


@torch.no_grad()
def per_example_loss(model: Model, x: Tensor, y: Tensor | None = None, *, batch_size: int = 1024,
                     seed: int = 0) -> Tensor:
    """``model(x, y, reduce=False).loss`` for every example (N,): the negative ELBO of a VAE.

    z is sampled, so the RNG is forked and seeded: the same scores every time, training undisturbed.
    """
    dev = _device(model)
    was = model.training
    model.eval()
    out = []
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        for i in range(0, len(x), batch_size):
            yb = None if y is None else y[i : i + batch_size].to(dev)
            out.append(model(x[i : i + batch_size].to(dev), yb, reduce=False).loss.double().cpu())
    model.train(was)
    return torch.cat(out).float()


def project_2d(codes: Tensor, method: str = "pca", seed: int = 0) -> tuple[np.ndarray, str]:
    """Codes (N, D) -> points (N, 2) and axis-label stem: as-is for D <= 2, else PCA or t-SNE."""
    z = codes.double().numpy()
    if z.shape[1] == 1:
        return np.stack([z[:, 0], np.zeros(len(z))], 1), "z"
    if z.shape[1] == 2:
        return z, "z"
    if method == "tsne":
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(2.0, (len(z) - 1) / 3)))
        pts = TSNE(n_components=2, init="pca", random_state=seed, perplexity=perplexity).fit_transform(z)
        return pts, "t-SNE"
    mean, dirs = principal_directions(codes)
    return ((codes - mean) @ dirs.T).double().numpy(), "PC"


def linspace(lo: float, hi: float, steps: int) -> Tensor:
    """``steps`` evenly spaced values; one step is the midpoint."""
    if steps == 1:
        return torch.tensor([(lo + hi) / 2])
    return torch.linspace(lo, hi, steps)


def nice(v: float) -> str:
    """A short tick label for a latent coordinate."""
    if abs(v) < 1e-9:
        return "0"
    if abs(v) < 0.01 or abs(v) >= 100:
        return f"{v:.2g}"
    return f"{v:.2f}".rstrip("0").rstrip(".")


__all__ = [
    "axis_basis",
    "decode_all",
    "encode_all",
    "has_posterior",
    "has_standard_prior",
    "kl_per_dim",
    "lerp",
    "linspace",
    "manifold",
    "manifold_codes",
    "nice",
    "per_example_loss",
    "principal_directions",
    "project_2d",
    "slerp",
    "traversal_codes",
]
