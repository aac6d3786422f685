"use strict";
// Runs a vaekit encoder/decoder exported by vaekit/explore/export.py, in plain JavaScript.
//
// A network is a list of ops over one tensor. Vectors are {v, n}; images are {v, c, h, w} kept
// channels-last (HWC), so the innermost loop of a (transposed) convolution runs over output
// channels, contiguous in both the output and the weights (export.py permutes conv weights to
// (k, k, Cin, Cout) and transposed-conv weights to (Cin, k, k, Cout)). Sums accumulate in
// Float64Array: the page's pixels then match PyTorch's float32 ones to ~1e-6.
const NN = (() => {
  function b64bytes(s) {
    const bin = atob(s), out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  const b64f32 = (s) => new Float32Array(b64bytes(s).buffer);

  // erf for GELU: Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7).
  function erf(x) {
    const s = x < 0 ? -1 : 1, a = Math.abs(x), t = 1 / (1 + 0.3275911 * a);
    const y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-a * a);
    return s * y;
  }
  // The activations of vaekit.nn.mlp.ACTIVATIONS with PyTorch's defaults (ELU alpha 1, leaky 0.01,
  // softplus beta 1 with its threshold 20), plus the sigmoid of a sparse autoencoder's code.
  const ACT = {
    relu: (x) => (x > 0 ? x : 0),
    tanh: Math.tanh,
    elu: (x) => (x > 0 ? x : Math.expm1(x)),
    leaky_relu: (x) => (x > 0 ? x : 0.01 * x),
    softplus: (x) => (x > 20 ? x : Math.log1p(Math.exp(x))),
    gelu: (x) => 0.5 * x * (1 + erf(x / Math.SQRT2)),
    silu: (x) => x / (1 + Math.exp(-x)),
    sigmoid: (x) => 1 / (1 + Math.exp(-x)),
    identity: (x) => x,
  };

  function linear(t, W, op) {
    const x = t.v, nin = op.in, nout = op.out, out = new Float64Array(nout);
    const w = W.subarray(op.w, op.w + nin * nout); // (out, in) row-major, as torch stores it
    for (let o = 0; o < nout; o++) {
      let acc = op.b >= 0 ? W[op.b + o] : 0;
      const r = o * nin;
      for (let i = 0; i < nin; i++) acc += w[r + i] * x[i];
      out[o] = acc;
    }
    return { v: out, n: nout };
  }

  // Conv2d, padding p, stride s: out[oy, ox, co] = b[co] + sum in[oy*s-p+ky, ox*s-p+kx, ci] w[ky, kx, ci, co]
  function conv(t, W, op) {
    const { c: ci, h: H, w: Wd } = t, x = t.v, co = op.co, k = op.k, s = op.s, p = op.p;
    const Ho = Math.floor((H + 2 * p - k) / s) + 1, Wo = Math.floor((Wd + 2 * p - k) / s) + 1;
    const out = new Float64Array(Ho * Wo * co), w = W, wo = op.w;
    for (let oy = 0; oy < Ho; oy++) for (let ox = 0; ox < Wo; ox++) {
      const ob = (oy * Wo + ox) * co;
      for (let c = 0; c < co; c++) out[ob + c] = W[op.b + c];
      for (let ky = 0; ky < k; ky++) {
        const iy = oy * s - p + ky;
        if (iy < 0 || iy >= H) continue;
        for (let kx = 0; kx < k; kx++) {
          const ix = ox * s - p + kx;
          if (ix < 0 || ix >= Wd) continue;
          const ib = (iy * Wd + ix) * ci, wb = wo + (ky * k + kx) * ci * co;
          for (let c = 0; c < ci; c++) {
            const v = x[ib + c];
            if (v === 0) continue; // ReLU zeros: free
            const wr = wb + c * co;
            for (let d = 0; d < co; d++) out[ob + d] += v * w[wr + d];
          }
        }
      }
    }
    return { v: out, c: co, h: Ho, w: Wo };
  }

  // ConvTranspose2d: every input pixel scatters into out[iy*s-p+ky, ix*s-p+kx, :]; output size
  // (H-1)*s - 2p + k + output_padding, as PyTorch defines it. The output-channel loop is unrolled
  // by 4 (V8 does not vectorise; this halves the loop overhead of the 64- and 32-channel layers).
  function convT(t, W, op) {
    const { c: ci, h: H, w: Wd } = t, x = t.v, co = op.co, k = op.k, s = op.s, p = op.p;
    const Ho = (H - 1) * s - 2 * p + k + op.oph, Wo = (Wd - 1) * s - 2 * p + k + op.opw;
    const out = new Float64Array(Ho * Wo * co), w = W, wo = op.w, co4 = co - (co % 4);
    for (let i = 0; i < Ho * Wo; i++) for (let d = 0; d < co; d++) out[i * co + d] = W[op.b + d];
    for (let iy = 0; iy < H; iy++) for (let ix = 0; ix < Wd; ix++) {
      const ib = (iy * Wd + ix) * ci;
      for (let ky = 0; ky < k; ky++) {
        const oy = iy * s - p + ky;
        if (oy < 0 || oy >= Ho) continue;
        for (let kx = 0; kx < k; kx++) {
          const ox = ix * s - p + kx;
          if (ox < 0 || ox >= Wo) continue;
          const ob = (oy * Wo + ox) * co;
          if (co === 1) { // one output channel: a dot product over the input channels
            let acc = 0;
            for (let c = 0; c < ci; c++) acc += x[ib + c] * w[wo + (c * k + ky) * k + kx];
            out[ob] += acc;
            continue;
          }
          for (let c = 0; c < ci; c++) {
            const v = x[ib + c];
            if (v === 0) continue; // ReLU zeros: free
            const wb = wo + ((c * k + ky) * k + kx) * co;
            let d = 0;
            for (; d < co4; d += 4) {
              out[ob + d] += v * w[wb + d]; out[ob + d + 1] += v * w[wb + d + 1];
              out[ob + d + 2] += v * w[wb + d + 2]; out[ob + d + 3] += v * w[wb + d + 3];
            }
            for (; d < co; d++) out[ob + d] += v * w[wb + d];
          }
        }
      }
    }
    return { v: out, c: co, h: Ho, w: Wo };
  }

  // A vector in CHW order -> an HWC image, and back.
  function toImage(t, [c, h, w]) {
    const out = new Float64Array(c * h * w), x = t.v;
    for (let ch = 0; ch < c; ch++) for (let i = 0; i < h * w; i++) out[i * c + ch] = x[ch * h * w + i];
    return { v: out, c, h, w };
  }
  function toVector(t) {
    if (t.n !== undefined) return t;
    const { c, h, w } = t, n = c * h * w, out = new Float64Array(n), x = t.v;
    for (let ch = 0; ch < c; ch++) for (let i = 0; i < h * w; i++) out[ch * h * w + i] = x[i * c + ch];
    return { v: out, n };
  }

  function run(ops, W, t) {
    for (const op of ops) {
      if (op.op === "linear") t = linear(toVector(t), W, op);
      else if (op.op === "conv") t = conv(t, W, op);
      else if (op.op === "convT") t = convT(t, W, op);
      else if (op.op === "reshape") t = toImage(t, op.shape);
      else if (op.op === "flatten") t = toVector(t);
      else if (op.op === "act") { const f = ACT[op.fn], v = t.v; for (let i = 0; i < v.length; i++) v[i] = f(v[i]); }
      else throw new Error("unknown op " + op.op);
    }
    return toVector(t);
  }

  function withLabel(x, label, k) { // [x, one_hot(label)]: the cvae's input
    if (!k) return x;
    const out = new Float64Array(x.length + k);
    out.set(x);
    out[x.length + label] = 1;
    return out;
  }

  // decode(z: Float32Array(D), label) -> E[x|z] as Float32Array(P), the data's (C, H, W) order.
  function decoder(plan, W) {
    const mean = ACT[plan.mean.fn], keep = plan.mean.size;
    return (z, label) => {
      const h = run(plan.ops, W, { v: withLabel(Float64Array.from(z), label, plan.label), n: plan.input });
      const out = new Float32Array(keep); // a learned-variance likelihood: the first C channels are the mean
      for (let i = 0; i < keep; i++) out[i] = mean(h.v[i]);
      return out;
    };
  }

  // encode(x: Float32Array(P) in CHW order, label) -> {mu, logvar|null} (Float64Array(D) each)
  function encoder(plan, W) {
    return (x, label) => {
      let t = { v: Float64Array.from(x), n: x.length };
      if (plan.image) t = toImage(t, plan.image);
      if (plan.label) t = { v: withLabel(toVector(t).v, label, plan.label), n: t.v.length + plan.label };
      const h = run(plan.ops, W, t).v, d = plan.latent;
      return { mu: h.slice(0, d), logvar: plan.gaussian ? h.slice(d, 2 * d) : null };
    };
  }

  return { b64bytes, b64f32, decoder, encoder, ACT };
})();
