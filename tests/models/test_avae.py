"""The AVAE self-consistency term (Cemgil et al. 2020) and the code-sensitivity metric."""

import math

import pytest
import torch
from conftest import small_config
from torch import nn
from torch.distributions import Normal, kl_divergence

from vaekit.errors import ConfigError
from vaekit.models import build
from vaekit.models.avae import code_sensitivity


def _model(name: str = "avae", **options):
    cfg = small_config(model={"name": name, "hidden": [16], "latent_dim": 3, "options": options}).model
    torch.manual_seed(0)
    return build(cfg, (1, 6, 6))


def test_consistency_is_the_kl_to_the_coupling():
    """KL(q(z~|x~) || N(rho z, (1 - rho^2) I)) with x~ = E[x|z], against torch.distributions."""
    model = _model(rho=0.8, decoded="mean")
    z = torch.randn(5, 3)  # (B, D)
    x_tilde = model.decode(z)  # (B, 1, 6, 6)
    q = model.posterior(x_tilde)
    ref = kl_divergence(Normal(q.mu, q.std), Normal(0.8 * z, math.sqrt(1 - 0.8**2))).sum(-1)
    assert torch.allclose(model.consistency(z), ref, atol=1e-5)


def test_coupling_leaves_the_prior_invariant():
    """z ~ N(0, I), z~ ~ N(rho z, (1 - rho^2) I)  =>  z~ ~ N(0, I): why r is the AVAE's target."""
    torch.manual_seed(0)
    z = torch.randn(200_000)
    z_tilde = 0.9 * z + math.sqrt(1 - 0.81) * torch.randn_like(z)
    assert z_tilde.mean().abs() < 0.01 and abs(z_tilde.var().item() - 1) < 0.01
    assert abs(torch.corrcoef(torch.stack([z, z_tilde]))[0, 1].item() - 0.9) < 0.01


def test_only_the_encoder_learns_from_the_term():
    model = _model()
    model.consistency(torch.randn(4, 3)).sum().backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.decoder.parameters())
    assert sum(p.grad.abs().sum() for p in model.encoder.parameters() if p.grad is not None) > 0


def test_loss_is_the_vae_loss_plus_the_weighted_term():
    avae, vae = _model(weight=2.5), _model("vae")
    vae.load_state_dict(avae.state_dict())  # the same networks
    x = torch.rand(4, 1, 6, 6).bernoulli()
    torch.manual_seed(1)
    a = avae(x, reduce=False)
    torch.manual_seed(1)
    v = vae(x, reduce=False)
    assert torch.allclose(a.recon, v.recon) and torch.allclose(a.kl, v.kl)
    assert torch.allclose(a.loss, v.loss + 2.5 * a.extra["consistency"])
    assert (a.extra["consistency"] >= 0).all()


def test_bad_options():
    with pytest.raises(ConfigError, match="rho"):
        _model(rho=1.0)


class _Identity(nn.Module):
    """A stand-in model whose code is the image itself: encode(x) = x.flatten(1)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def test_code_sensitivity_known_answer():
    """With encode = identity and no clipping, shift = E||delta|| = noise * sqrt(2) Gamma((P+1)/2) / Gamma(P/2)."""
    p, noise = 64, 0.01
    x = 0.3 + 0.4 * (torch.arange(200) % 2).float()[:, None].expand(200, p)  # two images, 0.3 and 0.7
    out = code_sensitivity(_Identity(), x, noise=noise)
    chi_mean = math.sqrt(2) * math.exp(math.lgamma((p + 1) / 2) - math.lgamma(p / 2))
    assert out["shift"] == pytest.approx(noise * chi_mean, rel=0.02)
    # Half the random pairs differ (distance 0.4 * sqrt(P)), half are the same image.
    assert out["spread"] == pytest.approx(0.5 * 0.4 * math.sqrt(p), rel=0.15)
    assert out["relative"] == pytest.approx(out["shift"] / out["spread"])
