"""The importance-sampled log p(x) against closed forms.

Probabilistic PCA (Tipping & Bishop 1999) is a VAE with a linear decoder and a Gaussian likelihood:
x = W z + b + sigma eps, z ~ N(0, I), so log p(x) = log N(x; b, W W^T + sigma^2 I) exactly and the
exact posterior is Gaussian: z|x ~ N(M^-1 W^T (x - b), sigma^2 M^-1), M = W^T W + sigma^2 I. With
orthogonal columns W = U diag(s), M is diagonal and the exact posterior is a diagonal-Gaussian
encoder that a single nn.Linear can represent (mean rows M^-1 W^T, log-variance a constant bias).
"""

import math

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles

from vaekit.config import ModelConfig
from vaekit.data import Split
from vaekit.evaluate import elbo
from vaekit.metrics.discretized import (
    DiscretizedGaussian,
    check_quantized,
    discretized,
    log_discretized_gaussian,
)
from vaekit.metrics.likelihood import (
    FastBernoulli,
    fast_bernoulli,
    importance_sampled_nll,
    logmeanexp_chunks,
    meaning,
)
from vaekit.errors import VaekitError
from vaekit.models.vae import VAE

DX, DZ, N, SIGMA = 5, 2, 200, 0.5


def linear_vae(sigma: float = SIGMA, kl: str = "analytic", likelihood: str = "gaussian") -> VAE:
    """A VAE whose encoder and decoder are each one nn.Linear (hidden = [])."""
    cfg = ModelConfig(latent_dim=DZ, hidden=[], decoder_hidden=[], likelihood=likelihood, sigma=sigma, kl=kl)
    return VAE(cfg, (DX,)).double()


def ppca(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    u, _ = torch.linalg.qr(torch.randn(DX, DZ, generator=g, dtype=torch.float64))  # (DX, DZ) orthonormal
    w = u * torch.tensor([2.0, 1.0], dtype=torch.float64)  # orthogonal columns, norms 2 and 1
    b = torch.randn(DX, generator=g, dtype=torch.float64)
    return w, b, g


def set_ppca(model: VAE, w: torch.Tensor, b: torch.Tensor, shift: float = 0.0, var_scale: float = 1.0):
    """Decoder = (W, b); encoder = the exact posterior, optionally with its mean shifted by ``shift``
    (in every latent coordinate) and its variance multiplied by ``var_scale``. Returns (A, c, v):
    the posterior mean A (x - b) + c and variance v (DZ,) that the encoder computes."""
    s2 = (w * w).sum(0)  # (DZ,) = diag(W^T W)
    m = s2 + SIGMA**2  # diag M
    a = w.T / m[:, None]  # (DZ, DX) = M^-1 W^T
    v = SIGMA**2 / m * var_scale  # (DZ,)
    dec, enc = model.decoder.net[0], model.encoder.net[0]
    with torch.no_grad():
        dec.weight.copy_(w)
        dec.bias.copy_(b)
        enc.weight.zero_()
        enc.weight[:DZ] = a
        enc.bias[:DZ] = -a @ b + shift
        enc.bias[DZ:] = torch.log(v)
    return a, torch.full((DZ,), shift, dtype=torch.float64), v


def sample_x(w, b, g, n=N):
    z = torch.randn(n, DZ, generator=g, dtype=torch.float64)
    return z @ w.T + b + SIGMA * torch.randn(n, DX, generator=g, dtype=torch.float64)  # (N, DX)


def exact_log_px(x, w, b):
    cov = w @ w.T + SIGMA**2 * torch.eye(DX, dtype=torch.float64)
    return torch.distributions.MultivariateNormal(b, cov).log_prob(x)  # (N,)


def test_exact_posterior_makes_elbo_is_and_exact_equal():
    w, b, g = ppca()
    x = sample_x(w, b, g)
    model = linear_vae(kl="mc")  # estimator A: recon + (log q - log p) = -log w per sample
    set_ppca(model, w, b)
    exact = exact_log_px(x, w, b)
    # Every importance weight equals p(x) when q is the true posterior.
    lw = model.log_weights(x, None, 7)  # (7, N)
    assert lw.shape == (7, N)
    torch.testing.assert_close(lw, exact.expand(7, N), atol=1e-9, rtol=0)
    res = importance_sampled_nll(model, Split(x), k=50, batch_size=64, progress=False)
    assert res.nll == pytest.approx(-exact.mean().item(), abs=1e-9)
    assert res.ess == pytest.approx(50.0) and res.mc_se == pytest.approx(0.0, abs=1e-9)
    ev = elbo(model, Split(x), samples=3)
    assert ev["recon"] + ev["kl"] == pytest.approx(-exact.mean().item(), abs=1e-9)


def test_is_estimate_converges_to_exact_and_bounds_the_elbo():
    w, b, g = ppca(1)
    x = sample_x(w, b, g)
    model = linear_vae()
    # A worse proposal: the mean off by 0.5 in each coordinate, the variance doubled.
    a, c, v = set_ppca(model, w, b, shift=0.5, var_scale=2.0)
    exact = exact_log_px(x, w, b)  # (N,)
    # Closed-form ELBO = log p(x) - KL(q || p(z|x)), both diagonal Gaussians.
    m_true = (x - b) @ a.T  # (N, DZ)
    v_true = v / 2.0
    kl = 0.5 * (torch.log(v_true / v) + (v + c**2) / v_true - 1).sum() * torch.ones(N, dtype=torch.float64)
    elbo_exact = (exact - kl).mean().item()
    assert float(((m_true + c) - model.encode(x)).abs().max()) < 1e-12
    ev = elbo(model, Split(x), samples=2000)
    assert -(ev["recon"] + ev["kl"]) == pytest.approx(elbo_exact, abs=0.02)

    gaps = {}
    for k in (1, 10, 5000):
        res = importance_sampled_nll(model, Split(x), k=k, batch_size=50, seed=k, progress=False)
        gaps[k] = exact.mean().item() - (-res.nll)  # >= 0 up to noise: log of an unbiased estimate
    assert gaps[1] == pytest.approx(exact.mean().item() - elbo_exact, abs=0.1)  # k = 1 is the ELBO
    assert gaps[1] > gaps[10] > gaps[5000] > -0.01
    assert gaps[5000] <= 0.05


def test_chunked_logsumexp_equals_the_direct_one():
    # A fake model whose log-weights are read, chunk by chunk, from a fixed (k, N) table.
    k, n = 37, 11
    table = torch.randn(k, n, dtype=torch.float64) * 30  # wide: the logsumexp must not overflow

    class Fake(torch.nn.Module):
        has_density, name = True, "fake"  # the declared capability importance_sampled_nll checks

        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))
            self.pos = 0

        def importance_sampler(self, x, y):  # the estimator's interface (vaekit.models.Model's default)
            return lambda kc: self.log_weights(x, y, kc)

        def log_weights(self, x, y, kc):
            ids = x[:, 0].long()
            out = table[self.pos : self.pos + kc][:, ids]
            self.pos = (self.pos + kc) % k
            return out

    x = torch.arange(n, dtype=torch.float64)[:, None]  # the index of each row is its value
    direct = torch.logsumexp(table, 0) - math.log(k)  # (N,)
    for max_elements in (1, 5, 40, 10**6):  # chunks of 1, 1, 10, all samples
        res = importance_sampled_nll(Fake(), Split(x), k=k, batch_size=4, max_elements=max_elements,
                                     progress=False)
        torch.testing.assert_close(res.per_example, direct)
        assert res.nll == pytest.approx(-direct.mean().item())
        assert res.se == pytest.approx(direct.std().item() / math.sqrt(n))  # SE over the images
    lp, lm2, ess = logmeanexp_chunks(iter([table[:5], table[5:]]), k)
    torch.testing.assert_close(ess, torch.exp(2 * torch.logsumexp(table, 0) - torch.logsumexp(2 * table, 0)))


def test_linear_vae_learns_the_principal_subspace():
    # Lucas et al. 2019 ("Don't blame the ELBO"): a linear VAE's optimum is pPCA's, whose W spans
    # the top principal subspace of the data covariance (Tipping & Bishop 1999, eq. 7).
    g = torch.Generator().manual_seed(3)
    w_true = torch.linalg.qr(torch.randn(DX, DZ, generator=g))[0] * torch.tensor([3.0, 2.0])
    x = torch.randn(2000, DZ, generator=g) @ w_true.T + 0.3 * torch.randn(2000, DX, generator=g)  # (2000, DX)
    torch.manual_seed(0)
    cfg = ModelConfig(latent_dim=DZ, hidden=[], decoder_hidden=[], likelihood="gaussian", sigma=0.3)
    model = VAE(cfg, (DX,))
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(800):  # full batch
        opt.zero_grad()
        model(x).loss.backward()
        opt.step()
    xc = (x - x.mean(0)).double().numpy()
    pcs = np.linalg.svd(xc, full_matrices=False)[2][:DZ].T  # (DX, DZ) top right-singular vectors
    angles = np.degrees(subspace_angles(model.decoder.net[0].weight.detach().double().numpy(), pcs))
    assert angles.max() < 3.0, angles


def test_discretized_gaussian_masses_sum_to_one():
    x = torch.arange(256, dtype=torch.float64) / 255  # every 8-bit pixel value
    for mu, s in [(0.3, 0.1), (0.0, 0.01), (1.0, 0.002), (0.5, 5.0), (-2.0, 0.05), (3.0, 0.02)]:
        lp = log_discretized_gaussian(x, torch.full_like(x, mu), torch.full_like(x, s))
        assert torch.isfinite(lp).all() and (lp <= 0).all()
        assert torch.logsumexp(lp, 0).item() == pytest.approx(0.0, abs=1e-12)
    # A wide Gaussian: an interior bin's mass ~= density * bin width 1/255.
    mu, s = torch.tensor(0.5, dtype=torch.float64), torch.tensor(0.2, dtype=torch.float64)
    xi = torch.tensor(100 / 255, dtype=torch.float64)
    dens = torch.distributions.Normal(mu, s).log_prob(xi) - math.log(255)
    assert log_discretized_gaussian(xi, mu, s).item() == pytest.approx(dens.item(), abs=1e-4)
    # An edge bin extends to infinity: P(pixel 0) = Phi((0 + 1/510 - mu) / s).
    edge = torch.special.log_ndtr((0.5 / 255 - mu) / s)
    zero = torch.tensor(0.0, dtype=torch.float64)
    assert log_discretized_gaussian(zero, mu, s).item() == pytest.approx(edge.item())


def test_discretized_nll_is_a_probability_and_the_swap_is_undone():
    model = VAE(ModelConfig(latent_dim=2, hidden=[8], likelihood="gaussian-learned"), (1, 4, 4))
    x = torch.randint(0, 256, (12, 1, 4, 4)).float() / 255
    check_quantized(x)
    base = model.likelihood
    with discretized(model):
        assert isinstance(model.likelihood, DiscretizedGaussian)
        res = importance_sampled_nll(model, Split(x), k=20, batch_size=5, progress=False)
    assert model.likelihood is base
    assert res.nll > 0  # a probability mass: -log P >= 0 (a density's NLL can be negative)
    with pytest.raises(VaekitError, match="not 256-level"):
        check_quantized(torch.full((2, 3), 0.5001))
    with pytest.raises(VaekitError, match="Gaussian likelihood"):
        with discretized(VAE(ModelConfig(latent_dim=2, hidden=[8]), (4,))):
            pass


def test_meaning_labels():
    bern = VAE(ModelConfig(latent_dim=2, hidden=[8]), (4,)).likelihood
    gauss = VAE(ModelConfig(latent_dim=2, hidden=[8], likelihood="gaussian"), (4,)).likelihood
    assert meaning(bern, torch.tensor([[0.0, 1.0]]))["kind"] == "nll"
    assert "comparable to papers" in meaning(bern, torch.tensor([[0.0, 1.0]]))["label"]
    assert meaning(bern, torch.tensor([[0.0, 0.3]]))["kind"] == "bce"
    assert "not a likelihood" in meaning(bern, torch.tensor([[0.0, 0.3]]))["label"]
    assert meaning(gauss, torch.tensor([[0.2]]))["kind"] == "density"
    assert meaning(gauss, torch.tensor([[0.2]]), discretize=True)["kind"] == "discretized"


def test_fast_bernoulli_equals_bce_and_is_undone():
    g = torch.Generator().manual_seed(0)
    out = 8 * torch.randn(3, 5, 1, 4, 4, generator=g, dtype=torch.float64)  # (L, B, C, H, W) logits
    for x in (torch.rand(5, 1, 4, 4, generator=g, dtype=torch.float64),  # continuous: the BCE "loss"
              torch.bernoulli(torch.full((5, 1, 4, 4), 0.5, dtype=torch.float64), generator=g)):
        ref = VAE(ModelConfig(latent_dim=2, hidden=[8]), (1, 4, 4)).likelihood.log_prob(out, x)
        torch.testing.assert_close(FastBernoulli(3).log_prob(out, x), ref, rtol=1e-12, atol=1e-9)
    model = VAE(ModelConfig(latent_dim=2, hidden=[8]), (1, 4, 4))
    base = model.likelihood
    with fast_bernoulli(model):
        assert type(model.likelihood) is FastBernoulli
    assert model.likelihood is base
