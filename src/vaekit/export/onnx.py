"""ONNX export: ``encoder.onnx``, ``decoder.onnx`` and ``vaekit-onnx.json``, checked by onnxruntime.

* encoder.onnx: x (B, *S) float32 -> the posterior's parameters (``mu``, ``logvar``; ``mu``,
  ``scale_tril`` for a full covariance), or the ``code`` (B, D) of an autoencoder.
* decoder.onnx: z (B, D) -> ``mean`` = E[x|z] (B, *S) and the likelihood's parameters
  (``logits`` for Bernoulli, ``sigma`` for a learned-variance Gaussian).
* vaekit-onnx.json: what a non-Python user needs: shapes and layout, pixel range and
  binarization, latent size, likelihood, the Gaussian ``sample`` draws z from, the verification.

The graphs come from the TorchScript exporter (``dynamo=False``, opset 17): it gives the same
results as the torch.export-based one, faster and without onnxscript (export times: the
documentation's results page, docs/results.md). Afterwards onnxruntime runs both graphs on 256
test inputs, compared with PyTorch output by output; a difference above 1e-4 fails the export.
"""

from __future__ import annotations

import io
import json
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from .. import __version__
from ..checkpoint import atomic_write_bytes, atomic_write_text
from ..errors import VaekitError

OPSET = 17
FORMAT = "vaekit-onnx/1"
VERIFY_INPUTS = 256
TOLERANCE = 1e-4
METADATA = "vaekit-onnx.json"


class ExportRefused(VaekitError):
    """This model (or this part of it) has no ONNX form vaekit can describe."""


class VerificationFailed(VaekitError):
    exit_code = 1


def onnxruntime() -> Any:
    try:
        import onnx  # noqa: F401  (torch's exporter writes through it)
        import onnxruntime as ort
    except ImportError:
        raise VaekitError("ONNX export needs onnx and onnxruntime: pip install 'vaekit[onnx]'") from None
    return ort


class EncoderGraph(nn.Module):
    """x (B, *S) -> the posterior's parameters (VAE family) or the code (autoencoders)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def outputs(self, x: Tensor) -> dict[str, Tensor]:
        if self.model.has_posterior:
            return self.model.posterior(x).params()
        return {"code": self.model.encode(x)}

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.outputs(x).values())


class DecoderGraph(nn.Module):
    """z (B, D) -> E[x|z] and the likelihood's parameters, each (B, *S)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def outputs(self, z: Tensor) -> dict[str, Tensor]:
        out = self.model.decode_params(z)  # (B, k*C, H, W) or (B, k*D_x)
        return {"mean": self.model.likelihood.mean(out), **self.model.likelihood.params(out)}

    def forward(self, z: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.outputs(z).values())


def check_exportable(model: nn.Module) -> list[str]:
    """Refuse (one line, naming the family) what cannot be exported; return notes on parts left out."""
    name, cfg = model.name, model.cfg
    if model.conditional:
        raise ExportRefused(f"{name}: not exported: its encoder and decoder also take a label y, which "
                            f"{FORMAT} does not describe")
    if model.likelihood.table:  # the declared trait: any table likelihood, built in or registered
        raise ExportRefused(f"{name}: not exported: the '{cfg.likelihood}' likelihood of a table (typed columns) "
                            f"has no {FORMAT} description; image and array models export")
    if cfg.likelihood not in DESCRIBED:  # e.g. one registered from user code
        raise ExportRefused(f"{name}: not exported: the '{cfg.likelihood}' likelihood has no {FORMAT} description "
                            f"(described: {', '.join(DESCRIBED)})")
    if model.latent_prior() is None:
        return [f"{name}: its prior p(z) is not exported (not a single Gaussian); encoder.onnx and decoder.onnx "
                "still are: encode and decode outside Python, sample with vaekit"]
    return []


def _logaddexp(g: Any, a: Any, b: Any) -> Any:
    """ONNX for aten::logaddexp (the HVAE's precision weighting), which opset 17 lacks:
    max(a, b) + log(1 + exp(-|a - b|)), the stable form PyTorch computes too."""
    one = g.op("Constant", value_t=torch.tensor(1.0))
    tail = g.op("Log", g.op("Add", one, g.op("Exp", g.op("Neg", g.op("Abs", g.op("Sub", a, b))))))
    return g.op("Add", g.op("Max", a, b), tail)


def _to_bytes(graph: nn.Module, example: Tensor, inp: str, outs: list[str]) -> bytes:
    torch.onnx.register_custom_op_symbolic("aten::logaddexp", _logaddexp, OPSET)  # idempotent
    buf = io.BytesIO()
    axes = {n: {0: "batch"} for n in [inp, *outs]}
    with warnings.catch_warnings():  # the legacy exporter's deprecation and tracer warnings
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, (example,), buf, input_names=[inp], output_names=outs, dynamic_axes=axes,
                          opset_version=OPSET, dynamo=False)
    return buf.getvalue()


def _max_diffs(session: Any, feed: Tensor, expected: dict[str, Tensor]) -> dict[str, float]:
    got = session.run(list(expected), {session.get_inputs()[0].name: feed.numpy()})
    return {k: float((torch.from_numpy(g) - e).abs().max()) for (k, e), g in zip(expected.items(), got)}


def data_description(cfg: Any) -> dict[str, Any]:
    """How the training data was prepared: what an input to encoder.onnx must look like."""
    d = cfg.data
    binarized = {
        "none": "no: continuous intensities",
        "threshold": f"yes: pixel > {d.threshold} -> 1, else 0",
        "static": "yes: one fixed Bernoulli draw per pixel (feed 0/1 values, or intensities as an approximation)",
        "dynamic": "yes: a fresh Bernoulli draw per pixel each epoch (feed 0/1 values, or intensities)",
    }[d.binarize]
    return {"source": d.source, "pixel_range": [0.0, 1.0], "scaling": "8-bit pixels divided by 255",
            "binarize": d.binarize, "binarized": binarized}


DESCRIBED = ("bernoulli", "gaussian", "gaussian-learned")  # the likelihoods the format describes


def likelihood_description(cfg: Any) -> dict[str, Any]:
    m = cfg.model
    return {
        "bernoulli": {"name": "bernoulli", "mean": "sigmoid(logits): the probability that a pixel is 1"},
        "gaussian": {"name": "gaussian", "mean": "the mean", "sigma": m.sigma},
        "gaussian-learned": {"name": "gaussian-learned", "mean": "the mean",
                             "sigma": f"per pixel, min_sigma {m.min_sigma} + softplus(raw)"},
    }[m.likelihood]


def export_onnx(run: Any, out: str | Path, *, inputs: Tensor | None = None,
                log: Callable[[str], None] = print) -> dict[str, Any]:
    """Write the two graphs and their description for ``run`` (a loaded :class:`~vaekit.Run`) into
    ``out``, verify them with onnxruntime on ``inputs`` (default: the first 256 test inputs of the
    run's data) and return the description, as written to ``vaekit-onnx.json``."""
    ort = onnxruntime()
    start = time.perf_counter()
    model = run.model.cpu().eval()
    notes = check_exportable(model)
    for note in notes:
        log(f"note: {note}")
    x, source = (inputs, "given inputs") if inputs is not None else verification_inputs(run)
    enc, dec = EncoderGraph(model), DecoderGraph(model)
    with torch.no_grad():
        enc_ref = enc.outputs(x)
        code = "mu" if model.has_posterior else "code"
        z = enc_ref[code]
        dec_ref = dec.outputs(z)
    out = Path(out)
    graphs = {"encoder": (enc, x, "x", enc_ref), "decoder": (dec, z, "z", dec_ref)}
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    diffs: dict[str, dict[str, float]] = {}
    for part, (graph, example, inp, ref) in graphs.items():
        data = _to_bytes(graph, example[:2], inp, list(ref))
        atomic_write_bytes(out / f"{part}.onnx", data)
        session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        diffs[part] = _max_diffs(session, example, ref)
    worst = max(v for d in diffs.values() for v in d.values())
    prior = model.latent_prior()
    meta = {
        "format": FORMAT,
        "vaekit": __version__,
        "opset": OPSET,
        "model": model.name,
        "latent_dim": model.latent_dim,
        "encoder": {"file": "encoder.onnx", "input": {"name": "x", "shape": ["batch", *model.shape], "dtype": "float32",
                                                     "layout": "NCHW" if len(model.shape) == 3 else "flat"},
                    "outputs": {k: ["batch", *v.shape[1:]] for k, v in enc_ref.items()}, "code": code},
        "decoder": {"file": "decoder.onnx", "input": {"name": "z", "shape": ["batch", model.latent_dim], "dtype": "float32"},
                    "outputs": {k: ["batch", *v.shape[1:]] for k, v in dec_ref.items()}},
        "data": data_description(run.config),
        "likelihood": likelihood_description(run.config),
        "prior": None if prior is None else {
            "kind": "gaussian", "use": "z = mean + scale_tril @ eps, eps ~ N(0, I); scale eps by a temperature",
            "mean": prior["mean"].tolist(), "scale_tril": prior["scale_tril"].tolist()},
        "not_exported": notes,
        "verification": {"inputs": len(x), "from": source, "tolerance": TOLERANCE, "max_abs_diff": diffs,
                         "onnxruntime": ort.__version__, "torch": torch.__version__},
    }
    atomic_write_text(out / METADATA, json.dumps(meta, indent=2) + "\n")
    shown = ", ".join(f"{p}.{k} {v:.1e}" for p, d in diffs.items() for k, v in d.items())
    if not worst <= TOLERANCE:  # also catches nan
        raise VerificationFailed(f"onnxruntime differs from PyTorch by {worst:.3g} > {TOLERANCE} ({shown}); "
                                 f"the files in {out} are not trustworthy")
    log(f"verified with onnxruntime on {len(x)} {source}: max abs diff {worst:.2e} <= {TOLERANCE} ({shown})")
    log(f"wrote {out}/encoder.onnx, decoder.onnx, {METADATA} (opset {OPSET}) in {time.perf_counter() - start:.1f}s")
    return meta


def verification_inputs(run: Any, n: int = VERIFY_INPUTS) -> tuple[Tensor, str]:
    """The first ``n`` inputs of the run's test split (else its evaluation split); uniform noise in
    [0, 1] when the data is not available here (e.g. a folder of someone else's images)."""
    from ..data import open_data

    try:
        data = open_data(run.config.data)
    except (VaekitError, OSError):
        g = torch.Generator().manual_seed(0)
        return torch.rand(n, *run.model.shape, generator=g), "uniform random inputs (the run's data is not here)"
    name, split = data.pick_split()
    x = split.x[:n]
    return torch.as_tensor(x, dtype=torch.float32), f"{data.name} test inputs" if name == "test" else f"{data.name} inputs"


__all__ = ["FORMAT", "METADATA", "OPSET", "ExportRefused", "VerificationFailed", "export_onnx"]
