"""Score-function vs reparameterised gradient estimators (Kingma & Welling 2014, sec. 2.3)."""

import json
import math

import pytest
import torch
from conftest import small_config

import vaekit
from vaekit.cli import main
from vaekit.distributions import DiagonalGaussian
from vaekit.errors import VaekitError
from vaekit.gradients import elbo_surrogate, gradient_variance, surrogate
from vaekit.models import build

MU, SIGMA, N = 1.5, 0.5, 400_000


def _draws(kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """N independent one-draw gradients of E_{z~N(mu, sigma^2)}[z^2] w.r.t. mu and log sigma^2.

    Each of the N rows has its own copy of (mu, logvar), so row i's gradient is draw i: (N,) each.
    """
    torch.manual_seed(0)
    mu = torch.full((N, 1), MU, dtype=torch.float64, requires_grad=True)
    logvar = torch.full((N, 1), 2 * math.log(SIGMA), dtype=torch.float64, requires_grad=True)
    q = DiagonalGaussian(mu, logvar)
    baseline = torch.full((N,), MU**2 + SIGMA**2, dtype=torch.float64)  # b = E[f], z-independent
    surrogate(kind, q, lambda z: (z**2).sum(-1), baseline).sum().backward()
    return mu.grad[:, 0], logvar.grad[:, 0]


@pytest.mark.parametrize(
    "kind, variance",
    [
        ("reparam", 4 * SIGMA**2),  # d/dmu (mu + sigma eps)^2 = 2 z: Var = 4 sigma^2
        # (eps/sigma) z^2, z = mu + sigma eps: E[g^2] = mu^4/sigma^2 + 18 mu^2 + 15 sigma^2, minus (2 mu)^2
        ("score", MU**4 / SIGMA**2 + 14 * MU**2 + 15 * SIGMA**2),
        # (eps/sigma)(z^2 - mu^2 - sigma^2) = 2 mu eps^2 + sigma eps (eps^2 - 1): Var = 8 mu^2 + 10 sigma^2
        ("score-baseline", 8 * MU**2 + 10 * SIGMA**2),
    ],
)
def test_estimators_are_unbiased_with_the_closed_form_variance(kind, variance):
    g_mu, g_logvar = _draws(kind)
    # d/dmu E[z^2] = d/dmu (mu^2 + sigma^2) = 2 mu; d/dlogvar (mu^2 + e^logvar) = sigma^2.
    assert abs(g_mu.mean().item() - 2 * MU) < 5 * math.sqrt(variance / N)
    assert abs(g_logvar.mean().item() - SIGMA**2) < 5 * (g_logvar.std() / math.sqrt(N)).item()
    assert g_mu.var().item() == pytest.approx(variance, rel=0.05)


def test_reparameterised_variance_is_lowest():
    v = {k: _draws(k)[0].var().item() for k in ("reparam", "score-baseline", "score")}
    assert v["reparam"] < v["score-baseline"] < v["score"]


def _tiny_vae(name: str = "vae"):
    cfg = small_config(model={"name": name, "hidden": [8], "latent_dim": 2}).model
    torch.manual_seed(0)
    return build(cfg, (1, 6, 6))


def test_reparam_surrogate_is_the_models_own_elbo():
    model = _tiny_vae()
    x = torch.rand(5, 1, 6, 6).bernoulli()
    torch.manual_seed(3)
    s = elbo_surrogate(model, x, "reparam")
    torch.manual_seed(3)
    assert s.item() == pytest.approx(-model(x).loss.item(), rel=1e-6)


def test_score_function_gradient_of_the_elbo_is_unbiased():
    """Per encoder parameter, the mean score-function gradient agrees with the mean reparameterised
    one: the squared z-scores average ~1 (chi-square with 1 d.o.f.), not >> 1.

    Each of M = 40 groups is one backward pass on the batch repeated R = 100 times, i.e. the average
    of R independent one-draw gradients; the spread of the group means gives the standard error.
    """
    model = _tiny_vae()
    x = torch.rand(4, 1, 6, 6).bernoulli()
    xr = x.repeat(100, 1, 1, 1)  # (R*B, 1, 6, 6)
    params = list(model.encoder.parameters())
    stats = {}
    for kind in ("reparam", "score-baseline"):
        torch.manual_seed(1)
        g = torch.stack([torch.cat([p.reshape(-1) for p in torch.autograd.grad(elbo_surrogate(model, xr, kind), params)])
                         for _ in range(40)]).double()  # (M, P) group means
        stats[kind] = (g.mean(0), g.var(0) / g.shape[0])
    (m1, v1), (m2, v2) = stats["reparam"], stats["score-baseline"]
    keep = (v1 + v2) > 1e-20  # parameters with any gradient at all
    z2 = ((m1 - m2) ** 2 / (v1 + v2))[keep]
    assert z2.mean().item() < 1.6 and z2.max().item() < 30


def test_gradient_variance_on_a_model():
    model = _tiny_vae()
    x = torch.rand(8, 1, 6, 6).bernoulli()
    out = gradient_variance(model, x, draws=50)
    assert out["parameters"] == sum(p.numel() for p in model.encoder.parameters())
    assert out["ratio_score"] > out["ratio_score-baseline"] > 1
    assert gradient_variance(model, x, draws=50) == out  # seeded: the same numbers every time
    with pytest.raises(VaekitError, match="draws"):
        gradient_variance(model, x, draws=1)
    for name in ("hvae", "cvae", "ae"):
        with pytest.raises(VaekitError, match="gradvar"):
            gradient_variance(_tiny_vae(name), x, draws=2)


def test_cli_gradvar(tmp_path, capsys):
    cfg = small_config(model={"hidden": [16], "latent_dim": 2}, data={"limit": 128})
    cfg.train.epochs = 0  # the initial weights are enough to compare the estimators
    vaekit.train(cfg, tmp_path / "run", log=lambda s: None, init_only=True)
    assert main(["gradvar", str(tmp_path / "run"), "--batch-size", "10", "--draws", "20"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["batch"] == 10 and out["draws"] == 20 and out["ratio_score"] > 1
    assert main(["gradvar", str(tmp_path / "run"), "--draws", "1"]) == 2
