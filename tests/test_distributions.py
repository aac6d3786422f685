import math

import pytest
import torch
import torch.nn.functional as F

import vaekit

from vaekit.distributions import DiagonalGaussian, StandardNormal
from vaekit.likelihoods import Bernoulli, Gaussian, LearnedGaussian


def _posterior(b: int = 4, d: int = 3, seed: int = 0) -> DiagonalGaussian:
    g = torch.Generator().manual_seed(seed)
    return DiagonalGaussian(torch.randn(b, d, generator=g, dtype=torch.float64),
                            0.5 * torch.randn(b, d, generator=g, dtype=torch.float64))


def test_kl_matches_torch_distributions_closed_form():
    q = _posterior()
    ref = torch.distributions.kl_divergence(
        torch.distributions.Normal(q.mu, q.std), torch.distributions.Normal(0.0, 1.0)
    ).sum(-1)
    torch.testing.assert_close(q.kl_standard_normal(), ref)


def test_kl_matches_monte_carlo():
    torch.manual_seed(1)
    q = _posterior()
    z = q.rsample(200_000)  # (n, B, D)
    mc = (q.log_prob(z) - StandardNormal().log_prob(z)).mean(0)
    torch.testing.assert_close(mc, q.kl_standard_normal(), atol=0.02, rtol=0.01)


def test_log_prob_matches_torch_normal():
    q = _posterior()
    z = q.rsample(5)
    ref = torch.distributions.Normal(q.mu, q.std).log_prob(z).sum(-1)
    torch.testing.assert_close(q.log_prob(z), ref)
    torch.testing.assert_close(
        StandardNormal().log_prob(z), torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    )


def test_rsample_moments_and_gradient():
    torch.manual_seed(0)
    mu = torch.tensor([[1.0, -2.0]], requires_grad=True)
    logvar = torch.tensor([[0.0, math.log(4.0)]], requires_grad=True)
    z = DiagonalGaussian(mu, logvar).rsample(100_000)
    torch.testing.assert_close(z.mean((0, 1)), torch.tensor([1.0, -2.0]), atol=0.03, rtol=0)
    torch.testing.assert_close(z.std((0, 1)), torch.tensor([1.0, 2.0]), atol=0.03, rtol=0)
    z.mean().backward()  # reparameterised: gradients reach mu and logvar
    assert mu.grad is not None and logvar.grad is not None


def test_bernoulli_on_logits_equals_bce_on_sigmoid():
    torch.manual_seed(0)
    logits = 3 * torch.randn(8, 1, 5, 5, dtype=torch.float64)
    x = torch.rand(8, 1, 5, 5, dtype=torch.float64)  # continuous pixels, as the tutorial uses
    ref = F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="none").sum((1, 2, 3))
    torch.testing.assert_close(-Bernoulli(3).log_prob(logits, x), ref)


def test_bernoulli_is_stable_for_large_logits():
    logits = torch.tensor([[200.0, -200.0]])
    lp = Bernoulli(1).log_prob(logits, torch.tensor([[0.0, 1.0]]))
    assert torch.isfinite(lp).all() and lp.item() == pytest.approx(-400.0)


def test_gaussian_likelihoods_match_torch_normal():
    torch.manual_seed(0)
    x = torch.rand(6, 1, 4, 4, dtype=torch.float64)
    mean = torch.rand(6, 1, 4, 4, dtype=torch.float64)
    ref = torch.distributions.Normal(mean, 0.3).log_prob(x).sum((1, 2, 3))
    torch.testing.assert_close(Gaussian(3, 0.3).log_prob(mean, x), ref)
    raw = torch.randn(6, 1, 4, 4, dtype=torch.float64)
    lik = LearnedGaussian(3, min_sigma=0.01)
    sigma = 0.01 + F.softplus(raw)
    ref = torch.distributions.Normal(mean, sigma).log_prob(x).sum((1, 2, 3))
    torch.testing.assert_close(lik.log_prob(torch.cat([mean, raw], 1), x), ref)
    torch.testing.assert_close(lik.mean(torch.cat([mean, raw], 1)), mean)


def test_gaussian_fixed_variance_is_scaled_squared_error():
    """-log N(x; f, s^2) = ||x - f||^2 / (2 s^2) + const: the C*||x - f(z)||^2 loss."""
    x, f = torch.rand(3, 10, dtype=torch.float64), torch.rand(3, 10, dtype=torch.float64)
    s = 0.5
    nll = -Gaussian(1, s).log_prob(f, x)
    const = 10 * (math.log(s) + 0.5 * math.log(2 * math.pi))
    torch.testing.assert_close(nll, ((x - f) ** 2).sum(1) / (2 * s * s) + const)


def test_likelihood_broadcasts_over_samples():
    out = torch.randn(5, 3, 2, 4, 4)  # (L, B, k*C, H, W)
    x = torch.rand(3, 2, 4, 4)
    lp = Bernoulli(3).log_prob(out, x)
    assert lp.shape == (5, 3)
    torch.testing.assert_close(lp[2], Bernoulli(3).log_prob(out[2], x))


def test_likelihoods_are_imported_from_their_own_package_only():
    # one home per name: vaekit.distributions holds q(z|x) and p(z); p(x|z) is vaekit.likelihoods
    import vaekit.distributions as dists
    import vaekit.likelihoods as lik

    for name in ("Bernoulli", "Gaussian", "LearnedGaussian", "Likelihood", "build_likelihood"):
        assert name in lik.__all__ and not hasattr(dists, name), name


@pytest.mark.parametrize("name", sorted(n for n, cls in vaekit.MODELS.items() if cls.has_posterior))
def test_every_models_posterior_provides_the_declared_protocol(name):
    """What vaekit.distributions.Posterior declares, every family's q(z|x) provides with the right
    shapes; the per-dimension KL is a split of the total KL, or None where it does not split."""
    import typing

    from vaekit.config import resolve
    from vaekit.distributions import Posterior
    from vaekit.models import build

    declared = {m for m in vars(Posterior) if not m.startswith("_")} | set(typing.get_type_hints(Posterior))
    assert declared >= {"mu", "marginal_var", "rsample", "log_prob", "kl_standard_normal", "kl_standard_normal_per_dim"}
    cfg = resolve("pytorch-example", overrides=[{"model": {"name": name, "hidden": [16], "latent_dim": 3}}]).model
    torch.manual_seed(0)
    model = build(cfg, (1, 8, 8))
    q = model.posterior(torch.rand(5, 1, 8, 8))
    for member in declared:
        assert hasattr(q, member), f"{name}: posterior lacks {member}"
    assert q.mu.shape == q.marginal_var.shape == (5, 3) and bool((q.marginal_var > 0).all())
    z = q.rsample(2)
    assert z.shape == (2, 5, 3) and q.log_prob(z).shape == (2, 5)
    per_dim = q.kl_standard_normal_per_dim()
    if per_dim is not None:
        torch.testing.assert_close(per_dim.sum(-1), q.kl_standard_normal())
    else:
        assert name == "fullcov-vae"  # the one posterior with correlated dimensions
