import pytest
import torch

import vaekit
from vaekit.config import ModelConfig, resolve
from vaekit.models import MODELS, Terms, build

# Parameter counts of the original architectures (PyTorch examples, Keras tutorial, the d=64 MLP).
PRESET_PARAMS = {
    "pytorch-example": (330_040, 322_784),  # 784-400-(20+20) / 20-400-784: 652,824 in all
    "keras-conv": (69_076, 65_089),  # Keras model.summary(): encoder 69,076, decoder 65,089
    "mlp-d64": (566_144, 550_416),
    "gaussian-mlp": (330_040, 637_168),  # decoder outputs a mean and a scale per pixel
}


@pytest.mark.parametrize("preset", sorted(PRESET_PARAMS))
def test_preset_parameter_counts(preset):
    model = build(resolve(preset).model, (1, 28, 28))
    enc = sum(p.numel() for p in model.encoder.parameters())
    dec = sum(p.numel() for p in model.decoder.parameters())
    assert (enc, dec) == PRESET_PARAMS[preset]


@pytest.mark.parametrize(
    "shape, arch, channels",
    [((1, 28, 28), "conv", [8, 16, 16]), ((3, 32, 32), "conv", [8, 16]), ((1, 8, 8), "conv", [4, 8]),
     ((3, 13, 17), "conv", [4, 8]), ((5,), "mlp", [8]), ((3, 9, 9), "mlp", [8])],
)
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "gaussian-learned"])
def test_shapes_for_any_data(shape, arch, channels, likelihood):
    cfg = ModelConfig(arch=arch, channels=channels, hidden=[16], latent_dim=3, likelihood=likelihood)
    model = build(cfg, shape)
    x = torch.rand(4, *shape)
    terms = model(x, samples=2)
    assert isinstance(terms, Terms) and terms.loss.dim() == 0
    torch.testing.assert_close(terms.loss, terms.recon + terms.kl)
    assert model.reconstruct(x).shape == x.shape
    assert model.sample(5).shape == (5, *shape)
    assert model.encode(x).shape == (4, 3)


def test_estimators_a_and_b_agree_in_expectation():
    torch.manual_seed(0)
    cfg = ModelConfig(hidden=[32], latent_dim=4)
    model = build(cfg, (1, 6, 6)).double()
    x = torch.rand(16, 1, 6, 6, dtype=torch.float64)
    torch.manual_seed(1)
    b = model(x, samples=4000, reduce=False)
    model.cfg.kl = "mc"
    torch.manual_seed(1)
    a = model(x, samples=4000, reduce=False)
    torch.testing.assert_close(a.recon, b.recon)  # the same draws: only the KL estimator differs
    torch.testing.assert_close(a.kl, b.kl, atol=0.05, rtol=0.02)
    assert not torch.equal(a.kl, b.kl)


def test_beta_weights_the_kl_term():
    cfg = ModelConfig(hidden=[16], latent_dim=2, beta=4.0)
    model = build(cfg, (1, 4, 4))
    t = model(torch.rand(3, 1, 4, 4))
    torch.testing.assert_close(t.loss, t.recon + 4.0 * t.kl)


def test_encode_is_the_posterior_mean_of_each_image_alone():
    model = build(resolve("mlp-d64").model, (1, 28, 28)).eval()
    x = torch.rand(5, 1, 28, 28)
    codes = model.encode(x)  # (5, 64)
    torch.testing.assert_close(codes, model.posterior(x).mu)  # the mean, not a draw
    # Row i is image i's code whatever else is in the batch (no mixing across the batch axis).
    torch.testing.assert_close(codes[2:3], model.encode(x[2:3]))
    torch.testing.assert_close(codes.flip(0), model.encode(x.flip(0)))
    assert float((codes[0] - codes[1]).abs().max()) > 1e-3  # different images, different codes


def test_registry_knows_vae_and_rejects_unknown():
    assert MODELS["vae"] is vaekit.models.VAE
    with pytest.raises(vaekit.VaekitError, match="unknown model 'vea'.*'vae'"):
        build(ModelConfig(name="vea"), (1, 28, 28))


def test_autoencoder_code_density_is_the_sample_mean_and_covariance_streamed_in_batches():
    from vaekit.data import Split

    torch.manual_seed(0)
    model = build(ModelConfig(name="ae", hidden=[16], latent_dim=3), (1, 4, 4))
    x = torch.rand(1001, 1, 4, 4)
    model.after_fit(Split(x), batch_size=128)  # 8 batches, the last one short
    with torch.no_grad():
        codes = model.encode(x).double()
    torch.testing.assert_close(model.code_mean.double(), codes.mean(0), rtol=1e-5, atol=1e-6)
    cov = model.code_scale_tril.double() @ model.code_scale_tril.double().T
    torch.testing.assert_close(cov, torch.cov(codes.T), rtol=1e-4, atol=1e-6)


NOT_STANDARD = {"ae", "dae", "sparse-ae", "cae", "hvae", "vamp"}  # no p(z), a hierarchical one, a VampPrior


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_standard_prior_is_declared_and_agrees_with_what_the_family_samples_from(name):
    from vaekit.viz.latent import has_standard_prior

    cfg = ModelConfig(name=name, hidden=[8], latent_dim=2, options={"pseudo_inputs": 3} if name == "vamp" else {})
    model = build(cfg, (1, 4, 4))
    assert model.standard_prior is (name not in NOT_STANDARD) and has_standard_prior(model) is model.standard_prior
    if model.standard_prior:  # what export writes as the prior is N(0, I) itself
        prior = model.latent_prior()
        assert torch.equal(prior["mean"], torch.zeros(2)) and torch.equal(prior["scale_tril"], torch.eye(2))


def test_a_prior_declaring_itself_standard_is_one_to_every_caller():
    from vaekit.distributions import Prior
    from vaekit.metrics.diagnostics import posterior_diagnostics
    from vaekit.data import Split

    class MyNormal(Prior):  # N(0, I) written again, not a StandardNormal subclass
        standard = True

        def log_prob(self, z):
            return -0.5 * (z**2 + torch.log(torch.tensor(2 * torch.pi))).sum(-1)

    torch.manual_seed(0)
    model = build(ModelConfig(hidden=[8], latent_dim=2), (1, 4, 4))
    model.prior = MyNormal()
    x = torch.rand(16, 1, 4, 4)
    diag = posterior_diagnostics(model, Split(x))
    q = model.posterior(x)
    torch.testing.assert_close(torch.tensor(diag.kl_per_dim, dtype=torch.float64),
                               q.kl_standard_normal_per_dim().double().mean(0))  # the closed form, per dimension
