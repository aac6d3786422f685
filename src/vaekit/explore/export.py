"""``vaekit explore RUN --export page.html``: one self-contained file that decodes in the page.

The decoder (and, where it can, the encoder) is written as a *plan*: a list of ops (linear,
conv, transposed conv, activation, reshape, flatten) over one float32 weight blob, which
``page/nn.js`` runs in plain JavaScript. Before a plan is written it is run here too, by
:func:`run_plan` (the same ops in PyTorch's functional API, from the plan's own numbers), and
compared with ``model.decode`` / ``model.encode``: a model whose decode is anything else (an
HVAE's encoder, a mixed-type table likelihood, a layer nn.js does not know) is refused with one
line, or, for the encoder only, exported without drawing. The page then needs nothing but itself:
assets inlined, a Content-Security-Policy that forbids every network request.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checkpoint import atomic_write_text
from ..errors import VaekitError
from ..likelihoods import Bernoulli, Gaussian, LearnedGaussian
from ..nn import ConvDecoder, ConvEncoder, MLPDecoder, MLPEncoder
from ..nn import conv_ops
from ..nn.mlp import ACTIVATIONS
from ..viz import latent as L
from .api import Explorer, b64_f32
from .server import SCRIPTS, read_asset

TOLERANCE = 1e-5  # plan vs model, in PyTorch; the browser test holds the page to 1e-4
CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
       "img-src data: blob:; connect-src 'none'; form-action 'none'; base-uri 'none'")
ACT_NAMES = {cls: name for name, cls in ACTIVATIONS.items()} | {nn.Sigmoid: "sigmoid", nn.Identity: "identity",
                                                                 conv_ops.ReLU: "relu"}


class Unsupported(Exception):
    """A module the page cannot run."""


class Weights:
    """The weight blob: tensors appended as float32, addressed by offset (in floats)."""

    def __init__(self) -> None:
        self.parts: list[Tensor] = []
        self.size = 0

    def add(self, t: Tensor) -> int:
        offset = self.size
        self.parts.append(t.detach().float().flatten().cpu())
        self.size += t.numel()
        return offset

    def blob(self) -> Tensor:
        return torch.cat(self.parts) if self.parts else torch.zeros(0)


def _ops(module: nn.Module, w: Weights) -> list[dict[str, Any]]:
    """The ops of a Sequential stack (nested stacks flattened), in order."""
    if isinstance(module, nn.Sequential):
        return [op for child in module for op in _ops(child, w)]
    if isinstance(module, nn.Linear):
        b = w.add(module.bias) if module.bias is not None else -1
        return [{"op": "linear", "w": w.add(module.weight), "b": b, "in": module.in_features, "out": module.out_features}]
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        k, s, p = module.kernel_size, module.stride, module.padding
        if not (k[0] == k[1] and s[0] == s[1] and p[0] == p[1] and module.groups == 1 and module.dilation == (1, 1)
                and module.bias is not None and module.padding_mode == "zeros"):
            raise Unsupported(f"{type(module).__name__} with non-square, grouped or dilated kernels")
        common = {"b": w.add(module.bias), "k": k[0], "s": s[0], "p": p[0]}
        if isinstance(module, nn.Conv2d):  # (Co, Ci, k, k) -> (k, k, Ci, Co)
            return [{"op": "conv", "w": w.add(module.weight.permute(2, 3, 1, 0)), "co": module.out_channels, **common}]
        op = module.output_padding  # (Ci, Co, k, k) -> (Ci, k, k, Co)
        return [{"op": "convT", "w": w.add(module.weight.permute(0, 2, 3, 1)), "co": module.out_channels,
                 "oph": op[0], "opw": op[1], **common}]
    if type(module) in ACT_NAMES and (not isinstance(module, nn.LeakyReLU) or module.negative_slope == 0.01) \
            and (not isinstance(module, nn.ELU) or module.alpha == 1.0) \
            and (not isinstance(module, nn.Softplus) or (module.beta, module.threshold) == (1.0, 20.0)) \
            and (not isinstance(module, nn.GELU) or module.approximate == "none"):
        return [{"op": "act", "fn": ACT_NAMES[type(module)]}]
    raise Unsupported(f"a {type(module).__name__} layer")


def net_ops(module: nn.Module, w: Weights) -> tuple[list[dict[str, Any]], list[int] | None]:
    """(ops, input image shape or None) of one of vaekit's MLP/conv encoders or decoders."""
    if isinstance(module, MLPDecoder):
        return _ops(module.net, w), None  # its output, flat, is already in (C, H, W) order
    if isinstance(module, ConvDecoder):
        return _ops(module.fc, w) + [{"op": "reshape", "shape": list(module.start)}] + _ops(module.deconv, w), None
    if isinstance(module, MLPEncoder):
        return [{"op": "flatten"}] + _ops(module.net, w), None
    if isinstance(module, ConvEncoder):
        return _ops(module.conv, w) + [{"op": "flatten"}] + _ops(module.head, w), []
    if isinstance(module, nn.Sequential) and len(module) and isinstance(module[0], (MLPEncoder, ConvEncoder)):
        first, image = net_ops(module[0], w)  # e.g. the sparse autoencoder's Sequential(encoder, Sigmoid)
        return first + _ops(module[1:], w), image
    raise Unsupported(f"a {type(module).__name__}")  # e.g. an encoder with extra heads (hvae)


# ---- the plans' reference interpreter -------------------------------------------------------------


def run_plan(ops: list[dict[str, Any]], blob: Tensor, x: Tensor) -> Tensor:
    """The ops on a batch, float64, read back from the blob exactly as nn.js reads them: (B, ...)."""
    acts = {"sigmoid": torch.sigmoid, "identity": lambda t: t, **{n: c() for n, c in ACTIVATIONS.items()}}
    W = blob.double()
    h = x.double()
    for op in ops:
        kind = op["op"]
        if kind == "linear":
            weight = W[op["w"] : op["w"] + op["in"] * op["out"]].view(op["out"], op["in"])
            h = F.linear(h.flatten(1), weight, W[op["b"] : op["b"] + op["out"]] if op["b"] >= 0 else None)
        elif kind in ("conv", "convT"):
            ci, co, k = h.shape[1], op["co"], op["k"]
            flat = W[op["w"] : op["w"] + ci * co * k * k]
            bias = W[op["b"] : op["b"] + co]
            if kind == "conv":
                h = F.conv2d(h, flat.view(k, k, ci, co).permute(3, 2, 0, 1), bias, op["s"], op["p"])
            else:
                h = F.conv_transpose2d(h, flat.view(ci, k, k, co).permute(0, 3, 1, 2), bias, op["s"], op["p"],
                                       (op["oph"], op["opw"]))
        elif kind == "reshape":
            h = h.reshape(len(h), *op["shape"])
        elif kind == "flatten":
            h = h.flatten(1)
        elif kind == "act":
            h = acts[op["fn"]](h)
    return h.flatten(1)


def _one_hot(label: int, k: int, n: int) -> Tensor:
    return F.one_hot(torch.full((n,), label), k).float() if k else torch.zeros(n, 0)


def decoder_plan(ex: Explorer, w: Weights) -> dict[str, Any]:
    """The decoder's plan, checked against ``model.decode`` on test codes and wide random codes."""
    model = ex.model
    lik = model.likelihood
    if not isinstance(lik, (Bernoulli, Gaussian, LearnedGaussian)):
        raise Unsupported(f"its '{model.cfg.likelihood}' likelihood")
    fn = "sigmoid" if isinstance(lik, Bernoulli) else "identity"
    ops, _ = net_ops(model.decoder, w)
    k, d = ex.conditional, model.latent_dim
    plan = {"ops": ops, "input": d + k, "label": k, "mean": {"fn": fn, "size": math.prod(model.shape)}}
    z = torch.cat([ex.codes[:16], 3 * torch.randn(16, d, generator=torch.Generator().manual_seed(0))])
    blob = w.blob()
    for label in range(k) if k else [None]:
        inp = torch.cat([z, _one_hot(label or 0, k, len(z))], 1)
        mine = run_plan(ops, blob, inp)[:, : plan["mean"]["size"]]  # a learned variance: the mean's half
        mine = torch.sigmoid(mine) if fn == "sigmoid" else mine
        theirs = ex.decode(z, label).double().flatten(1)
        err = float((mine - theirs).abs().max())
        if not err <= TOLERANCE:
            raise Unsupported(f"a decode that is not its decoder network followed by the likelihood's mean "
                              f"(they differ by {err:.2g})")
    return plan


def encoder_plan(ex: Explorer, w: Weights) -> tuple[dict[str, Any] | None, str | None]:
    """The encoder's plan and None, or None and why it is left out (then the page cannot draw)."""
    model, mark = ex.model, (len(w.parts), w.size)
    try:
        ops, image = net_ops(getattr(model, "encoder", None), w)  # (not every family need have one)
        k, d = ex.conditional, model.latent_dim
        if k and image is not None:
            raise Unsupported("a conditional conv encoder")
        out = next(op["out"] for op in reversed(ops) if op["op"] == "linear")
        gaussian = L.has_posterior(model) and out == 2 * d
        if out != (2 * d if gaussian else d):
            raise Unsupported(f"an encoder of {out} outputs for a {d}-D code")
        plan = {"ops": ops, "image": list(model.shape) if image is not None else None, "label": k,
                "latent": d, "gaussian": gaussian}
        x = ex.split.x[:16]
        label = 0 if k else None
        inp = x if image is not None else torch.cat([x.flatten(1), _one_hot(0, k, len(x))], 1)
        h = run_plan(ops, w.blob(), inp)
        y = () if label is None else (torch.zeros(len(x), dtype=torch.long),)
        with torch.no_grad():
            want = [model.encode(x, *y)] + ([model.posterior(x, *y).std] if gaussian else [])
        got = [h[:, :d]] + ([torch.exp(0.5 * h[:, d : 2 * d])] if gaussian else [])
        err = max(float((g - t.double()).abs().max()) for g, t in zip(got, want))
        if not err <= TOLERANCE:
            raise Unsupported(f"an encode that is not its encoder network (they differ by {err:.2g})")
        return plan, None
    except Unsupported as why:
        del w.parts[mark[0] :]
        w.size = mark[1]
        return None, f"drawing is off in this file: the page cannot run the encoder ({why})"


def score_plan(ex: Explorer, enc: dict[str, Any] | None) -> dict[str, Any] | None:
    """How the page scores a drawing like :meth:`Explorer.score`: a diagonal Gaussian posterior, a
    N(0, I) prior (analytic KL), a Bernoulli or fixed-variance Gaussian likelihood."""
    if enc is None or not enc["gaussian"] or not L.has_standard_prior(ex.model) or ex.conditional:
        return None
    lik = ex.model.likelihood
    if isinstance(lik, Bernoulli):
        return {"kind": "bernoulli", "samples": ex.score_samples}
    if isinstance(lik, Gaussian):
        return {"kind": "gaussian", "sigma": math.exp(lik.log_sigma), "samples": ex.score_samples}
    return None


def page_plan(ex: Explorer) -> dict[str, Any]:
    """The networks the page runs: decoder, encoder (or why not), scoring, and the weight blob.

    Raises :class:`Unsupported` when the decoder cannot be run in the page.
    """
    w = Weights()
    dec = decoder_plan(ex, w)
    enc, note = encoder_plan(ex, w)
    return {"decoder": dec, "encoder": enc, "score": score_plan(ex, enc), "note": note,
            "weights": b64_f32(w.blob())}


def build_page(ex: Explorer) -> str:
    """The exported HTML page, as a string."""
    try:
        plan = page_plan(ex)
    except Unsupported as why:
        raise VaekitError(f"--export: the page cannot run this '{ex.model.name}' model's decoder ({why}); "
                          f"serve it with 'vaekit explore {ex.run_dir}' instead") from None
    data = json.dumps({"info": ex.info(), "plan": plan}, allow_nan=False, separators=(",", ":")).replace("</", "<\\/")
    scripts = f"<script>window.VAEKIT_EMBED={data};</script>\n" + "\n".join(
        f"<script>{read_asset(name)}</script>" for name in SCRIPTS)
    style = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n<style>{read_asset("style.css")}</style>'
    return read_asset("index.html").replace("<!--STYLE-->", style).replace("<!--SCRIPTS-->", scripts)


def export_page(ex: Explorer, out: str | Path) -> Path:
    """Write the page atomically; returns its path."""
    path = Path(out)
    atomic_write_text(path, build_page(ex))
    return path


__all__ = ["Unsupported", "build_page", "decoder_plan", "encoder_plan", "export_page", "page_plan", "run_plan"]
