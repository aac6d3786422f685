"""Capacity control, KL warm-up schedules and free bits: the weights and losses they give, by value."""

import pytest
import torch

from vaekit.config import ModelConfig
from vaekit.distributions import DiagonalGaussian
from vaekit.errors import ConfigError
from vaekit.models import build


def _model(name, beta=1.0, latent_dim=3, **options):
    cfg = ModelConfig(name=name, hidden=[16], latent_dim=latent_dim, beta=beta, options=options)
    return build(cfg, (1, 6, 6))


@pytest.mark.parametrize("step, capacity", [(0, 0.0), (50, 5.0), (100, 10.0), (1000, 10.0)])
def test_capacity_loss_is_recon_plus_gamma_abs_kl_minus_c(step, capacity):
    torch.manual_seed(0)
    model = _model("capacity-vae", gamma=7.0, c_max=10.0, steps=100)
    assert model.capacity(step) == pytest.approx(capacity)
    t = model(torch.rand(5, 1, 6, 6), step=step, reduce=False)  # (5,) each
    torch.testing.assert_close(t.loss, t.recon + 7.0 * (t.kl - capacity).abs())


def test_capacity_kl_is_the_true_kl():
    torch.manual_seed(0)
    model = _model("capacity-vae", gamma=7.0, c_max=10.0, steps=100)
    x = torch.rand(5, 1, 6, 6)
    torch.testing.assert_close(model(x, step=50, reduce=False).kl, model.posterior(x).kl_standard_normal())


@pytest.mark.parametrize(
    "step, weight", [(0, 0.0), (25, 0.5), (50, 1.0), (100, 2.0), (10_000, 2.0)]
)
def test_linear_warmup_weights(step, weight):
    model = _model("warmup-vae", beta=2.0, schedule="linear", steps=100)
    assert model.kl_weight(step) == pytest.approx(weight)


@pytest.mark.parametrize(
    "step, weight",
    [(0, 0.0), (10, 0.25), (20, 0.5), (40, 1.0), (79, 1.0), (80, 0.0), (100, 0.5), (159, 1.0),
     (160, 1.0), (170, 1.0), (10_000, 1.0)],
)
def test_cyclical_weights_fu_et_al(step, weight):
    # Cycles of 80 steps rising over the first half (R = 0.5), M = 2 cycles, then beta for good.
    model = _model("warmup-vae", schedule="cyclical", steps=80, ratio=0.5, cycles=2)
    assert model.kl_weight(step) == pytest.approx(weight)


def test_cyclical_repeats_forever_with_zero_cycles():
    model = _model("warmup-vae", schedule="cyclical", steps=80, ratio=0.25, cycles=0)
    assert [model.kl_weight(s) for s in (800, 810, 820, 830)] == pytest.approx([0.0, 0.5, 1.0, 1.0])


def test_the_trainer_step_reaches_the_loss():
    torch.manual_seed(0)
    model = _model("warmup-vae", schedule="linear", steps=100)
    t = model(torch.rand(5, 1, 6, 6), step=30, reduce=False)
    torch.testing.assert_close(t.loss, t.recon + 0.3 * t.kl)


def _posterior(mu, logvar):
    return DiagonalGaussian(mu, logvar)


def test_free_bits_value_is_the_sum_of_floored_batch_mean_kls():
    model = _model("freebits-vae", latent_dim=4, floor=0.5)
    mu = torch.tensor([[2.0, 0.1, 0.0, 1.0], [0.0, -0.1, 0.2, 1.0]])  # (B=2, D=4)
    q = _posterior(mu, torch.zeros(2, 4))  # KL per dim = mu^2 / 2
    per_dim_mean = (mu**2 / 2).mean(0)  # (1.0, 0.005, 0.01, 0.5): dims 1, 2 and 3 are at or below 0.5
    expected = torch.clamp(per_dim_mean, min=0.5).sum()  # 1 + 0.5 + 0.5 + 0.5 = 2.5
    penalty = model.kl_penalty(q.kl_standard_normal(), q, q.rsample(1), step=0)  # (2,)
    assert penalty.mean().item() == pytest.approx(expected.item()) == pytest.approx(2.5)


def test_free_bits_stop_the_gradient_below_the_floor():
    model = _model("freebits-vae", latent_dim=3, floor=0.5)
    mu = torch.tensor([[2.0, 0.3, 0.0], [1.0, -0.3, 0.0]], requires_grad=True)
    logvar = torch.zeros(2, 3, requires_grad=True)
    q = _posterior(mu, logvar)
    model.kl_penalty(q.kl_standard_normal(), q, q.rsample(1), step=0).mean().backward()
    # dim 0 (batch-mean KL 1.25 > 0.5): the KL's own gradient d(mu^2/2)/dmu / B = mu / 2.
    torch.testing.assert_close(mu.grad[:, 0], mu.detach()[:, 0] / 2)
    # dims 1 and 2 (batch-mean KL 0.045 and 0): no gradient at all.
    assert torch.equal(mu.grad[:, 1:], torch.zeros(2, 2)) and torch.equal(logvar.grad[:, 1:], torch.zeros(2, 2))


def test_free_bits_groups_and_reported_kl():
    torch.manual_seed(0)
    model = _model("freebits-vae", latent_dim=4, floor=3.0, groups=2)
    mu = torch.tensor([[3.0, 0.0, 0.5, 0.5]])  # group KLs 4.5 and 0.25 -> penalty 4.5 + 3.0
    q = _posterior(mu, torch.zeros(1, 4))
    assert model.kl_penalty(q.kl_standard_normal(), q, q.rsample(1), step=0).item() == pytest.approx(7.5)
    x = torch.rand(5, 1, 6, 6)
    torch.testing.assert_close(model(x, reduce=False).kl, model.posterior(x).kl_standard_normal())
    with pytest.raises(ConfigError, match="divisor"):
        _model("freebits-vae", latent_dim=5, groups=2)


def test_free_bits_monte_carlo_per_dim_kl_agrees_with_analytic():
    torch.manual_seed(0)
    cfg = ModelConfig(name="freebits-vae", hidden=[16], latent_dim=3, kl="mc")
    model = build(cfg, (1, 6, 6)).double()
    q = _posterior(torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64) * 0.3)
    mc = model.kl_per_group(q, q.rsample(20_000))  # (4, 3)
    torch.testing.assert_close(mc, q.kl_standard_normal_per_dim(), atol=0.03, rtol=0.03)


def test_eval_mode_uses_the_end_of_the_schedules():
    # Held-out losses (vaekit's elbo() passes no step) are those of the final objective.
    warm = _model("warmup-vae", beta=2.0, schedule="cyclical", steps=80).eval()
    assert warm.kl_weight(0) == warm.kl_weight(85) == 2.0
    cap = _model("capacity-vae", gamma=7.0, c_max=10.0, steps=100).eval()
    assert cap.capacity(0) == 10.0
    t = cap(torch.rand(5, 1, 6, 6), reduce=False)
    torch.testing.assert_close(t.loss, t.recon + 7.0 * (t.kl - 10.0).abs())
