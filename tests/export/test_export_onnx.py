"""ONNX export: every registered family is exported (and onnxruntime agrees with PyTorch) or refused
by name in one line; the graphs take any batch size; what a family cannot export is said."""

from __future__ import annotations

import json

import pytest
import torch

import vaekit
from vaekit.export.onnx import OPSET, TOLERANCE, ExportRefused, export_onnx
from vaekit.models import MODELS, build

ort = pytest.importorskip("onnxruntime")

REFUSED = {"cvae": "also take a label y"}  # whole model: nothing is written
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
def test_every_family_is_exported_or_refused_by_name(name, tmp_path):
    run = memory_run(name, tmp_path)
    x = torch.rand(256, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    out = tmp_path / "onnx"
    if name in REFUSED:
        with pytest.raises(ExportRefused, match=rf"^{name}: not exported: .*{REFUSED[name]}"):
            export_onnx(run, out, inputs=x)
        assert not out.exists()
        return
    lines: list[str] = []
    meta = export_onnx(run, out, inputs=x, log=lines.append)
    assert json.loads((out / "vaekit-onnx.json").read_text()) == meta
    assert meta["opset"] == OPSET and meta["format"] == "vaekit-onnx/1" and meta["latent_dim"] == 3
    assert "verified with onnxruntime on 256" in lines[-2]
    worst = max(v for part in meta["verification"]["max_abs_diff"].values() for v in part.values())
    assert worst <= TOLERANCE
    # Independently of the exporter's own check, at another batch size (the batch axis is dynamic).
    model, xb = run.model, x[:5]
    got = dict(zip(meta["encoder"]["outputs"], session(out / "encoder.onnx").run(None, {"x": xb.numpy()})))
    with torch.no_grad():
        want = model.posterior(xb).params() if model.has_posterior else {"code": model.encode(xb)}
    assert set(got) == set(want)
    for k in want:
        assert got[k].shape == tuple(want[k].shape)
        assert float((torch.from_numpy(got[k]) - want[k]).abs().max()) <= TOLERANCE, k
    z = torch.randn(7, 3)
    mean = session(out / "decoder.onnx").run(["mean"], {"z": z.numpy()})[0]
    assert mean.shape == (7, 1, 8, 8)
    assert float((torch.from_numpy(mean) - model.decode(z)).abs().max()) <= TOLERANCE
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
