"""The full-covariance Gaussian posterior N(mu, L L^T): density, KL, sampling, and the model."""

import math

import pytest
import torch
from torch.distributions import MultivariateNormal, kl_divergence

from vaekit.distributions import DiagonalGaussian
from vaekit.models import build
from vaekit.models.fullcov import FullCovGaussian, tril_from_features


def _random_q(b: int = 5, d: int = 4, seed: int = 0) -> FullCovGaussian:
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(b, d, generator=g, dtype=torch.float64)
    feats = 0.5 * torch.randn(b, d + d * (d - 1) // 2, generator=g, dtype=torch.float64)  # (B, D + D(D-1)/2)
    return FullCovGaussian(mu, tril_from_features(feats, d))


def test_tril_layout():
    d = 3
    h = torch.tensor([[0.0, math.log(2.0), math.log(3.0), 10.0, 20.0, 30.0]])  # log diag, then (1,0), (2,0), (2,1)
    expected = torch.tensor([[[1.0, 0, 0], [10.0, 2.0, 0], [20.0, 30.0, 3.0]]])
    assert torch.allclose(tril_from_features(h, d), expected)


def test_log_prob_and_kl_match_torch_multivariate_normal():
    q = _random_q()
    ref = MultivariateNormal(q.mu, scale_tril=q.scale_tril)
    z = torch.randn(3, *q.mu.shape, dtype=torch.float64)  # (L, B, D)
    assert torch.allclose(q.log_prob(z), ref.log_prob(z), atol=1e-10)
    d = q.mu.shape[-1]
    std = MultivariateNormal(torch.zeros(d, dtype=torch.float64), scale_tril=torch.eye(d, dtype=torch.float64))
    assert torch.allclose(q.kl_standard_normal(), kl_divergence(ref, std), atol=1e-10)
    assert torch.allclose(q.log_det(), torch.logdet(q.covariance), atol=1e-10)


def test_monte_carlo_kl_and_sample_covariance():
    torch.manual_seed(0)
    q = _random_q(b=2, d=3, seed=1)
    z = q.rsample(200_000)  # (N, B, D)
    log_ratio = q.log_prob(z) + 0.5 * (math.log(2 * math.pi) * 3 + (z**2).sum(-1))  # log q - log N(0, I): (N, B)
    mc, se = log_ratio.mean(0), log_ratio.std(0) / math.sqrt(z.shape[0])
    assert ((mc - q.kl_standard_normal()).abs() < 5 * se).all()
    centred = z - z.mean(0)
    cov = torch.einsum("nbi,nbj->bij", centred, centred) / z.shape[0]  # (B, D, D)
    assert torch.allclose(cov, q.covariance, atol=0.03 * q.covariance.abs().max())


def test_diagonal_case_equals_the_diagonal_gaussian():
    mu, logvar = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    full = FullCovGaussian(mu, torch.diag_embed(torch.exp(0.5 * logvar)))
    diag = DiagonalGaussian(mu, logvar)
    z = torch.randn(2, 4, 3, dtype=torch.float64)
    assert torch.allclose(full.log_prob(z), diag.log_prob(z))
    assert torch.allclose(full.kl_standard_normal(), diag.kl_standard_normal())
    assert torch.allclose(full.std, diag.std)


def test_model_uses_the_full_covariance_posterior(tiny_cfg):
    cfg = tiny_cfg.model
    cfg.name = "fullcov-vae"
    model = build(cfg, (1, 28, 28))
    d = cfg.latent_dim
    x = torch.rand(6, 1, 28, 28)
    assert model.encoder(x).shape == (6, d * (d + 3) // 2)
    q = model.posterior(x)
    assert isinstance(q, FullCovGaussian)
    assert torch.equal(q.scale_tril, torch.tril(q.scale_tril)) and (torch.diagonal(q.scale_tril, dim1=-2, dim2=-1) > 0).all()
    assert q.scale_tril.tril(-1).abs().sum() > 0  # off-diagonal entries are really used
    terms = model(x, reduce=False)
    assert torch.allclose(terms.loss, terms.recon + terms.kl)
    assert torch.allclose(terms.kl, q.kl_standard_normal())
    lw = model.log_weights(x, None, 4)  # the importance-sampled NLL works with this posterior too
    assert lw.shape == (4, 6) and torch.isfinite(lw).all()


@pytest.mark.parametrize("d", [1, 2, 5])
def test_kl_is_zero_only_at_the_prior(d):
    q = FullCovGaussian(torch.zeros(1, d), torch.eye(d)[None])
    assert q.kl_standard_normal().item() == pytest.approx(0.0, abs=1e-6)
