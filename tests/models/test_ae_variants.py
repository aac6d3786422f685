"""Denoising and sparse autoencoders: what each adds to the plain autoencoder, checked by value."""

import pytest
import torch

from vaekit.config import ModelConfig
from vaekit.errors import ConfigError
from vaekit.models import build


def _dae(**options):
    return build(ModelConfig(name="dae", hidden=[16], latent_dim=3, options=options), (1, 20, 20))


def test_masking_noise_zeroes_the_drop_fraction_and_keeps_the_rest():
    torch.manual_seed(0)
    model = _dae(noise="mask", drop=0.3)
    x = torch.rand(64, 1, 20, 20) * 0.9 + 0.1  # no zeros of its own: every zero is a drop
    xt = model.corrupt(x)  # (64, 1, 20, 20)
    dropped = xt == 0
    assert dropped.float().mean().item() == pytest.approx(0.3, abs=0.01)  # 25,600 Bernoulli(0.3) draws
    torch.testing.assert_close(xt[~dropped], x[~dropped])  # kept pixels are untouched (no rescaling)


def test_gaussian_noise_has_the_stated_mean_and_std():
    torch.manual_seed(0)
    model = _dae(noise="gaussian", std=0.4)
    x = torch.rand(64, 1, 20, 20)
    noise = model.corrupt(x) - x  # (64, 1, 20, 20), N(0, 0.16) expected, not clipped
    assert noise.mean().item() == pytest.approx(0.0, abs=0.01)
    assert noise.std().item() == pytest.approx(0.4, rel=0.02)


def test_both_noises_compose():
    torch.manual_seed(0)
    model = _dae(noise="both", std=0.1, drop=0.5)
    x = torch.ones(64, 1, 20, 20)
    xt = model.corrupt(x)  # half the pixels near 0, half near 1, each with N(0, 0.01) noise
    assert (xt < 0.5).float().mean().item() == pytest.approx(0.5, abs=0.02)
    assert (xt - xt.round()).std().item() == pytest.approx(0.1, rel=0.05)


def test_denoising_corrupts_only_in_training_and_reconstructs_the_clean_input():
    torch.manual_seed(0)
    model = _dae(noise="mask", drop=0.5)
    x = torch.rand(8, 1, 20, 20)
    clean = -model.likelihood.log_prob(model.decode_params(model.encoder(x)), x)  # (8,)
    model.eval()
    torch.testing.assert_close(model(x, reduce=False).recon, clean)  # eval: no corruption
    model.train()
    torch.manual_seed(1)
    terms = model(x, reduce=False)
    torch.manual_seed(1)
    z = model.encoder(model.corrupt(x))  # the same corruption, redrawn
    # The target is the clean x, never the corrupted input.
    torch.testing.assert_close(terms.recon, -model.likelihood.log_prob(model.decode_params(z), x))
    assert not torch.allclose(terms.recon, clean)


def test_dae_rejects_bad_options():
    with pytest.raises(ConfigError, match="drop"):
        _dae(drop=1.0)
    with pytest.raises(ConfigError, match="unknown key 'sdt'"):
        _dae(sdt=0.1)


def test_l1_penalty_is_weight_times_the_code_l1_norm():
    model = build(ModelConfig(name="sparse-ae", hidden=[16], latent_dim=4, options={"weight": 0.5}), (1, 6, 6))
    x = torch.rand(5, 1, 6, 6)
    terms = model(x, reduce=False)
    z = model.encoder(x)  # (5, 4)
    torch.testing.assert_close(terms.extra["sparsity"], 0.5 * z.abs().sum(-1))
    torch.testing.assert_close(terms.loss, terms.recon + terms.extra["sparsity"])


def test_ng_kl_penalty_matches_the_closed_form_and_vanishes_at_the_target():
    opts = {"penalty": "kl", "rho": 0.1, "weight": 2.0}
    model = build(ModelConfig(name="sparse-ae", hidden=[16], latent_dim=3, options=opts), (1, 6, 6))
    # A code whose mean activations are (0.1, 0.1, 0.1): KL(rho || rho_hat) = 0 for every unit.
    a = torch.tensor([[0.0, 0.2, 0.1], [0.2, 0.0, 0.1]])  # (B=2, D=3)
    assert model.penalties(torch.zeros(2, 1, 6, 6), a)["sparsity"].abs().max() < 1e-6
    # Mean activation 0.5 on every unit: 2 * 3 * [0.1 log(0.1/0.5) + 0.9 log(0.9/0.5)] = 2.2327 nats.
    half = torch.full((2, 3), 0.5)
    expected = 2.0 * 3 * (0.1 * torch.log(torch.tensor(0.2)) + 0.9 * torch.log(torch.tensor(1.8)))
    torch.testing.assert_close(model.penalties(torch.zeros(2, 1, 6, 6), half)["sparsity"], expected.expand(2))
    code = model.encode(torch.rand(4, 1, 6, 6))
    assert ((code > 0) & (code < 1)).all()  # the code is a sigmoid activation
