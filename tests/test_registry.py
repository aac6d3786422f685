"""Every registered model goes through the same life: build, train a few steps, save, load, and
give identical outputs after loading. A new model family is covered by registering it."""

import dataclasses

import pytest
import torch
from conftest import small_config

import vaekit
from vaekit.data import open_data
from vaekit.evaluate import elbo
from vaekit.models import MODELS


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_every_model_trains_saves_and_loads(name, arch, tmp_path):
    net = {"hidden": [32]} if arch == "mlp" else {"channels": [4, 8]}
    cfg = small_config(model={"name": name, "arch": arch, **net, "latent_dim": 3}, data={"limit": 256})
    cfg.train.epochs = 1
    run = vaekit.train(cfg, tmp_path / "run", log=lambda s: None)
    # Training lowered the bound: the same weights before training (epochs 0, same seed) score a
    # higher -ELBO (recon + KL; the recon loss of an autoencoder) on the images it trained on.
    untrained = vaekit.train(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=0)),
                             tmp_path / "init", log=lambda s: None, init_only=True)
    seen = open_data(cfg.data).train.subset(slice(0, 128))
    before, after = elbo(untrained.model, seen), elbo(run.model, seen)
    assert after["recon"] + after["kl"] < before["recon"] + before["kl"], (before, after)
    assert all(torch.isfinite(torch.tensor(v)) for k, v in run.metrics[-1].items() if isinstance(v, float))
    model = vaekit.load(tmp_path / "run")
    assert type(model) is type(run.model)
    for key, value in run.model.state_dict().items():
        assert torch.equal(value.cpu(), model.state_dict()[key]), key
    x = torch.rand(6, 1, 28, 28)
    run.model.eval()
    assert torch.equal(model.encode(x), run.model.encode(x))
    assert torch.equal(model.reconstruct(x), run.model.reconstruct(x))
    torch.manual_seed(0)
    a = model.sample(5)
    torch.manual_seed(0)
    assert torch.equal(a, run.model.sample(5)) and a.shape == (5, 1, 28, 28)
    terms = model(x, reduce=False)
    assert terms.loss.shape == (6,) and {"loss", "recon", "kl"} <= set(terms.items())
    # Every trainable parameter takes part in the loss: DDP (built without find_unused_parameters,
    # which costs a graph walk per step) would otherwise hang or fail on the first step.
    model.train()
    y = torch.arange(6) % 10
    model(x, y, step=10_000).loss.sum().backward()
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not unused, unused
