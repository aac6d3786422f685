"""The VampPrior (Tomczak & Welling 2018, eq. 9): a mixture of posteriors of learned pseudo-inputs."""

import math

import torch

from vaekit.config import ModelConfig
from vaekit.models import build


def _vamp(k, latent_dim=3):
    torch.manual_seed(0)
    cfg = ModelConfig(name="vamp", hidden=[16], latent_dim=latent_dim, options={"pseudo_inputs": k})
    return build(cfg, (1, 5, 5)).double()


def test_one_pseudo_input_equal_to_the_data_point_gives_its_posterior():
    model = _vamp(1)
    x = torch.rand(1, 1, 5, 5, dtype=torch.float64) * 0.9 + 0.05  # strictly inside (0, 1)
    with torch.no_grad():
        model.prior.raw.copy_(torch.logit(x))  # u_1 = sigmoid(logit(x)) = x
    q = model.posterior(x)
    z = torch.randn(10, 1, 3, dtype=torch.float64) * 2  # (L, B, D), anywhere
    torch.testing.assert_close(model.prior.log_prob(z), q.log_prob(z))


def test_log_prob_is_the_uniform_mixture_of_component_densities():
    model = _vamp(4)
    c = model.prior.components()  # mu, logvar (4, 3)
    z = torch.randn(6, 2, 3, dtype=torch.float64) * 3  # (L, B, D)
    normal = torch.distributions.Normal(c.mu, c.std)  # batch (4, 3)
    log_comp = normal.log_prob(z[..., None, :]).sum(-1)  # (6, 2, 4)
    torch.testing.assert_close(model.prior.log_prob(z), torch.logsumexp(log_comp, -1) - math.log(4))


def test_pseudo_inputs_stay_in_the_unit_interval():
    model = _vamp(7)
    with torch.no_grad():
        model.prior.raw.mul_(1000)  # however far the free parameters go
    u = model.prior.pseudo_inputs  # (7, 1, 5, 5)
    assert u.shape == (7, 1, 5, 5) and u.min() >= 0 and u.max() <= 1


def test_pseudo_inputs_of_a_table_are_unbounded():
    torch.manual_seed(0)
    columns = [{"name": "a", "type": "numeric", "mean": 0.0, "std": 1.0}, {"name": "b", "type": "numeric", "mean": 0.0, "std": 1.0}]
    cfg = ModelConfig(name="vamp", hidden=[16], latent_dim=2, likelihood="mixed", columns=columns, options={"pseudo_inputs": 5})
    model = build(cfg, (2,))
    with torch.no_grad():
        model.prior.raw.fill_(-3.0)  # standardised values 3 sd below the mean: a valid table row
    assert torch.equal(model.prior.pseudo_inputs, torch.full((5, 2), -3.0))
    assert _vamp(5).prior.unit and not model.prior.unit


def test_kl_is_the_monte_carlo_estimate_and_reaches_the_pseudo_inputs():
    model = _vamp(3)
    model.cfg.kl = "analytic"  # no closed form with this prior: the estimator is Monte Carlo anyway
    x = torch.rand(4, 1, 5, 5, dtype=torch.float64)
    q = model.posterior(x)
    z = q.rsample(2)  # (2, 4, 3)
    terms = model.bound(x, q, z, step=10_000)  # past the warm-up: KL weight 1
    torch.testing.assert_close(terms.kl, (q.log_prob(z) - model.prior.log_prob(z)).mean(0))
    terms.loss.sum().backward()
    assert model.prior.raw.grad.abs().sum() > 0


def test_samples_come_from_the_mixture():
    model = _vamp(2, latent_dim=2)
    c = model.prior.components()
    torch.manual_seed(0)
    with torch.no_grad():
        z = model.prior.sample(40_000, 2)  # (n, D)
    # A uniform two-component mixture: E[z] = mean_k mu_k, E[z^2] = mean_k (var_k + mu_k^2) per dim.
    mean = c.mu.mean(0)
    second = (c.std**2 + c.mu**2).mean(0)
    sd = (second - mean**2).sqrt()
    torch.testing.assert_close(z.mean(0), mean.detach(), atol=(4 * sd / 200).max().item(), rtol=0)
    torch.testing.assert_close((z**2).mean(0), second.detach(), rtol=0.03, atol=0.01)
    # model.sample decodes exactly these prior draws.
    torch.manual_seed(5)
    images = model.sample(3)
    torch.manual_seed(5)
    torch.testing.assert_close(images, model.decode(model.prior.sample(3, 2)))


def test_vamp_is_trained_with_the_warmup_schedule():
    # Tomczak & Welling's protocol: a linear KL warm-up (inherited from warmup-vae, in steps).
    cfg = ModelConfig(name="vamp", hidden=[8], latent_dim=2, options={"pseudo_inputs": 3, "steps": 100})
    model = build(cfg, (1, 5, 5))
    assert [model.kl_weight(s) for s in (0, 50, 100, 500)] == [0.0, 0.5, 1.0, 1.0]
    t = model(torch.rand(4, 1, 5, 5), step=25, reduce=False)
    torch.testing.assert_close(t.loss, t.recon + 0.25 * t.kl)
