"use strict";
// Where the page's numbers come from. Two backends with one interface:
//   served():    the vaekit server's API (model.decode / encode / sample in PyTorch);
//   embedded(E): the exported file's own networks (nn.js) and data, no network at all.
// decode(zs: Float32Array(n*D), n, label) -> Float32Array(n*P), pixels in the data's (C, H, W) order
// sample(n, temperature, label, seed)     -> Float32Array(n*P)
// encode(x: Float32Array(P), label)       -> {code, spread, x (as the model saw it), recon, score, percentile}
// upload(file, label)                     -> the same, for an image file
// item(i)                                 -> {x, code, label} of held-out example i
const Backends = (() => {
  const MAX_BYTES = 8 * 1024 * 1024, MAX_PIXELS = 4096 * 4096; // as vaekit/explore/images.py

  async function check(r) {
    if (r.ok) return r;
    let msg = `${r.status} ${r.statusText}`;
    try { const j = await r.json(); if (j.error) msg = j.error; } catch (_) { /* not JSON */ }
    throw new Error(msg);
  }
  const floats = (r) => r.arrayBuffer().then((b) => new Float32Array(b));

  // ?decode=server keeps every decode in PyTorch; by default the page runs the decoder itself
  // when the server offers it (/api/plan: the export's networks), so a pointer move costs no request.
  function served() {
    const post = (url, body) => fetch(url, { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body) }).then(check);
    const api = {
      mode: "served: decoded by PyTorch in the vaekit server",
      info: async () => {
        const info = await fetch("/api/info").then(check).then((r) => r.json());
        if (new URLSearchParams(location.search).get("decode") !== "server") {
          const r = await fetch("/api/plan");
          if (r.ok) {
            const mine = local(info, await r.json());
            Object.assign(api, { decode: mine.decode, decodeNow: mine.decodeNow,
              mode: "served: decoded in this page (JavaScript); encodings, samples and scores by PyTorch in the vaekit server" });
          }
        }
        return info;
      },
      decode: (zs, n, label) => post("/api/decode", { z: Array.from(zs), n, label }).then(floats),
      sample: (n, temperature, label, seed) => post("/api/sample", { n, temperature, label, seed }).then(floats),
      encode: (x, label) => post("/api/encode", { x: Array.from(x), label }).then((r) => r.json()),
      upload: (file, label) => fetch("/api/upload", { method: "POST", body: file,
        headers: { "Content-Type": "application/octet-stream", "X-Label": label == null ? "" : String(label) } })
        .then(check).then((r) => r.json()),
      item: (i) => fetch(`/api/item?i=${i}`).then(check).then((r) => r.json()),
    };
    return api;
  }

  // mulberry32: a small seeded generator, so "fresh draws" and binarization repeat for a seed.
  function rng(seed) {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }
  const normal = (u) => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u()); // Box-Muller

  // Width x height of a PNG or JPEG from its header, to refuse a huge picture before decoding it.
  function headerSize(b) {
    if (b.length > 24 && b[0] === 0x89 && b[1] === 0x50) {
      const dv = new DataView(b.buffer, b.byteOffset);
      return [dv.getUint32(16), dv.getUint32(20)];
    }
    if (b[0] === 0xff && b[1] === 0xd8) {
      for (let i = 2; i + 9 < b.length;) {
        if (b[i] !== 0xff) return null;
        const m = b[i + 1], len = (b[i + 2] << 8) | b[i + 3];
        if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) return [(b[i + 7] << 8) | b[i + 8], (b[i + 5] << 8) | b[i + 6]];
        i += 2 + len;
      }
    }
    return null;
  }

  function local(info, plan) {
    const W = NN.b64f32(plan.weights);
    const D = info.latent_dim, P = info.shape.reduce((a, b) => a * b, 1);
    const dec = NN.decoder(plan.decoder, W), enc = plan.encoder ? NN.encoder(plan.encoder, W) : null;
    const raw = NN.decoder({ ...plan.decoder, mean: { fn: "identity", size: plan.decoder.mean.size } }, W);
    const codes = NN.b64f32(info.points.codes), thumbs = NN.b64bytes(info.thumbs.pixels);

    function decode(zs, n, label) {
      const out = new Float32Array(n * P);
      for (let i = 0; i < n; i++) out.set(dec(zs.subarray(i * D, (i + 1) * D), label), i * P);
      return out;
    }
    function sample(n, T, label, seed) {
      const u = rng(seed), { mean, tril } = info.sampler, zs = new Float32Array(n * D);
      for (let i = 0; i < n; i++) {
        const eps = Array.from({ length: D }, () => normal(u));
        for (let r = 0; r < D; r++) {
          let acc = mean[r];
          for (let c = 0; c <= r; c++) acc += T * tril[r][c] * eps[c];
          zs[i * D + r] = acc;
        }
      }
      return decode(zs, n, label);
    }
    function binarize(x) { // as the run's held-out data: x > t, or one seeded Bernoulli draw
      if (info.binarize === "none") return x;
      const u = rng(info.binarize_seed);
      return x.map((v) => (info.binarize === "threshold" ? (v > info.threshold ? 1 : 0) : (u() < v ? 1 : 0)));
    }
    // Negative ELBO (recon + analytic KL), the recon term averaged over `samples` z ~ q: the
    // estimator Explorer.score uses for the reference numbers.
    function negElbo(x, mu, logvar, label) {
      const s = plan.score, u = rng(1);
      let kl = 0;
      for (let d = 0; d < D; d++) kl += -0.5 * (1 + logvar[d] - mu[d] * mu[d] - Math.exp(logvar[d]));
      let rec = 0;
      for (let j = 0; j < s.samples; j++) {
        const z = mu.map((m, d) => m + Math.exp(0.5 * logvar[d]) * normal(u));
        const out = raw(z, label);
        for (let i = 0; i < P; i++) {
          const l = out[i];
          rec += s.kind === "bernoulli" ? Math.max(l, 0) - x[i] * l + Math.log1p(Math.exp(-Math.abs(l)))
            : 0.5 * ((x[i] - l) / s.sigma) ** 2 + Math.log(s.sigma) + 0.5 * Math.log(2 * Math.PI);
        }
      }
      return rec / s.samples + kl;
    }
    function encode(x, label) {
      if (!enc) throw new Error(plan.note);
      const xb = binarize(Float32Array.from(x)), { mu, logvar } = enc(xb, label);
      const score = plan.score ? negElbo(xb, mu, logvar, label) : null, ref = info.scores.sorted;
      return { code: Array.from(mu), spread: logvar ? Array.from(logvar, (v) => Math.exp(0.5 * v)) : null,
        x: xb, recon: dec(mu, label), score,
        percentile: score == null ? null : (100 * ref.filter((v) => v <= score).length) / ref.length };
    }
    async function upload(file, label) {
      if (file.size > MAX_BYTES) throw new Error(`the file is ${(file.size / 2 ** 20).toFixed(1)} MiB; the limit is 8 MiB`);
      const size = headerSize(new Uint8Array(await file.slice(0, 65536).arrayBuffer()));
      if (size && size[0] * size[1] > MAX_PIXELS) throw new Error(`the image is ${size[0]} x ${size[1]} pixels; the limit is 16.8 megapixels`);
      let bmp;
      try { bmp = await createImageBitmap(file); } catch (e) { throw new Error("the file cannot be read as an image (PNG, JPEG, GIF, BMP, WebP)"); }
      const [C, H, Wd] = info.shape, cv = document.createElement("canvas");
      cv.width = Wd; cv.height = H;
      const ctx = cv.getContext("2d");
      ctx.imageSmoothingQuality = "high";
      ctx.drawImage(bmp, 0, 0, Wd, H);
      const px = ctx.getImageData(0, 0, Wd, H).data, x = new Float32Array(C * H * Wd);
      for (let i = 0; i < H * Wd; i++) {
        const [r, g, b] = [px[4 * i], px[4 * i + 1], px[4 * i + 2]];
        if (C === 1) x[i] = ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16) / 255; // Pillow's "L"
        else for (let c = 0; c < 3; c++) x[c * H * Wd + i] = px[4 * i + c] / 255;
      }
      return encode(x, label);
    }
    function item(i) {
      const n = info.thumbs.n;
      if (!(i >= 0 && i < n)) throw new Error(`this file holds the first ${n} held-out examples (0..${n - 1})`);
      return { x: Float32Array.from(thumbs.subarray(i * P, (i + 1) * P), (v) => v / 255),
        code: Array.from(codes.subarray(i * D, (i + 1) * D)), label: info.points.labels ? info.points.labels[i] : null };
    }
    const later = (f) => (...a) => new Promise((ok) => ok(f(...a))); // same promise interface as served()
    return { mode: "exported: decoded in this page by plain JavaScript", info: later(() => info),
      decode: later(decode), sample: later(sample), encode: later(encode), upload, item: later(item),
      decodeNow: decode, encodeNow: (x, label) => (enc ? enc(Float32Array.from(x), label) : null) };
  }
  const embedded = (E) => local(E.info, E.plan);

  return { served, embedded };
})();
