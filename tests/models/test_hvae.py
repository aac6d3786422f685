"""The two-layer Ladder VAE (Sønderby et al. 2016): precision weighting, per-layer KL, the bound."""

import math

import pytest
import torch
from conftest import small_config
from torch.distributions import Normal, kl_divergence

from vaekit.models import build
from vaekit.distributions import DiagonalGaussian, kl_diagonal
from vaekit.models.hvae import precision_weighted


def _hvae(**model):
    cfg = small_config(model={"name": "hvae", "hidden": [16], "latent_dim": 4, "options": {"top_dim": 2,
                                                                                            "features": 12, "top_hidden": 8}, **model}).model
    torch.manual_seed(0)
    return build(cfg, (1, 6, 6))


def test_precision_weighting_is_the_product_of_the_two_gaussians():
    g = torch.Generator().manual_seed(0)
    mu_h, lv_h, mu_p, lv_p = (torch.randn(5, 3, generator=g, dtype=torch.float64) for _ in range(4))
    mu_q, lv_q = precision_weighted(mu_h, lv_h, mu_p, lv_p)
    prec_h, prec_p = torch.exp(-lv_h), torch.exp(-lv_p)
    # LVAE eq. 17-19 written out: sigma_q^2 = 1/(prec_h + prec_p), mu_q = (mu_h prec_h + mu_p prec_p) sigma_q^2
    assert torch.allclose(torch.exp(lv_q), 1 / (prec_h + prec_p))
    assert torch.allclose(mu_q, (mu_h * prec_h + mu_p * prec_p) / (prec_h + prec_p))
    # N(z; mu_h) N(z; mu_p) / N(z; mu_q) does not depend on z: the product is proportional to q.
    z = torch.randn(7, 5, 3, dtype=torch.float64)
    ratio = (Normal(mu_h, torch.exp(0.5 * lv_h)).log_prob(z) + Normal(mu_p, torch.exp(0.5 * lv_p)).log_prob(z)
             - Normal(mu_q, torch.exp(0.5 * lv_q)).log_prob(z))  # (7, 5, 3)
    assert torch.allclose(ratio, ratio[0].expand_as(ratio))


def test_gaussian_kl_and_log_prob_match_torch():
    a, b, c, d = (torch.randn(4, 3, dtype=torch.float64) for _ in range(4))
    ref = kl_divergence(Normal(a, torch.exp(0.5 * b)), Normal(c, torch.exp(0.5 * d)))
    assert torch.allclose(kl_diagonal(a, b, c, d), ref)
    z = torch.randn(4, 3, dtype=torch.float64)
    assert torch.allclose(DiagonalGaussian(a, b).log_prob(z), Normal(a, torch.exp(0.5 * b)).log_prob(z).sum(-1))


def test_terms_add_up_per_layer():
    model = _hvae()
    x = torch.rand(6, 1, 6, 6).bernoulli()
    t = model(x, reduce=False)
    assert t.loss.shape == (6,)
    assert torch.allclose(t.kl, t.extra["kl_z1"] + t.extra["kl_z2"])
    assert torch.allclose(t.loss, t.recon + t.kl)
    assert (t.extra["kl_z1"] >= 0).all() and (t.extra["kl_z2"] >= 0).all()
    # KL(q(z2|x) || N(0, I)) in closed form from the bottom-up estimate at the top.
    _, _, mu2, lv2 = model.bottom_up(x)
    assert torch.allclose(t.extra["kl_z2"], (-0.5 * (1 + lv2 - mu2**2 - lv2.exp())).sum(-1), atol=1e-6)


def test_analytic_kl_agrees_with_monte_carlo():
    analytic, mc = _hvae(), _hvae(kl="mc")
    x = torch.rand(3, 1, 6, 6).bernoulli()
    torch.manual_seed(1)
    a = analytic(x, samples=20000, reduce=False)
    torch.manual_seed(1)
    m = mc(x, samples=20000, reduce=False)
    for key in ("kl_z1", "kl_z2"):
        assert torch.allclose(a.extra[key], m.extra[key], rtol=0.03, atol=0.02), key


def test_log_weights_average_to_the_elbo():
    """E_q[log w] = ELBO: the mean importance log-weight is minus the forward pass's loss (beta = 1)."""
    model = _hvae()
    x = torch.rand(3, 1, 6, 6).bernoulli()
    torch.manual_seed(2)
    lw = model.log_weights(x, None, 20000)  # (k, B)
    loss = model(x, samples=20000, reduce=False).loss
    se = lw.std(0) / math.sqrt(lw.shape[0])
    assert ((lw.mean(0) + loss).abs() < 5 * se + 0.05).all()
    assert (torch.logsumexp(lw, 0) - math.log(lw.shape[0]) >= lw.mean(0)).all()  # IS bound >= ELBO


def test_sample_is_ancestral_from_the_top_down_prior():
    model = _hvae().eval()
    # Temperature 0: z2 = 0 and z1 = mu_p(0), so every sample is E[x | z1 = mu_p(z2 = 0)].
    expected = model.decode(model.prior1(torch.zeros(1, 2))[0])
    assert torch.allclose(model.sample(3, temperature=0.0), expected.expand(3, -1, -1, -1))
    torch.manual_seed(0)
    s = model.sample(4)
    assert s.shape == (4, 1, 6, 6) and not torch.allclose(s[0], s[1])


@pytest.mark.parametrize("top_dim, expected", [(0, 2), (3, 3)])
def test_top_dim_default(top_dim, expected):
    cfg = small_config(model={"name": "hvae", "hidden": [8], "latent_dim": 5, "options": {"top_dim": top_dim}}).model
    assert build(cfg, (1, 6, 6)).top_dim == expected


def test_warmup_ramps_the_kl_weight():
    cfg = small_config(model={"name": "hvae", "hidden": [8], "latent_dim": 2, "beta": 2.0,
                              "options": {"warmup_steps": 100}}).model
    model = build(cfg, (1, 6, 6))
    assert [model.kl_weight(s) for s in (0, 50, 100, 500)] == [0.0, 1.0, 2.0, 2.0]
    x = torch.rand(2, 1, 6, 6).bernoulli()
    torch.manual_seed(0)
    t = model(x, step=25, reduce=False)
    assert torch.allclose(t.loss, t.recon + 0.5 * t.kl)
    model.eval()  # held-out numbers report the full bound whatever the step
    assert model.kl_weight(0) == 2.0
    t = model(x, step=0, reduce=False)
    assert torch.allclose(t.loss, t.recon + 2.0 * t.kl)


def test_the_trainers_evaluation_uses_the_training_sample_count():
    """model.samples = L draws of (z2, z1) in training and in the trainer's held-out evaluation
    (default_samples): the train_ and test_ terms are one objective."""
    model = _hvae(samples=3)
    assert model.default_samples == 3
    x = torch.rand(5, 1, 6, 6)
    torch.manual_seed(1)
    ours = model(x)
    torch.manual_seed(1)
    explicit = model(x, samples=3)
    torch.testing.assert_close(ours.loss, explicit.loss)
    torch.manual_seed(1)
    assert not torch.allclose(model(x, samples=1).loss, ours.loss)  # L changes the estimate


def test_latent_means_are_each_layers_posterior_mean():
    """z2: E_q(z2|x)[z2] = mu^_2, the mean of the z2 draws the bound uses; z1: posterior(x)'s mean,
    q(z1 | z2 = E[z2|x], x)."""
    model = _hvae().eval()
    x = torch.rand(5, 1, 6, 6).bernoulli()
    means = model.latent_means(x)
    assert list(means) == list(model.latent_layers) == ["z1", "z2"]
    assert model.latent_layers == {"z1": 4, "z2": 2}
    _, _, mu2, lv2 = model.bottom_up(x)
    assert torch.equal(means["z2"], mu2) and torch.equal(means["z1"], model.posterior(x).mu)
    torch.manual_seed(3)
    z2 = model.infer(x, 40000)["z2"]  # (L, B, D2)
    se = torch.exp(0.5 * lv2) / math.sqrt(z2.shape[0])
    assert ((z2.mean(0) - mu2).abs() < 5 * se).all()


def test_active_units_are_counted_per_layer():
    """Burda et al. sec. 5.2 per stochastic layer: a z2 unit whose head is zeroed has a constant mean
    (activity exactly 0, inactive); scaled heads make units active; every activity is the variance
    over the data of that layer's posterior mean, computed here directly."""
    from vaekit.data import Split
    from vaekit.metrics.diagnostics import ACTIVE_THRESHOLD, posterior_diagnostics

    model = _hvae()
    with torch.no_grad():
        model.head2.weight[0] = 0.0  # mu^_2[0] = 3 for every x: inactive
        model.head2.bias[0] = 3.0
        model.head2.weight[1] *= 50  # mu^_2[1] varies with x: active
        model.head1.weight[2:4] *= 50  # z1 units 2 and 3 read the bottom-up estimate strongly
    x = torch.rand(200, 1, 6, 6, generator=torch.Generator().manual_seed(0)).bernoulli()
    d = posterior_diagnostics(model, Split(x), batch_size=64)  # several batches, concatenated
    with torch.no_grad():
        _, _, mu2, _ = model.bottom_up(x)
        mu1 = model.posterior(x).mu
    a2, a1 = mu2.double().var(0, unbiased=False), mu1.double().var(0, unbiased=False)
    assert d.activity_by_layer["z2"] == pytest.approx(a2.tolist(), rel=1e-6)
    assert d.activity_by_layer["z1"] == pytest.approx(a1.tolist(), rel=1e-6)
    assert d.activity_by_layer["z2"][0] == 0.0 and d.activity_by_layer["z2"][1] > ACTIVE_THRESHOLD
    assert d.active_units_by_layer == {"z1": int((a1 > ACTIVE_THRESHOLD).sum()), "z2": 1}
    assert d.active_units_by_layer["z1"] == 2
    # The existing fields keep their meaning: the units of model.posterior, i.e. z1's.
    assert d.activity == d.activity_by_layer["z1"] and d.active_units == 2
    out = d.to_dict()
    assert out["active_units_by_layer"] == {"z1": 2, "z2": 1}
    assert out["latent_dim_by_layer"] == {"z1": 4, "z2": 2}
    assert out["active_units"] == 2 and out["latent_dim"] == 4


def test_a_layer_with_no_active_unit_is_warned_about():
    """z1 in use, every z2 unit constant: the whole top layer is idle, which the warning names."""
    from vaekit.data import Split
    from vaekit.metrics.diagnostics import posterior_diagnostics

    model = _hvae()
    with torch.no_grad():
        model.head2.weight.zero_()  # mu^_2 = bias for every x: z2 carries nothing about x
        model.head1.weight[2:4] *= 50  # z1 units 2 and 3 active
    x = torch.rand(200, 1, 6, 6, generator=torch.Generator().manual_seed(0)).bernoulli()
    d = posterior_diagnostics(model, Split(x))
    assert d.active_units_by_layer == {"z1": 2, "z2": 0}
    assert d.warning.startswith("posterior collapse in layer z2: no active unit there")


def test_evaluate_reports_the_idle_layer_warning():
    """The hvae has no analytic KL per dimension, so evaluate() re-judges collapse from the ELBO's
    KL; the diagnostics' warning about an idle layer must survive that."""
    from vaekit.data import Split
    from vaekit.evaluate import evaluate

    model = _hvae()
    with torch.no_grad():
        model.head2.weight.zero_()
        model.head1.weight[2:4] *= 50
    x = torch.rand(200, 1, 6, 6, generator=torch.Generator().manual_seed(0)).bernoulli()
    report = evaluate(model, Split(x), k=0, progress=False)
    assert report["latent"]["warning"].startswith("posterior collapse in layer z2")
