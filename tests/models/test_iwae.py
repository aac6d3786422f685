"""IWAE: the k-sample bound of Burda et al. (2015) eq. 8, checked against the ELBO and by its ordering."""

import math

import pytest
import torch

from vaekit.config import ModelConfig
from vaekit.errors import ConfigError
from vaekit.models import build


def _pair(k=5):
    torch.manual_seed(0)
    iwae = build(ModelConfig(name="iwae", hidden=[16], latent_dim=3, options={"k": k}), (1, 5, 5)).double()
    vae = build(ModelConfig(name="vae", hidden=[16], latent_dim=3, kl="mc"), (1, 5, 5)).double()
    vae.load_state_dict(iwae.state_dict())  # the same networks
    return iwae, vae


def test_k1_bound_equals_the_elbo_on_the_same_samples():
    iwae, vae = _pair()
    x = torch.rand(6, 1, 5, 5, dtype=torch.float64).round()
    torch.manual_seed(3)
    a = iwae(x, samples=1, reduce=False)
    torch.manual_seed(3)
    b = vae(x, samples=1, reduce=False)  # estimator A: log q - log p from the same z
    torch.testing.assert_close(a.loss, b.loss)
    torch.testing.assert_close(a.recon, b.recon)
    torch.testing.assert_close(a.kl, b.kl)


def test_default_is_k_samples_and_the_terms_mean_what_the_docstring_says():
    iwae, _ = _pair(k=7)
    x = torch.rand(4, 1, 5, 5, dtype=torch.float64).round()
    torch.manual_seed(1)
    t = iwae(x, reduce=False)
    torch.manual_seed(1)
    q = iwae.posterior(x)
    z = q.rsample(7)  # (7, 4, 3)
    log_px = iwae.likelihood.log_prob(iwae.decode_params(z), x)  # (7, 4)
    log_w = log_px + iwae.prior.log_prob(z) - q.log_prob(z)
    torch.testing.assert_close(t.loss, -(torch.logsumexp(log_w, 0) - math.log(7)))
    torch.testing.assert_close(t.recon, -log_px.mean(0))
    torch.testing.assert_close(t.recon + t.kl, -log_w.mean(0))  # the negative ELBO, same samples
    assert (t.recon + t.kl >= t.loss).all()  # Jensen: L_k >= the k-sample ELBO estimate


def test_bound_increases_with_k_in_expectation():
    iwae, _ = _pair()
    with torch.no_grad():  # a sharper decoder: q(z|x) is then far from p(z|x) and the gaps are wide
        for p in iwae.decoder.parameters():
            p.mul_(3)
    x = torch.rand(8, 1, 5, 5, dtype=torch.float64).round()
    torch.manual_seed(2)
    means, ses = [], []
    with torch.no_grad():
        for k in (1, 5, 50):
            draws = torch.stack([-iwae(x, samples=k).loss for _ in range(300)])  # (300,) batch-mean L_k
            means.append(draws.mean().item())
            ses.append(draws.std().item() / math.sqrt(300))
    # Burda et al. Theorem 1: L_1 <= L_5 <= L_50; each gap far beyond the Monte-Carlo error.
    assert means[1] - means[0] > 5 * (ses[0] + ses[1])
    assert means[2] - means[1] > 5 * (ses[1] + ses[2])
    # ...and all below log p(x), estimated with k = 20,000 importance samples.
    with torch.no_grad():
        log_px = (torch.logsumexp(iwae.log_weights(x, None, 20_000), 0) - math.log(20_000)).mean().item()
    assert means[2] < log_px + 3 * ses[2]


def test_iwae_rejects_a_kl_weight_and_bad_k():
    with pytest.raises(ConfigError, match="beta"):
        build(ModelConfig(name="iwae", beta=2.0), (1, 5, 5))
    with pytest.raises(ConfigError, match="k >= 1"):
        build(ModelConfig(name="iwae", options={"k": 0}), (1, 5, 5))
