"""ONNX export: ``encoder.onnx``, ``decoder.onnx`` and ``vaekit-onnx.json``, checked by onnxruntime.

* encoder.onnx: x (B, *S) float32 -> the posterior's parameters (``mu``, ``logvar``; ``mu``,
  ``scale_tril`` for a full covariance), or the ``code`` (B, D) of an autoencoder.
* decoder.onnx: z (B, D) -> ``mean`` = E[x|z] (B, *S) and the likelihood's parameters
  (``logits`` for Bernoulli, ``sigma`` for a learned-variance Gaussian).
* vaekit-onnx.json: what a non-Python user needs: shapes and layout, pixel range and
  binarization, latent size, likelihood, the Gaussian ``sample`` draws z from, the verification.

A conditional model (``model.conditional``, the cvae) exports q(z|x, y) and p(x|z, y): both graphs
take a second input ``y`` (B, K) float32, the one-hot label (class c: y[:, c] = 1, the rest 0; a
soft label, a probability vector over the K classes, goes through the same graph). The graphs call
the conditional variant's declared ``posterior_y`` and ``decode_params_y``. Its vaekit-onnx.json has,
after ``input`` in both ``encoder`` and ``decoder``, a ``label`` entry: ``{"name": "y", "shape":
["batch", K], "dtype": "float32", "classes": K, "encoding": ...}`` (K = ``model.num_classes``), and
its ``verification.from`` says which labels were fed (the test labels, else 0..K-1 in turn). An
unconditional export has no ``label`` key: its description is unchanged (``vaekit-onnx/1``).

The graphs come from the TorchScript exporter (``dynamo=False``, opset 17): it gives the same
results as the torch.export-based one, faster and without onnxscript (export times: the
documentation's results page, docs/results.md). Afterwards onnxruntime runs both graphs on 256
test inputs (with their labels, for a conditional model), compared with PyTorch output by output;
a difference above 1e-4 fails the export.
"""

from __future__ import annotations

import io
import json
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
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
    """x (B, *S) -> the posterior's parameters (VAE family) or the code (autoencoders); a
    conditional model takes the one-hot label y (B, K) too: q(z|x, y)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.inputs = ["x", "y"] if model.conditional else ["x"]

    def outputs(self, x: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        if self.model.conditional:
            return self.model.posterior_y(x, y).params()
        if self.model.has_posterior:
            return self.model.posterior(x).params()
        return {"code": self.model.encode(x)}

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.outputs(*inputs).values())


class DecoderGraph(nn.Module):
    """z (B, D) -> E[x|z] and the likelihood's parameters, each (B, *S); a conditional model takes
    the one-hot label y (B, K) too: p(x|z, y)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.inputs = ["z", "y"] if model.conditional else ["z"]

    def outputs(self, z: Tensor, y: Tensor | None = None) -> dict[str, Tensor]:
        if self.model.conditional:
            out = self.model.decode_params_y(z, y)
        else:
            out = self.model.decode_params(z)  # (B, k*C, H, W) or (B, k*D_x)
        return {"mean": self.model.likelihood.mean(out), **self.model.likelihood.params(out)}

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.outputs(*inputs).values())


def check_exportable(model: nn.Module) -> list[str]:
    """Refuse (one line, naming the family) what cannot be exported; return notes on parts left out."""
    name, cfg = model.name, model.cfg
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


def _to_bytes(graph: nn.Module, examples: tuple[Tensor, ...], inputs: list[str], outs: list[str]) -> bytes:
    torch.onnx.register_custom_op_symbolic("aten::logaddexp", _logaddexp, OPSET)  # idempotent
    buf = io.BytesIO()
    axes = {n: {0: "batch"} for n in [*inputs, *outs]}
    with warnings.catch_warnings():  # the legacy exporter's deprecation and tracer warnings
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, examples, buf, input_names=inputs, output_names=outs, dynamic_axes=axes,
                          opset_version=OPSET, dynamo=False)
    return buf.getvalue()


def _max_diffs(session: Any, feeds: dict[str, Tensor], expected: dict[str, Tensor]) -> dict[str, float]:
    got = session.run(list(expected), {k: v.numpy() for k, v in feeds.items()})
    return {k: float((torch.from_numpy(g) - e).abs().max()) for (k, e), g in zip(expected.items(), got)}


def label_description(k: int) -> dict[str, Any]:
    """The second input ``y`` of a conditional model's graphs, for code outside Python."""
    return {"name": "y", "shape": ["batch", k], "dtype": "float32", "classes": k,
            "encoding": f"one-hot of the class c in 0..{k - 1}: y[i, c] = 1, every other entry 0 "
                        "(a soft label, a probability vector over the classes, also works)"}


def one_hot_labels(labels: Tensor, n: int, k: int) -> Tensor:
    """Integer labels (n,) -> the float32 one-hot (n, K) the graphs take; one line for a label
    outside 0..K-1 or a count that is not the inputs'."""
    labels = torch.as_tensor(labels).long().reshape(-1)
    if len(labels) != n:
        raise VaekitError(f"{len(labels)} verification labels for {n} inputs; give one label per input")
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= k):
        raise VaekitError(f"verification labels run {int(labels.min())}..{int(labels.max())}, "
                          f"but this model's labels are 0..{k - 1}")
    return F.one_hot(labels, k).to(torch.float32)


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


def export_onnx(run: Any, out: str | Path, *, inputs: Tensor | None = None, labels: Tensor | None = None,
                log: Callable[[str], None] = print) -> dict[str, Any]:
    """Write the two graphs and their description for ``run`` (a loaded :class:`~vaekit.Run`) into
    ``out``, verify them with onnxruntime on ``inputs`` (default: the first 256 test inputs of the
    run's data) and return the description, as written to ``vaekit-onnx.json``.

    A conditional model is verified with ``labels`` (B,) in 0..K-1 beside the inputs (default: the
    inputs' own labels when the run's data has them, else 0, 1, ..., K-1, 0, ... in turn)."""
    ort = onnxruntime()
    start = time.perf_counter()
    model = run.model.cpu().eval()
    if labels is not None and not model.conditional:  # given, so used or refused
        raise VaekitError(f"labels: a '{model.name}' model is not conditional on labels; its graphs take no y")
    notes = check_exportable(model)
    for note in notes:
        log(f"note: {note}")
    if inputs is not None:
        x, y, source = inputs, labels, "given inputs"
    else:
        x, y, source = verification_inputs(run)
        y = y if labels is None else labels
    feeds: dict[str, Tensor] = {"x": x}
    label: dict[str, Any] = {}  # the conditional model's y, in each graph's description
    if model.conditional:
        classes = model.num_classes
        if y is None:  # no labels: every class in turn, so each label's path is checked
            y, label_source = torch.arange(len(x)) % classes, f"labels 0..{classes - 1} in turn"
        else:
            label_source = "the given labels" if labels is not None else "their labels"
        feeds["y"] = one_hot_labels(y, len(x), classes)
        label = {"label": label_description(classes)}
        source = f"{source} with {label_source}"
    enc, dec = EncoderGraph(model), DecoderGraph(model)
    with torch.no_grad():
        enc_ref = enc.outputs(*feeds.values())
        code = "mu" if model.has_posterior else "code"
        z_feeds = {"z": enc_ref[code], **({"y": feeds["y"]} if model.conditional else {})}
        dec_ref = dec.outputs(*z_feeds.values())
    out = Path(out)
    graphs = {"encoder": (enc, feeds, enc_ref), "decoder": (dec, z_feeds, dec_ref)}
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    diffs: dict[str, dict[str, float]] = {}
    for part, (graph, feed, ref) in graphs.items():
        data = _to_bytes(graph, tuple(v[:2] for v in feed.values()), graph.inputs, list(ref))
        atomic_write_bytes(out / f"{part}.onnx", data)
        session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        diffs[part] = _max_diffs(session, feed, ref)
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
                    **label, "outputs": {k: ["batch", *v.shape[1:]] for k, v in enc_ref.items()},
                    "code": code},
        "decoder": {"file": "decoder.onnx", "input": {"name": "z", "shape": ["batch", model.latent_dim], "dtype": "float32"},
                    **label, "outputs": {k: ["batch", *v.shape[1:]] for k, v in dec_ref.items()}},
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


def verification_inputs(run: Any, n: int = VERIFY_INPUTS) -> tuple[Tensor, Tensor | None, str]:
    """The first ``n`` inputs of the run's test split (else its evaluation split) and their labels
    (None when the data has none); uniform noise in [0, 1] without labels when the data is not
    available here (e.g. a folder of someone else's images)."""
    from ..data import open_data

    try:
        data = open_data(run.config.data)
    except (VaekitError, OSError):
        g = torch.Generator().manual_seed(0)
        return (torch.rand(n, *run.model.shape, generator=g), None,
                "uniform random inputs (the run's data is not here)")
    name, split = data.pick_split()
    x = torch.as_tensor(split.x[:n], dtype=torch.float32)
    y = None if split.y is None else torch.as_tensor(split.y[:n]).long()
    return x, y, f"{data.name} test inputs" if name == "test" else f"{data.name} inputs"


__all__ = ["FORMAT", "METADATA", "OPSET", "ExportRefused", "VerificationFailed", "export_onnx"]
