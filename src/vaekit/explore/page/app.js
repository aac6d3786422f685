"use strict";
// The explorer page: five views (pad, sliders, draw/drop, interpolate, sample) over one backend
// (backend.js). Everything it shows is decoded from a code z (D numbers); window.vaekit exposes
// the state (the codes shown, what the model saw) so browser tests can check values, and
// window.vaekitStats.pad the pointer-event -> painted-frame times the benchmark reads.
(() => {
  const $ = (id) => document.getElementById(id);
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  const PS = 360; // the pad's size in canvas pixels
  const state = { padZ: null, padShown: null, sliderZ: null, sliderShown: null, drawn: null, A: null, B: null, seed: 1 };
  const stats = { pad: [] };
  window.vaekit = { state, ready: false };
  window.vaekitStats = stats;
  let B, info, D, P, C, H, Wd, codes, label = null;

  function showError(e) { const m = $("msg"); m.textContent = String((e && e.message) || e); m.hidden = false; }
  function clearError() { $("msg").hidden = true; }
  const afterPaint = (f) => requestAnimationFrame(() => setTimeout(f, 0)); // after the frame that shows it

  // ---- pixels -> canvases -------------------------------------------------------------------
  // Images are (C, H, W) floats in [0, 1] shown as round(255 v); vectors (tables) as a strip,
  // scaled to their own range.
  function tiles(canvas, px, n, cols) {
    const rows = Math.ceil(n / cols);
    canvas.width = cols * Wd; canvas.height = rows * H;
    const ctx = canvas.getContext("2d"), img = ctx.createImageData(canvas.width, canvas.height), d = img.data;
    for (let t = 0; t < n; t++) {
      const off = t * P, ox = (t % cols) * Wd, oy = Math.floor(t / cols) * H;
      let lo = 0, hi = 1;
      if (!info.image) { lo = Infinity; hi = -Infinity; for (let i = 0; i < P; i++) { lo = Math.min(lo, px[off + i]); hi = Math.max(hi, px[off + i]); } if (hi <= lo) hi = lo + 1; }
      for (let y = 0; y < H; y++) for (let x = 0; x < Wd; x++) {
        const q = 4 * ((oy + y) * canvas.width + ox + x), i = y * Wd + x;
        for (let c = 0; c < 3; c++) {
          const v = (px[off + (C === 3 ? c * H * Wd : 0) + i] - lo) / (hi - lo);
          d[q + c] = Math.round(255 * Math.min(1, Math.max(0, v)));
        }
        d[q + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
    if (info.columns && !canvas.id.startsWith("strip-")) tableRows(canvas, px, n);
  }
  const paint = (canvas, px) => tiles(canvas, px, 1, 1);

  // Tables: the decoded rows in the file's own units under their strip (numeric: mean + std * v;
  // categorical: the most probable level, with its probability). Built with textContent: column
  // names come from the user's file.
  function tableRows(canvas, px, n) {
    const id = `${canvas.id}-rows`;
    let t = document.getElementById(id);
    if (!t) { t = document.createElement("table"); t.id = id; t.className = "rows"; canvas.after(t); }
    t.replaceChildren();
    const cell = (tag, text, value) => { const e = document.createElement(tag); e.textContent = text; if (value !== undefined) e.dataset.v = value; return e; };
    const head = document.createElement("tr");
    for (const c of info.columns) head.append(cell("th", c.name));
    t.append(head);
    for (let r = 0; r < n; r++) {
      const tr = document.createElement("tr"), off = r * P;
      for (const c of info.columns) {
        if (c.type === "numeric") { const v = c.mean + c.std * px[off + c.at]; tr.append(cell("td", v.toPrecision(4), v)); continue; }
        let best = 0;
        for (let j = 1; j < c.levels.length; j++) if (px[off + c.at + j] > px[off + c.at + best]) best = j;
        tr.append(cell("td", `${c.levels[best]} (${px[off + c.at + best].toFixed(2)})`, c.levels[best]));
      }
      t.append(tr);
    }
  }

  // Decode into one canvas at most one request at a time; only the newest z waits (no backlog).
  function live(canvas, onPainted) {
    let busy = false, next = null;
    async function pump() {
      busy = true;
      while (next) {
        const job = next; next = null;
        try {
          paint(canvas, await B.decode(job.z, 1, label));
          clearError();
          afterPaint(() => onPainted && onPainted(job));
        } catch (e) { showError(e); }
      }
      busy = false;
    }
    return (z, t0) => { next = { z: Float32Array.from(z), t0 }; if (!busy) pump(); };
  }
  function latest(f) { // the same for any async job: one in flight, the newest arguments next
    let busy = false, next = null;
    return async (...args) => {
      next = args; if (busy) return;
      busy = true;
      while (next) { const a = next; next = null; try { await f(...a); clearError(); } catch (e) { showError(e); } }
      busy = false;
    };
  }

  // ---- latent pad ---------------------------------------------------------------------------
  const dot = (a, b) => a.reduce((s, v, i) => s + v * b[i], 0);
  const axis = (d) => Array.from({ length: D }, (_, i) => (i === d ? 1 : 0));
  const codeOf = (i) => Array.from(codes.subarray(i * D, (i + 1) * D));
  let plane, cache;
  function setPlane() {
    const mean = info.frame.mean;
    let b0, b1;
    if ($("plane").value === "dims" && D > 2) { b0 = axis(+$("dim-a").value); b1 = axis(+$("dim-b").value); }
    else { [b0, b1] = info.frame.pca; }
    const rest = mean.map((m, i) => m - dot(mean, b0) * b0[i] - dot(mean, b1) * b1[i]); // held at the mean
    const n = info.points.n, us = [], vs = [];
    for (let i = 0; i < n; i++) { const c = codeOf(i); us.push(dot(c, b0)); vs.push(dot(c, b1)); }
    const span = (a) => { let lo = Math.min(...a, 0), hi = Math.max(...a, 0); if (!(hi > lo)) { lo -= 1; hi += 1; } const m = 0.1 * (hi - lo); return [lo - m, hi + m]; };
    const [u0, u1] = span(us), [v0, v1] = D > 1 ? span(vs) : [-1, 1];
    plane = { b0, b1, rest, u0, u1, v0, v1 };
    cache = document.createElement("canvas"); cache.width = cache.height = PS;
    const ctx = cache.getContext("2d");
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, PS, PS);
    ctx.strokeStyle = "#ddd"; ctx.beginPath();
    const [ox, oy] = toPad(0, 0); ctx.moveTo(ox, 0); ctx.lineTo(ox, PS); ctx.moveTo(0, oy); ctx.lineTo(PS, oy); ctx.stroke();
    const labels = info.points.labels;
    for (let i = 0; i < n; i++) {
      const [x, y] = toPad(us[i], vs[i]);
      ctx.fillStyle = labels ? PALETTE[labels[i] % PALETTE.length] : "#555";
      ctx.globalAlpha = 0.6; ctx.fillRect(x - 1.5, y - 1.5, 3, 3);
    }
    ctx.globalAlpha = 1;
    const names = D === 2 ? ["z[0]", "z[1]"] : $("plane").value === "dims" ? [`z[${$("dim-a").value}]`, `z[${$("dim-b").value}]`] : ["PC 1", "PC 2"];
    ctx.fillStyle = "#333"; ctx.font = "11px sans-serif";
    ctx.fillText(`${names[0]} →`, PS - 60, PS - 6); ctx.fillText(`↑ ${D > 1 ? names[1] : ""}`, 4, 12);
    drawPad();
  }
  const toPad = (u, v) => [((u - plane.u0) / (plane.u1 - plane.u0)) * PS, (1 - (v - plane.v0) / (plane.v1 - plane.v0)) * PS];
  function padToZ(x, y) {
    const u = plane.u0 + (x / PS) * (plane.u1 - plane.u0), v = plane.v1 - (y / PS) * (plane.v1 - plane.v0);
    return { u, v, z: plane.rest.map((r, i) => r + u * plane.b0[i] + v * plane.b1[i]) };
  }
  function drawPad() {
    const ctx = $("pad").getContext("2d");
    ctx.drawImage(cache, 0, 0);
    if (state.drawn) { // the drawing's posterior: its mean, and one spread (sd) projected on the plane
      const c = state.drawn.code, [x, y] = toPad(dot(c, plane.b0), dot(c, plane.b1));
      const s = state.drawn.spread, proj = (b) => (s ? Math.sqrt(b.reduce((a, v, i) => a + (v * s[i]) ** 2, 0)) : 0);
      const rx = (proj(plane.b0) / (plane.u1 - plane.u0)) * PS, ry = (proj(plane.b1) / (plane.v1 - plane.v0)) * PS;
      ctx.strokeStyle = "#000"; ctx.lineWidth = 2; ctx.beginPath();
      ctx.ellipse(x, y, Math.max(rx, 3), Math.max(ry, 3), 0, 0, 2 * Math.PI); ctx.stroke();
      ctx.fillStyle = "#000"; ctx.fillRect(x - 3, y - 3, 6, 6);
    }
    if (state.padZ) {
      const [x, y] = toPad(state.padZ.u, state.padZ.v);
      ctx.strokeStyle = "#c00"; ctx.lineWidth = 1; ctx.beginPath();
      ctx.moveTo(x - 8, y); ctx.lineTo(x + 8, y); ctx.moveTo(x, y - 8); ctx.lineTo(x, y + 8); ctx.stroke();
    }
  }
  const fmt = (a) => a.map((v) => v.toFixed(3)).join(", ");
  let padLive;
  function padAt(ev) {
    const r = $("pad").getBoundingClientRect();
    const x = Math.min(PS, Math.max(0, ((ev.clientX - r.left) * PS) / r.width));
    const y = Math.min(PS, Math.max(0, ((ev.clientY - r.top) * PS) / r.height));
    state.padZ = { x, y, ...padToZ(x, y) };
    drawPad();
    $("pad-coords").textContent = `pad (${state.padZ.u.toFixed(3)}, ${state.padZ.v.toFixed(3)})\nz = [${fmt(state.padZ.z)}]`;
    padLive(state.padZ.z, ev.timeStamp);
  }

  // ---- sliders ------------------------------------------------------------------------------
  let sliderLive;
  function setSliderZ(z) {
    state.sliderZ = Float32Array.from(z);
    for (let d = 0; d < D; d++) { $(`s${d}`).value = z[d]; $(`sv${d}`).textContent = (+z[d]).toFixed(2); }
    sliderLive(state.sliderZ);
  }
  function buildSliders() {
    const s = info.sliders, box = $("sliders");
    $("slider-score").textContent = s.score_name;
    for (const d of s.order) {
      const name = document.createElement("span");
      name.textContent = `z[${d}] ${s.score_name === "KL" ? s.score[d].toFixed(2) + " nats" : ""}${s.collapsed[d] ? " collapsed" : ""}`;
      if (s.collapsed[d]) name.className = "collapsed";
      const input = Object.assign(document.createElement("input"), { type: "range", id: `s${d}`, min: s.lo[d], max: s.hi[d], step: (s.hi[d] - s.lo[d]) / 400 });
      const val = Object.assign(document.createElement("span"), { id: `sv${d}` });
      input.addEventListener("input", () => { state.sliderZ[d] = +input.value; val.textContent = (+input.value).toFixed(2); sliderLive(state.sliderZ); });
      box.append(name, input, val);
    }
    $("slider-reset").onclick = () => setSliderZ(info.frame.mean);
    const thumbs = $("thumbs"), T = NN.b64bytes(info.thumbs.pixels);
    for (let i = 0; i < info.thumbs.n; i++) {
      const c = document.createElement("canvas");
      c.title = `example #${i}`; c.dataset.index = i;
      tiles(c, Float32Array.from(T.subarray(i * P, (i + 1) * P), (v) => v / 255), 1, 1);
      c.onclick = () => setSliderZ(codeOf(i));
      thumbs.append(c);
    }
    $("item-index").max = info.split_size - 1;
    $("item-go").onclick = () => B.item(+$("item-index").value).then((r) => setSliderZ(r.code)).catch(showError);
  }

  // ---- draw or drop -------------------------------------------------------------------------
  function buildDraw() {
    const cv = $("draw"), k = Math.max(1, Math.floor(280 / Math.max(Wd, H)));
    cv.width = Wd * k; cv.height = H * k;
    const ctx = cv.getContext("2d");
    const clear = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, cv.width, cv.height); };
    clear();
    ctx.strokeStyle = ctx.fillStyle = "#fff"; ctx.lineCap = ctx.lineJoin = "round";
    ctx.lineWidth = k * Math.max(1, Wd / 12);
    let last = null;
    const pos = (ev) => { const r = cv.getBoundingClientRect(); return [((ev.clientX - r.left) * cv.width) / r.width, ((ev.clientY - r.top) * cv.height) / r.height]; };
    cv.addEventListener("pointerdown", (ev) => { cv.setPointerCapture(ev.pointerId); last = pos(ev); ctx.beginPath(); ctx.arc(...last, ctx.lineWidth / 2, 0, 2 * Math.PI); ctx.fill(); });
    cv.addEventListener("pointermove", (ev) => {
      if (!last) return;
      const p = pos(ev); ctx.beginPath(); ctx.moveTo(...last); ctx.lineTo(...p); ctx.stroke(); last = p;
    });
    const end = () => { if (last) { last = null; submit(); } };
    cv.addEventListener("pointerup", end); cv.addEventListener("pointercancel", end);
    // The model's input: each k x k block averaged, on the uint8 grid the canvases show.
    const submit = latest(async () => {
      const px = ctx.getImageData(0, 0, cv.width, cv.height).data, x = new Float32Array(P);
      for (let y = 0; y < H; y++) for (let xx = 0; xx < Wd; xx++) {
        let s = 0;
        for (let dy = 0; dy < k; dy++) for (let dx = 0; dx < k; dx++) s += px[4 * ((y * k + dy) * cv.width + xx * k + dx)];
        const v = Math.round(s / (k * k)) / 255;
        for (let c = 0; c < C; c++) x[c * H * Wd + y * Wd + xx] = v;
      }
      show(await B.encode(x, label));
    });
    const upload = latest(async (file) => show(await B.upload(file, label)));
    $("draw-clear").onclick = clear;
    $("file").onchange = (ev) => ev.target.files[0] && upload(ev.target.files[0]);
    cv.addEventListener("dragover", (ev) => ev.preventDefault());
    cv.addEventListener("drop", (ev) => { ev.preventDefault(); if (ev.dataTransfer.files[0]) upload(ev.dataTransfer.files[0]); });
    $("draw-a").onclick = () => { state.A = { code: state.drawn.code, x: state.drawn.x, name: "the drawing" }; interp(); };
    $("draw-b").onclick = () => { state.B = { code: state.drawn.code, x: state.drawn.x, name: "the drawing" }; interp(); };
  }
  function show(r) {
    r.x = Float32Array.from(r.x); r.recon = Float32Array.from(r.recon);
    state.drawn = r;
    paint($("draw-input"), r.x); paint($("draw-recon"), r.recon);
    const lines = [`code (posterior mean) [${fmt(r.code)}]`];
    if (r.spread) lines.push(`spread (posterior sd) [${fmt(r.spread)}]`);
    lines.push(r.score == null ? `${info.scores.what}: not computed in this file`
      : `${info.scores.what}: ${r.score.toFixed(2)}\nhigher than ${r.percentile.toFixed(1)}% of the ${info.split} set (${info.scores.sorted.length} examples)`);
    $("draw-stats").textContent = lines.join("\n");
    $("draw-a").disabled = $("draw-b").disabled = false;
    drawPad();
  }

  // ---- interpolate --------------------------------------------------------------------------
  const center = () => (info.standard_prior ? new Array(D).fill(0) : info.frame.mean);
  function slerp(a, b, t) { // around the prior's centre (White 2016), as vaekit.viz.latent.slerp
    const c = center(), z0 = a.map((v, i) => v - c[i]), z1 = b.map((v, i) => v - c[i]);
    const n0 = Math.hypot(...z0), n1 = Math.hypot(...z1), lerp = () => a.map((v, i) => (1 - t) * v + t * b[i]);
    if (n0 === 0 || n1 === 0) return lerp();
    const om = Math.acos(Math.min(1, Math.max(-1, dot(z0, z1) / (n0 * n1)))), s = Math.sin(om);
    if (s < 1e-6) return lerp();
    return z0.map((v, i) => (Math.sin((1 - t) * om) / s) * v + (Math.sin(t * om) / s) * z1[i] + c[i]);
  }
  const lerpZ = (a, b, t) => a.map((v, i) => (1 - t) * v + t * b[i]);
  let lerpLive, slerpLive;
  const interp = latest(async () => {
    const steps = 10, n = steps + 2, ts = Array.from({ length: steps }, (_, i) => i / (steps - 1));
    for (const [path, f] of [["lerp", lerpZ], ["slerp", slerp]]) {
      const zs = new Float32Array(steps * D);
      ts.forEach((t, i) => zs.set(f(state.A.code, state.B.code, t), i * D));
      const dec = await B.decode(zs, steps, label), px = new Float32Array(n * P);
      px.set(state.A.x, 0); px.set(dec, P); px.set(state.B.x, (n - 1) * P);
      tiles($(`strip-${path}`), px, n, n);
    }
    $("interp-what").textContent = `${state.A.name} → ${state.B.name}; the strips' ends are the images themselves`;
    along();
  });
  function along() {
    const t = +$("interp-t").value;
    $("interp-t-val").textContent = t.toFixed(2);
    lerpLive(lerpZ(state.A.code, state.B.code, t)); slerpLive(slerp(state.A.code, state.B.code, t));
  }
  async function pick(which, i) {
    const r = await B.item(i);
    state[which] = { code: r.code, x: Float32Array.from(r.x), name: `#${i}` };
  }

  // ---- sample -------------------------------------------------------------------------------
  const sample = latest(async () => {
    const T = +$("temp").value;
    $("temp-val").textContent = T.toFixed(2);
    const seed = state.seed, at = label;
    tiles($("samples"), await B.sample(16, T, at, seed), 16, 4);
    state.sampleShown = { T, label: at, seed };
  });

  // ---- start --------------------------------------------------------------------------------
  async function main() {
    B = window.VAEKIT_EMBED ? Backends.embedded(window.VAEKIT_EMBED) : Backends.served();
    info = await B.info();
    D = info.latent_dim; P = info.shape.reduce((a, b) => a * b, 1);
    [C, H, Wd] = info.image ? info.shape : [1, 1, P];
    codes = NN.b64f32(info.points.codes);
    $("run-name").textContent = info.run;
    $("run-meta").textContent = `${info.model} (${info.arch}, ${info.likelihood}), ${D}-D latent, data ${info.shape.join("×")}; points: ${info.points.n} ${info.split} examples`;
    $("mode").textContent = B.mode + (window.VAEKIT_EMBED && window.VAEKIT_EMBED.plan.note ? ` — ${window.VAEKIT_EMBED.plan.note}` : "");
    if (info.conditional) {
      $("label-picker").hidden = false; label = 0;
      info.classes.slice(0, info.conditional).forEach((c, i) => $("label").append(new Option(c, i)));
      $("label").onchange = () => { label = +$("label").value; setSliderZ(state.sliderZ); sample(); if (state.A && state.B) interp(); };
    }
    if (info.points.labels && info.classes) $("legend").innerHTML = "";
    (info.classes || []).slice(0, PALETTE.length).forEach((c, i) => {
      const s = document.createElement("span"), sw = document.createElement("i");
      sw.style.background = PALETTE[i]; s.append(sw, document.createTextNode(c)); $("legend").append(s);
    });
    if (D > 2) {
      $("plane-picker").hidden = false;
      for (let d = 0; d < D; d++) { $("dim-a").append(new Option(`z[${d}]`, d)); $("dim-b").append(new Option(`z[${d}]`, d)); }
      [$("dim-a").value, $("dim-b").value] = info.sliders.order.slice(0, 2).map(String);
      for (const id of ["plane", "dim-a", "dim-b"]) $(id).onchange = setPlane;
    }
    for (const id of ["pad-out", "slider-out", "draw-input", "draw-recon", "interp-lerp", "interp-slerp"]) { $(id).width = Wd; $(id).height = H; }
    padLive = live($("pad-out"), (job) => { state.padShown = job.z; stats.pad.push({ t0: job.t0, t1: performance.now() }); });
    sliderLive = live($("slider-out"), (job) => { state.sliderShown = job.z; });
    lerpLive = live($("interp-lerp")); slerpLive = live($("interp-slerp"));
    setPlane();
    const pad = $("pad");
    pad.addEventListener("pointerdown", (ev) => { pad.setPointerCapture(ev.pointerId); padAt(ev); });
    pad.addEventListener("pointermove", padAt);
    buildSliders();
    setSliderZ(info.frame.mean);
    if (info.image) {
      buildDraw();
      $("convert-note").textContent = `${info.shape[1]}×${info.shape[2]}, ${C === 1 ? "grey" : "RGB"}, binarization: ${info.binarize}`;
    } else $("draw-view").hidden = true;
    const n = Math.min(info.split_size, info.thumbs.n);
    $("interp-a").max = $("interp-b").max = info.split_size - 1;
    await pick("A", 0); await pick("B", Math.min(1, n - 1));
    $("interp-go").onclick = () => Promise.all([pick("A", +$("interp-a").value), pick("B", +$("interp-b").value)]).then(interp, showError);
    $("interp-t").oninput = along;
    await interp();
    $("temp").oninput = sample;
    $("sample-go").onclick = () => { state.seed = (Math.random() * 2 ** 31) | 0; sample(); };
    $("sample-what").textContent = window.VAEKIT_EMBED ? `z ~ ${info.sampler.what}, scaled by the temperature` : "model.sample(16, temperature)";
    await sample();
    window.vaekit.ready = true;
    window.vaekit.padToZ = padToZ; window.vaekit.plane = () => plane; window.vaekit.backend = B;
    document.body.dataset.ready = "1"; // a selector tests can wait for without evaluating code (the CSP forbids eval)
  }
  main().catch(showError);
})();
