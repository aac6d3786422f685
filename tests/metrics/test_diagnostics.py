"""KL per dimension, active units, I(x; z) and the collapse warning on encoders with known answers."""

import math

import pytest
import torch

from vaekit.config import ModelConfig
from vaekit.data import Split
from vaekit.distributions import DiagonalGaussian
from vaekit.metrics.diagnostics import (
    collapse_warning,
    mixture_log_prob,
    mutual_information,
    posterior_diagnostics,
)
from vaekit.models.vae import VAE

DX, D = 4, 3


def linear_encoder_vae(mu_rows: torch.Tensor, logvar_bias: torch.Tensor) -> VAE:
    """A VAE whose encoder is one nn.Linear: mu = mu_rows @ x, logvar = logvar_bias (constant)."""
    cfg = ModelConfig(latent_dim=D, hidden=[], decoder_hidden=[], likelihood="gaussian")
    model = VAE(cfg, (DX,)).double()
    enc = model.encoder.net[0]
    with torch.no_grad():
        enc.weight.zero_()
        enc.bias.zero_()
        enc.weight[:D] = mu_rows
        enc.bias[D:] = logvar_bias
    return model


def test_kl_per_dim_and_active_units_by_hand():
    x = torch.randn(500, DX, generator=torch.Generator().manual_seed(0), dtype=torch.float64)  # (N, DX)
    rows = torch.zeros(D, DX, dtype=torch.float64)
    rows[0, 0] = 2.0  # z0 reads x0: active
    rows[1, 1] = 0.05  # z1 reads x1 weakly: Var = 0.0025 Var(x1) < 0.01, inactive but KL > 0
    # z2 ignores x: q(z2|x) = N(0, 1) = p(z2): inactive, KL exactly 0
    logvar = torch.tensor([math.log(0.1), 0.0, 0.0], dtype=torch.float64)
    model = linear_encoder_vae(rows, logvar)
    d = posterior_diagnostics(model, Split(x), batch_size=128)
    mu = x @ rows.T  # (N, D)
    activity = mu.var(0, unbiased=False)
    assert d.activity == pytest.approx(activity.tolist(), rel=1e-9)
    assert d.active_units == 1
    # Kingma & Welling appendix B: KL_d = 0.5 (mu^2 + v - 1 - log v), averaged over the data.
    v = logvar.exp()
    kl = (0.5 * (mu**2 + v - 1 - logvar)).mean(0)
    assert d.kl_per_dim == pytest.approx(kl.tolist(), rel=1e-9, abs=1e-12)
    assert d.kl_per_dim[2] == 0.0 and d.kl_per_dim[1] > 0
    assert d.warning is None


def test_collapsed_encoder_has_zero_mi_and_warns():
    x = torch.randn(300, DX, dtype=torch.float64)
    model = linear_encoder_vae(torch.zeros(D, DX, dtype=torch.float64), torch.zeros(D, dtype=torch.float64))
    d = posterior_diagnostics(model, Split(x))
    assert d.active_units == 0 and d.kl_per_dim == [0.0, 0.0, 0.0]
    # q(z|x_n) is the same for every n, so q(z|x_n) = q(z): I = 0 exactly.
    assert d.mi == pytest.approx(0.0, abs=1e-12)
    assert d.warning is not None and "posterior collapse" in d.warning


def test_mi_reaches_log_n_for_an_injective_encoder():
    # Means 1 apart with std 0.01 (100 standard deviations): each z identifies its x.
    n = 64
    x = torch.zeros(n, DX, dtype=torch.float64)
    x[:, 0] = torch.arange(n, dtype=torch.float64)
    rows = torch.zeros(D, DX, dtype=torch.float64)
    rows[0, 0] = 1.0
    model = linear_encoder_vae(rows, torch.full((D,), math.log(1e-4), dtype=torch.float64))
    d = posterior_diagnostics(model, Split(x))
    assert d.mi == pytest.approx(math.log(n), abs=1e-6) and d.mi_max == pytest.approx(math.log(n))


def test_mixture_log_prob_matches_brute_force():
    g = torch.Generator().manual_seed(1)
    mu = torch.randn(50, 3, generator=g, dtype=torch.float64)  # (N, D)
    logvar = torch.randn(50, 3, generator=g, dtype=torch.float64)
    z = torch.randn(20, 3, generator=g, dtype=torch.float64)
    log_q = DiagonalGaussian(mu, logvar).log_prob(z[:, None, :])  # (20, 50): every z under every component
    brute = torch.logsumexp(log_q, dim=1) - math.log(50)  # (20,)
    torch.testing.assert_close(mixture_log_prob(z, mu, logvar, chunk=7), brute)
    # One Gaussian over independent dims: I(x; z) for z = x + noise, x ~ N(0, 1) uniform over the
    # empirical points is bounded by log N and positive.
    assert 0 < mutual_information(mu, logvar) <= math.log(50) + 1e-9


def test_collapse_warning_thresholds():
    assert collapse_warning(0, 5.0) and "no active" in collapse_warning(0, 5.0)
    assert collapse_warning(3, 0.05) and "total KL" in collapse_warning(3, 0.05)
    assert collapse_warning(3, 0.2) is None and collapse_warning(3, None) is None


def test_a_one_layer_model_has_no_per_layer_breakdown():
    x = torch.randn(100, DX, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    rows = torch.zeros(D, DX, dtype=torch.float64)
    rows[0, 0] = 2.0
    model = linear_encoder_vae(rows, torch.zeros(D, dtype=torch.float64))
    # The default hook: one layer "z", the posterior's mean.
    assert model.latent_layers == {"z": D}
    means = model.latent_means(x)
    assert list(means) == ["z"] and torch.equal(means["z"], x @ rows.T)
    d = posterior_diagnostics(model, Split(x))
    assert d.active_units == 1 and d.activity_by_layer is None and d.active_units_by_layer is None
    assert not any(key.endswith("_by_layer") for key in d.to_dict())


def test_a_model_without_a_posterior_has_no_posterior_means():
    from vaekit.models.ae import Autoencoder

    ae = Autoencoder(ModelConfig(name="ae", latent_dim=2, hidden=[8]), (DX,))
    with pytest.raises(NotImplementedError, match="no posterior"):
        ae.latent_means(torch.zeros(3, DX))
