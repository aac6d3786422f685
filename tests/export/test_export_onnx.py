"""ONNX export: every registered family is exported (and onnxruntime agrees with PyTorch); what
cannot be (a table likelihood, an undescribed one) is refused by name in one line; the graphs take any batch size; what a family cannot export is said; a
conditional model's graphs take the one-hot label y, which its description states."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import small_config

import vaekit
from vaekit import cli
from vaekit.errors import VaekitError
from vaekit.export.onnx import OPSET, TOLERANCE, export_onnx
from vaekit.models import MODELS, build

ort = pytest.importorskip("onnxruntime")

NO_PRIOR = {"vamp", "hvae"}  # graphs exported, the prior is not (not one Gaussian)


def memory_run(name: str, tmp_path, arch: str = "mlp") -> vaekit.Run:
    """An untrained run of family ``name`` on 8x8 images, in memory (export needs no training)."""
    cfg = vaekit.resolve("pytorch-example", overrides=[{
        "data": {"source": "digits"},
        "model": {"name": name, "arch": arch, "latent_dim": 3,
                  **({"channels": [4, 8]} if arch == "conv" else {"hidden": [16]}),  # the guard: each where it applies
                  "options": {"pseudo_inputs": 7} if name == "vamp" else {}}}])
    torch.manual_seed(0)
    model = build(cfg.model, (1, 8, 8)).eval()
    return vaekit.Run(dir=tmp_path, config=cfg, model=model)


def session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_family_is_exported(name, tmp_path):
    run = memory_run(name, tmp_path)
    x = torch.rand(256, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    out = tmp_path / "onnx"
    lines: list[str] = []
    meta = export_onnx(run, out, inputs=x, log=lines.append)
    assert json.loads((out / "vaekit-onnx.json").read_text()) == meta
    assert meta["opset"] == OPSET and meta["format"] == "vaekit-onnx/1" and meta["latent_dim"] == 3
    assert "verified with onnxruntime on 256" in lines[-2]
    worst = max(v for part in meta["verification"]["max_abs_diff"].values() for v in part.values())
    assert worst <= TOLERANCE
    # Independently of the exporter's own check, at another batch size (the batch axis is dynamic).
    model, xb = run.model, x[:5]
    labels = torch.tensor([3, 0, 9, 3, 1])  # a conditional model's y, in PyTorch's own label form
    y_in = {"y": F.one_hot(labels, 10).float().numpy()} if model.conditional else {}
    enc_feed = {"x": xb.numpy(), **y_in}
    got = dict(zip(meta["encoder"]["outputs"], session(out / "encoder.onnx").run(None, enc_feed)))
    with torch.no_grad():
        lab = (labels,) if model.conditional else ()  # the families' declared hooks take y only then
        want = model.posterior(xb, *lab).params() if model.has_posterior else {"code": model.encode(xb)}
    assert set(got) == set(want)
    for k in want:
        assert got[k].shape == tuple(want[k].shape)
        assert float((torch.from_numpy(got[k]) - want[k]).abs().max()) <= TOLERANCE, k
    z = torch.randn(7, 3)
    zl = torch.tensor([0, 1, 2, 3, 4, 5, 6])
    dec_feed = {"z": z.numpy(), **({"y": F.one_hot(zl, 10).float().numpy()} if model.conditional else {})}
    mean = session(out / "decoder.onnx").run(["mean"], dec_feed)[0]
    assert mean.shape == (7, 1, 8, 8)
    want_mean = model.decode(z, zl) if model.conditional else model.decode(z)
    assert float((torch.from_numpy(mean) - want_mean).abs().max()) <= TOLERANCE
    # The label is described exactly for the conditional families, and only there (vaekit-onnx/1's keys).
    assert ("label" in meta["encoder"], "label" in meta["decoder"]) == (model.conditional,) * 2
    if name in NO_PRIOR:
        assert meta["prior"] is None
        assert lines[0].startswith(f"note: {name}: its prior p(z) is not exported") and "decoder.onnx" in lines[0]
    else:
        prior = model.latent_prior()
        assert meta["prior"]["mean"] == prior["mean"].tolist()
        assert meta["prior"]["scale_tril"] == prior["scale_tril"].tolist()


def test_conv_and_learned_variance_export_their_parameters(tmp_path):
    run = memory_run("vae", tmp_path, arch="conv")
    run.config.model.likelihood = "gaussian-learned"
    run.model = build(run.config.model, (1, 8, 8)).eval()
    meta = export_onnx(run, tmp_path / "onnx", inputs=torch.rand(256, 1, 8, 8), log=lambda s: None)
    assert list(meta["decoder"]["outputs"]) == ["mean", "sigma"]
    z = torch.randn(4, 3)
    _, sigma = session(tmp_path / "onnx" / "decoder.onnx").run(None, {"z": z.numpy()})
    with torch.no_grad():
        ref = run.model.likelihood.params(run.model.decode_params(z))
    assert float((torch.from_numpy(sigma) - ref["sigma"]).abs().max()) <= TOLERANCE
    assert (sigma >= run.config.model.min_sigma).all()


UNCONDITIONAL_KEYS = {  # vaekit-onnx/1 as unconditional models have always written it
    "": {"format", "vaekit", "opset", "model", "latent_dim", "encoder", "decoder", "data", "likelihood",
         "prior", "not_exported", "verification"},
    "encoder": {"file", "input", "outputs", "code"},
    "decoder": {"file", "input", "outputs"},
    "verification": {"inputs", "from", "tolerance", "max_abs_diff", "onnxruntime", "torch"},
}


def test_an_unconditional_description_keeps_its_keys(tmp_path):
    meta = export_onnx(memory_run("vae", tmp_path), tmp_path / "onnx", inputs=torch.rand(16, 1, 8, 8),
                       log=lambda s: None)
    for part, keys in UNCONDITIONAL_KEYS.items():
        assert set(meta[part] if part else meta) == keys, part
    assert meta["verification"]["from"] == "given inputs"


@pytest.fixture(scope="module")
def cvae_export(tmp_path_factory):
    """A tiny cvae trained for one epoch on the labelled 8x8 digits, exported with the CLI."""
    root = tmp_path_factory.mktemp("cvae")
    cfg = small_config(data={"source": "digits"},
                       model={"name": "cvae", "hidden": [16], "latent_dim": 3, "options": {"classes": 10}})
    cfg.train.epochs = 1
    torch.manual_seed(0)
    vaekit.train(cfg, root / "run", log=lambda s: None)
    assert cli.main(["export", str(root / "run"), "--format", "onnx", "-o", str(root / "onnx")]) == 0
    return vaekit.load(root / "run"), root / "onnx"


def test_cvae_graphs_match_posterior_y_and_decode_params_y(cvae_export):
    model, out = cvae_export
    g = torch.Generator().manual_seed(3)
    x = torch.rand(6, 1, 8, 8, generator=g)
    onehot = F.one_hot(torch.tensor([0, 4, 9, 4, 2, 7]), 10).float()
    soft = torch.softmax(torch.randn(6, 10, generator=g), 1)  # interpolated labels go through the same graph
    z = torch.randn(6, 3, generator=g)
    enc, dec = session(out / "encoder.onnx"), session(out / "decoder.onnx")
    assert [i.name for i in enc.get_inputs()] == ["x", "y"]
    assert [i.name for i in dec.get_inputs()] == ["z", "y"]
    for y in (onehot, soft):
        mu, logvar = enc.run(["mu", "logvar"], {"x": x.numpy(), "y": y.numpy()})
        mean, logits = dec.run(["mean", "logits"], {"z": z.numpy(), "y": y.numpy()})
        with torch.no_grad():
            q = model.posterior_y(x, y)
            params = model.decode_params_y(z, y)
        for got, want in [(mu, q.mu), (logvar, q.logvar), (logits, params), (mean, torch.sigmoid(params))]:
            assert got.shape == tuple(want.shape)
            assert float((torch.from_numpy(got) - want).abs().max()) <= TOLERANCE
    # The one-hot graphs are the model's label-taking API: posterior(x, y) and decode(z, y) with int labels.
    with torch.no_grad():
        mu = enc.run(["mu"], {"x": x.numpy(), "y": onehot.numpy()})[0]
        assert float((torch.from_numpy(mu) - model.encode(x, onehot.argmax(1))).abs().max()) <= TOLERANCE


def test_the_label_enters_the_decoder_graph(cvae_export):
    model, out = cvae_export
    dec = session(out / "decoder.onnx")
    z = np.zeros((10, 3), np.float32)
    means = dec.run(["mean"], {"z": z, "y": np.eye(10, dtype=np.float32)})[0]  # one code, every class
    per_class = means.reshape(10, -1)
    gaps = np.abs(per_class[:, None] - per_class[None]).max(-1)  # (10, 10) largest pixel difference
    assert (gaps + np.eye(10) > 1e-3).all()  # every pair of labels gives another image
    want = model.decode(torch.zeros(10, 3), torch.arange(10))
    assert float((torch.from_numpy(means) - want).abs().max()) <= TOLERANCE


def test_the_description_states_the_label_and_verification_used_the_true_labels(cvae_export):
    model, out = cvae_export
    meta = json.loads((out / "vaekit-onnx.json").read_text())
    assert meta["format"] == "vaekit-onnx/1" and meta["model"] == "cvae" and model.num_classes == 10
    for part in ("encoder", "decoder"):
        label = meta[part]["label"]
        assert {k: label[k] for k in ("name", "shape", "dtype", "classes")} == \
            {"name": "y", "shape": ["batch", 10], "dtype": "float32", "classes": 10}
        assert label["encoding"].startswith("one-hot of the class c in 0..9")
        assert set(meta[part]) == UNCONDITIONAL_KEYS[part] | {"label"}
    assert meta["verification"]["inputs"] == 256
    assert meta["verification"]["from"] == "digits test inputs with their labels"
    assert max(v for d in meta["verification"]["max_abs_diff"].values() for v in d.values()) <= TOLERANCE
    assert meta["prior"]["mean"] == [0.0] * 3  # z ~ N(0, I) whatever the label


def test_cvae_verification_labels_given_cycled_or_refused(tmp_path):
    run = memory_run("cvae", tmp_path)
    x = torch.rand(12, 1, 8, 8)
    lines: list[str] = []
    meta = export_onnx(run, tmp_path / "a", inputs=x, log=lines.append)
    assert meta["verification"]["from"] == "given inputs with labels 0..9 in turn"
    assert "on 12 given inputs with labels 0..9 in turn: max abs diff" in lines[-2]
    meta = export_onnx(run, tmp_path / "b", inputs=x, labels=torch.full((12,), 5), log=lambda s: None)
    assert meta["verification"]["from"] == "given inputs with the given labels"
    refused = r"^verification labels run 0\.\.10, but this model's labels are 0\.\.9$"
    with pytest.raises(VaekitError, match=refused):
        export_onnx(run, tmp_path / "c", inputs=x, labels=torch.arange(12) % 11, log=lambda s: None)
    with pytest.raises(VaekitError, match=r"^3 verification labels for 12 inputs"):
        export_onnx(run, tmp_path / "d", inputs=x, labels=torch.tensor([1, 2, 3]), log=lambda s: None)
    # labels given for a model that takes none: refused, not ignored, before anything is written
    with pytest.raises(VaekitError, match=r"^labels: a 'vae' model is not conditional on labels"):
        export_onnx(memory_run("vae", tmp_path), tmp_path / "e", inputs=x, labels=torch.zeros(12), log=lambda s: None)
    assert not (tmp_path / "e").exists()
