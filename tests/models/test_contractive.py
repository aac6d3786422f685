"""The contractive penalty: the closed form equals the autograd Jacobian's squared Frobenius norm,
and the Hutchinson estimator is unbiased."""

import pytest
import torch

from vaekit.config import ModelConfig
from vaekit.models import build
from vaekit.models.contractive import hutchinson_sqnorm, jacrev_sqnorm


def _jacobian_sqnorm(encoder, x):
    """||dz/dx||_F^2 per example from torch.autograd.functional.jacobian, one example at a time."""
    return torch.stack(
        [torch.autograd.functional.jacobian(lambda xi: encoder(xi[None])[0], xi).pow(2).sum() for xi in x]
    )


@pytest.mark.parametrize("hidden", [[], [7], [6, 5], [6, 5, 4]])
@pytest.mark.parametrize("act", ["tanh", "relu", "softplus"])
def test_closed_form_equals_the_autograd_jacobian(hidden, act):
    torch.manual_seed(0)
    cfg = ModelConfig(name="cae", hidden=hidden, latent_dim=3, activation=act, options={"weight": 0.5})
    model = build(cfg, (1, 4, 4)).double()
    assert model.jacobian_method == "closed-form"
    x = torch.rand(5, 1, 4, 4, dtype=torch.float64)
    exact = _jacobian_sqnorm(model.encoder, x)  # (5,)
    torch.testing.assert_close(model.jacobian_sqnorm(x), exact)
    torch.testing.assert_close(model(x, reduce=False).extra["contractive"], 0.5 * exact)


def test_closed_form_gradient_matches_jacrev():
    # The penalty trains the weights, so its gradient must be the true one too.
    torch.manual_seed(0)
    model = build(ModelConfig(name="cae", hidden=[6, 5], latent_dim=3, activation="tanh"), (1, 4, 4)).double()
    x = torch.rand(5, 1, 4, 4, dtype=torch.float64)
    params = list(model.encoder.parameters())[:-1]  # the last bias does not enter the Jacobian
    g_closed = torch.autograd.grad(model.jacobian_sqnorm(x).sum(), params)
    g_jacrev = torch.autograd.grad(jacrev_sqnorm(model.encoder, x).sum(), params)
    for a, b in zip(g_closed, g_jacrev):
        torch.testing.assert_close(a, b)


def test_conv_uses_the_stochastic_estimator_which_is_unbiased():
    torch.manual_seed(0)
    cfg = ModelConfig(name="cae", arch="conv", channels=[4, 8], latent_dim=3, activation="tanh")
    model = build(cfg, (1, 8, 8)).double()
    assert model.jacobian_method == "stochastic"
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64)
    exact = _jacobian_sqnorm(model.encoder, x)  # (3,)
    torch.testing.assert_close(jacrev_sqnorm(model.encoder, x), exact)  # the "exact" option for conv
    with torch.no_grad():
        draws = torch.stack([hutchinson_sqnorm(model.encoder, x, 10) for _ in range(400)])  # (400, 3)
    se = draws.std(0) / 20
    # Unbiased: the mean of 4,000 projections is within 4 standard errors of the exact value...
    assert ((draws.mean(0) - exact).abs() < 4 * se).all()
    assert (se < 0.01 * exact).all()  # ...and that tolerance is tight (< 1% of the value).
    assert draws.std(0).min() > 0  # a genuinely random estimate


def test_stochastic_penalty_is_differentiable_in_training():
    torch.manual_seed(0)
    cfg = ModelConfig(name="cae", hidden=[8], latent_dim=2, options={"jacobian": "stochastic", "projections": 2})
    model = build(cfg, (1, 4, 4))
    x = torch.rand(4, 1, 4, 4)
    penalty = model(x).extra["contractive"]
    (grad,) = torch.autograd.grad(penalty, [model.encoder.net[0].weight])
    assert grad.abs().sum() > 0
