"""Numbers written in the README and docs/ equal the committed results they come from
(benchmarks/results/*.json, the evaluation.json shipped with each pretrained model): each is
formatted here from its file and must appear on its page, so a rerun that changes a result, or
an edit that changes a number, fails until the two agree. Tables with their own generator are
checked beside it (tests/test_speed_tables.py, tests/export/test_readme_onnx.py,
tests/explore/test_explore_readme.py)."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import vaekit

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
PRETRAINED = ROOT / "src" / "vaekit" / "pretrained" / "files"


def page(name: str) -> str:
    """The page's text with line breaks as spaces (a number may sit across a wrapped line)."""
    return " ".join((ROOT / name).read_text().split())


def result(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


def headline() -> str:
    text = page("README.md")
    start, end = text.index("<!-- headline:start"), text.index("<!-- headline:end -->")
    return text[start:end]


def test_headline_training_speed_and_loss_are_the_mlp_benchmark():
    mlp = result("mlp.json")
    assert mlp["method"] == "alternating"  # medians over alternating rounds, not one run per method
    s, st = mlp["summary"], mlp["settings"]
    row = (f"| PyTorch-examples VAE (MLP 784-400-20), {st['epochs']} epochs | test loss {s['vaekit']['loss']['mean']:.2f} "
           f"over {len(s['vaekit']['loss']['values'])} seeds (tutorial: ~105.6); {s['vaekit']['seconds']['median']:.2f} s "
           f"per epoch on {st['threads']} CPU threads, **{s['reference']['vaekit_speedup']['median']:.2f}×** the speed of "
           f"the tutorial's loop and **{s['pythae']['vaekit_speedup']['median']:.2f}×** Pythae's (medians of alternating "
           f"runs) |")
    assert row in headline()
    assert f"| MLP 784-400-20 (60k) | {mlp['settings']['threads']} | pytorch/examples-style loop" in page("docs/results.md")


def test_headline_and_results_nll_throughput_are_the_nll_benchmark():
    nll = result("nll.json")
    ours, theirs = nll["results"]["vaekit"], nll["results"]["pythae"]
    ratio = ours["per_s_wall"] / theirs["per_s_wall"]
    assert (f"**{ratio:.2f}×** the throughput of Pythae's `get_nll` on the same weights "
            f"({ours['nll']:.2f} vs {theirs['nll']:.2f} nats)") in headline()
    s = nll["settings"]
    assert (f"vaekit's estimator evaluates {ours['per_s_wall']:,.0f} images × samples per second against "
            f"{theirs['per_s_wall']:,.0f} for Pythae's `get_nll` ({ratio:.2f}×, {s['threads']} thread, "
            f"{s['images']} test images × k = {s['k']}, NLL {ours['nll']:.3f} vs {theirs['nll']:.3f}") in page("docs/results.md")
    assert f"importance-sampled NLL, k = {s['k']} |" in headline()


def test_headline_onnx_speedup_is_the_best_of_the_onnx_benchmark():
    onnx = result("onnx.json")
    best = max(r["speedup"] for by in onnx["decode"].values() for r in by.values())
    worst_diff = max(r["max_abs_diff"] for by in onnx["decode"].values() for r in by.values())
    assert worst_diff <= 1e-4
    assert f"up to **{best:.2f}×** the speed of the PyTorch decode, outputs equal within 1e-4" in headline()


def test_headline_explorer_latency_is_the_worst_p95_of_the_explore_benchmark():
    rows = result("explore.json")["rows"]
    worst = max(r[k]["p95_ms"] for r in rows for k in ("served", "served_server_decode", "exported"))
    assert worst < 50  # the target the results page states
    assert f"painted within {worst:.1f} ms at the 95th percentile" in headline()


def test_pretrained_numbers_are_the_shipped_evaluations():
    ev = {name: json.loads((PRETRAINED / name / "evaluation.json").read_text()) for name in ("keras-conv", "pytorch-example")}
    kc, pt = ev["keras-conv"], ev["pytorch-example"]
    guide = page("docs/guide/export.md")
    assert (f"`pretrained:keras-conv`, 2-D latent, {kc['overrides']['train']['epochs']} epochs on the 60k training images "
            f"(test −ELBO {kc['test_neg_elbo']:.2f}, IS NLL {kc['nll']:.2f} on the first {kc['nll_images']} test images)") in guide
    assert (f"`pretrained:pytorch-example`, 20-D, {pt['overrides']['train']['epochs']} epochs "
            f"({pt['test_neg_elbo']:.2f} and {pt['nll']:.2f} on {pt['nll_images']})") in guide
    assert f"IS NLL {pt['nll']:.2f} on {pt['nll_images']:,} test images" in headline()


def test_streaming_table_and_claims_are_the_stream_benchmark():
    stream = result("stream.json")
    text = page("docs/results.md")
    assert f"`{stream['command']}`" in text
    rows = stream["rows"]
    for r in rows:
        gb = re.match(r"synthetic ([\d.]+) GB", r["data"])
        per_gb = f"{r['epoch_s'] / float(gb[1]):.0f}" if gb else ""
        label = (f"synthetic {float(gb[1]):g} GB" if gb else "MNIST 60k")
        cells = " | ".join(["", r["mode"], f"{r['epoch_s']:.2f}", per_gb, f"{r['peak_rss_mb']:.1f} |"]).strip()
        cells = cells.replace("|  |", "| |")  # an empty cell
        assert re.search(re.escape(label) + r"[^|]*" + re.escape(cells), text), (label, cells)
    synthetic = [r for r in rows if r["data"].startswith("synthetic")]
    growth = max(r["peak_rss_mb"] for r in synthetic) - min(r["peak_rss_mb"] for r in synthetic)
    sizes = stream["settings"]["sizes_gb"]
    assert f"{max(sizes) / min(sizes):.0f}× the data costs +{growth:.0f} MB" in text
    assert f"Streaming MNIST runs at **{stream['stream_over_memory']:.2f}×** the in-memory epoch time" in text


def test_determinism_claims_are_the_determinism_results():
    det = result("determinism.json")
    assert det["identical_across_thread_counts"] is True  # the page says "all ended at" one pair of losses
    (train, test), = {(r["train_loss"], r["test_loss"]) for r in det["rows"]}
    assert f"all ended at train loss {train} and test loss {test}" in page("docs/results.md")


def test_keras_conv_rows_with_a_results_file_equal_it():
    seeds = result("conv-seeds.json")["results"]
    study = page("docs/keras-conv.md")
    table = {int(row.split("|")[1]): [c.strip() for c in row.split("|")[2:6]]
             for row in re.findall(r"\| \d \|[^\n]*", (ROOT / "docs" / "keras-conv.md").read_text())}
    checked = 0
    for column, lib in ((0, "vaekit"), (2, "keras")):
        for run in seeds[lib]:
            cells = table[run["seed"]]
            assert cells[column].strip("*").startswith(f"{run['loss']:.2f}"), (lib, run["seed"], cells[column])
            assert f"({run['recon']:.2f} + {run['kl']:.2f})" in cells[column], (lib, run["seed"], cells[column])
            assert cells[column + 1] == f"{run['final_model_loss']:.2f}", (lib, run["seed"], cells[column + 1])
            checked += 1
    assert checked == len(seeds["vaekit"]) + len(seeds["keras"]) >= 6
    epoch2 = result("conv-seeds-epoch2.json")
    s = epoch2["summary"]
    assert (f"epoch-2 loss {s['vaekit']['mean']:.2f} ± {s['vaekit']['sd']:.2f} for vaekit and "
            f"{s['keras']['mean']:.2f} ± {s['keras']['sd']:.2f} for Keras") in study
    plateau = {lib: sum(r["loss"] > 180 for r in epoch2["results"][lib]) for lib in ("vaekit", "keras")}
    assert (f"{plateau['vaekit']} of {s['vaekit']['runs']} vaekit runs and {plateau['keras']} of "
            f"{s['keras']['runs']} Keras runs were still on the plateau") in study
    assert statistics.mean(r["loss"] for r in epoch2["results"]["vaekit"]) == s["vaekit"]["mean"]


def test_the_model_count_is_the_registry():
    words = {14: "Fourteen", 15: "Fifteen", 16: "Sixteen"}
    assert f"{words[len(vaekit.MODELS)]} model families" in page("README.md")


def test_the_conv_step_times_are_the_profile():
    steps = result("profile-conv.json")["steps"]
    ms = {k.split(" (")[0]: v["median_ms"] for k, v in steps.items()}
    assert (f"from {ms['torch layers, glibc malloc defaults']} to {ms['torch layers, keep_freed_memory']} ms of CPU time "
            f"at one thread (medians; with the faster layers below, {ms['conv_ops layers, keep_freed_memory']} ms)") \
        in page("docs/results.md")


def test_the_full_protocols_latest_snapshot_is_the_curve_json():
    rows = result("iwae-paper-vae-full-curve.json")["rows"]
    r = rows[-1]
    text = page("docs/results.md")
    block = text[text.index("<!-- iwae-curve:start"):text.index("<!-- iwae-curve:end -->")]
    assert (f"Latest snapshot: epoch {r['epoch']:,} of 3,280 after {r['train_cpu_hours']:.2f} CPU-hours of training, "
            f"−log p(x) = {r['nll']:.2f} ± {r['se']:.2f} nats") in block
    assert [row["epoch"] for row in rows] == sorted({row["epoch"] for row in rows})  # one row per snapshot


def test_the_faster_recipes_candidates_are_their_curve_jsons():
    """Every curve JSON beside the full protocol's is a candidate the page reports, with its latest row."""
    text = " ".join(page("docs/results.md").split())
    block = text[text.index("<!-- iwae-curve:start"):text.index("<!-- iwae-curve:end -->")]
    others = sorted(p for p in RESULTS.glob("iwae-*-curve.json") if p.name != "iwae-paper-vae-full-curve.json")
    assert others, "no candidate curve committed"
    for path in others:
        d = json.loads(path.read_text())
        r, name = d["rows"][-1], Path(d["run"]).name
        assert (f"`{name}` (batch {d['config']['train']['batch_size']}" in block
                and f"epoch {r['epoch']:,} after {r['train_cpu_hours']:.2f} CPU-hours, −log p(x) = {r['nll']:.2f} ± "
                    f"{r['se']:.2f} nats on the same images") in block, path.name


def test_the_per_layer_comparison_with_keras_is_the_profile():
    v = result("profile-conv.json")["vs_keras"]
    text = " ".join(page("docs/results.md").split())  # the paragraph wraps anywhere
    assert (f"the five layers take {v['vaekit_conv_layers_ms']:.1f} ms in vaekit and {v['keras_conv_layers_ms']:.1f} ms in Keras, "
            f"and a training step {v['step_ms']['vaekit']:.1f} ms against {v['step_ms']['keras']:.1f} ms") in text
    for side in ("vaekit", "keras"):  # the totals are the layers' sums
        total = sum(r[side]["forward_ms"] + r[side]["backward_ms"] for r in v["layers"])
        assert abs(total - v[f"{side}_conv_layers_ms"]) < 1e-6
    # the page's reading of the numbers
    assert v["step_ms"]["keras"] < v["keras_conv_layers_ms"] and v["step_ms"]["vaekit"] > v["vaekit_conv_layers_ms"]
    bound = v["step_ms"]["keras"] / 1.15
    assert f"would have to take at most {bound:.1f} ms, less than vaekit's five convolutions" in text
    assert bound < v["vaekit_conv_layers_ms"]

def test_the_classifier_accuracy_and_reference_fids_are_the_fid_reference_json():
    ref = result("fid-reference.json")
    acc = ref["classifier"]
    assert acc["test_accuracy"] == acc["header_test_accuracy"]  # the shipped file's header says what it scores
    text = page("docs/evaluation.md")
    assert f"2 conv layers, {100 * acc['test_accuracy']:.2f}% test accuracy" in text
    fid = ref["fid"]
    assert (f"the first {fid['images']:,} (which LeCun's MNIST page calls cleaner and easier) vs the last "
            f"{fid['images']:,} are at FID {fid['test_last_half_vs_first_half']:.1f}, while {fid['images']:,} training "
            f"images vs the first half are at {fid['train_random_vs_test_first_half']:.1f}") in text


def test_the_keras_conv_studys_prose_is_its_results_files():
    seeds, epoch2 = result("conv-seeds.json"), result("conv-seeds-epoch2.json")
    study = page("docs/keras-conv.md")
    st = seeds["settings"]
    assert (st["epochs"], st["limit"], st["threads"], st["jobs"]) == (30, None, 1, 2)  # "30 epochs, all 70k images, 1 thread, two at a time"
    assert "Every run: 30 epochs, all 70k images, 1 thread, two runs at a time" in study
    s = seeds["summary"]
    assert (f"means {s['vaekit']['mean']:.2f} vs {s['keras']['mean']:.2f} at epoch 30, over {s['vaekit']['runs']} and "
            f"{s['keras']['runs']} seeds, about one standard deviation of either apart") in study
    assert abs(s["vaekit"]["mean"] - s["keras"]["mean"]) <= 1.1 * max(s["vaekit"]["sd"], s["keras"]["sd"])
    # the final model against the epoch-30 running mean: Keras's worse, vaekit's better, every seed
    gap = {lib: [r["final_model_loss"] - r["loss"] for r in seeds["results"][lib]] for lib in ("vaekit", "keras")}
    assert all(g > 0 for g in gap["keras"]) and all(g < 0 for g in gap["vaekit"])
    assert (f"Keras's final model scores {min(gap['keras']):.1f}–{max(gap['keras']):.1f} worse than its epoch-30 "
            f"running mean ({len(gap['keras'])} of {len(gap['keras'])} seeds), vaekit's {-max(gap['vaekit']):.1f}–"
            f"{-min(gap['vaekit']):.1f} better ({len(gap['vaekit'])} of {len(gap['vaekit'])})") in study
    # seed 6 sat on the plateau (KL of one dimension, below the others' ~5) until epoch 4
    six = next(r for r in seeds["results"]["vaekit"] if r["seed"] == 6)
    kl = [e["kl"] for e in six["curve"]]
    assert max(kl[:4]) < 4.5 < 5 < kl[4]
    assert f"vaekit seed 6 sat there until epoch 4 and ends at {six['loss']:.2f}" in study
    # the arithmetic the study quotes: Keras's effective Adam ε (β₂ = 0.999) and the heads' Glorot bounds
    eff = lambda step: 1e-7 / (1 - 0.999**step) ** 0.5  # noqa: E731
    sci = lambda v: f"{v:.1e}".replace("e-0", "e-")  # noqa: E731  (3.2e-6, as the page writes it)
    assert f"{sci(eff(1))} at step 1 and {sci(eff(1000))} by step 1,000" in study
    assert f"√(6/20) = {(6 / 20) ** 0.5:.3f} here instead of √(6/18) = {(6 / 18) ** 0.5:.3f}" in study
    runs = [r for lib in ("vaekit", "keras") for r in epoch2["results"][lib]]
    on = [r["kl"] for r in runs if r["loss"] > 180]
    off = [r["kl"] for r in runs if r["loss"] <= 180]
    assert f"KL {min(on):.1f}–{max(on):.1f} at epoch 2, against {min(off):.1f}–{max(off):.1f} for the others" in study


def test_the_model_family_prose_is_the_model_family_json():
    runs = result("model-family.json")["runs"]
    nll = {name: r["evaluation"]["nll"] for name, r in runs.items() if r["has_density"]}
    text = page("docs/results.md")
    published = {"vae": 86.76, "iwae-k5": 85.54, "vamp-relu": 85.57}  # the papers' figures in the table
    for name, value in published.items():
        assert runs[name]["published"]["nll"].startswith(str(value))
    short = [nll[n] - p for n, p in published.items()]
    assert f"**the runs with a published figure are {min(short):.0f}-{max(short):.0f} nats short of it**" in text
    assert f"at a cost of about {nll['freebits'] - nll['vae']:.0f} nats of NLL" in text
    assert f"costs about {nll['capacity'] - nll['vae']:.0f} nats of NLL" in text
    assert f"still about {nll['vamp-relu'] - 85.57:.0f} nats short of the published 85.57" in text
    units = {name: runs[name]["evaluation"]["active_units"] for name in ("vae", "freebits", "iwae-k5", "vamp-relu")}
    assert (units["freebits"], units["iwae-k5"], units["vamp-relu"]) == (50, 50, 40)  # "50/50", "all 50", "40/40"
    assert f"the plain VAE keeps {units['vae']}/50 units above the threshold" in text
    tanh = [n for n in nll if runs[n]["config"]["activation"] == "tanh"]
    assert min(tanh, key=nll.get) == "iwae-k5"  # "has the best NLL of the tanh runs"


def test_the_conditional_prose_is_the_conditional_json():
    ev = {name: r["evaluation"] for name, r in result("conditional-family.json")["runs"].items()}
    text = page("docs/results.md")
    vae = ev["vae"]["nll"]
    assert (f"its NLL is about {ev['beta-0.5']['nll'] - vae:.1f} nats worse than β = 1; β = 4 switches off "
            f"{ev['beta-4']['latent_dim'] - ev['beta-4']['active_units']} of the {ev['beta-4']['latent_dim']} units "
            f"and costs about {ev['beta-4']['nll'] - vae:.1f} nats of NLL") in text
    assert min(ev, key=lambda n: ev[n]["nll"]) in ("vae", "cvae")  # β = 1 gives the best likelihood
    assert f"The **fullcov-vae** is about {ev['fullcov-vae']['nll'] - vae:.1f} nats worse than the diagonal VAE" in text
    assert ev["hvae"]["nll"] > vae  # "worse than the one-layer VAE"


def test_the_published_protocol_prose_and_the_compare_notes_are_their_runs():
    iwae = result("iwae-paper-vae.json")
    assert iwae["config"]["preset"] == "iwae-paper-vae" and iwae["made"]["threads"] == 1
    assert iwae["evaluation"]["n"] == 10000 and iwae["evaluation"]["nll"]["k"] == 5000  # the published protocol
    cmp_ = result("compare-mnist.json")
    rows = {r["model"]: r for r in cmp_["comparison"]["rows"]}
    text = page("docs/results.md")
    assert rows["ae"]["mse"] < rows["vae"]["mse"] < rows["pca"]["mse"]  # "the autoencoder reconstructs best"
    assert f"the VAE pays for its KL term (~{cmp_['last_metrics']['test_kl']:.0f} nats)" in text
    assert f"has {rows['pca']['mse'] / rows['vae']['mse']:.1f}× the VAE's squared error" in text
    assert all(rows[m]["knn"] > rows[m]["probe"] for m in ("vae", "ae", "pca"))  # "kNN reads it better ..."
    assert rows["ae"]["fid"] < rows["vae"]["fid"] < rows["pca"]["fid"]  # "the autoencoder ... closer to the data"
    assert cmp_["comparison"]["config"]["train"]["epochs"] == 10 and cmp_["comparison"]["config"]["train"]["threads"] == 1


def test_the_shipped_models_size_and_the_bad_input_case_count_are_the_files():
    shipped = sum(f.stat().st_size for f in PRETRAINED.rglob("*") if f.is_file())
    assert f"Two trained models ship in the package ({shipped / 1e6:.1f} MB)" in page("docs/guide/export.md")
    import importlib.util

    spec = importlib.util.spec_from_file_location("bad_inputs", ROOT / "tests" / "test_bad_inputs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert f"`tests/test_bad_inputs.py`: {len(mod.CASES) + len(mod.RUN_CASES)} cases" in page("docs/guide/errors.md")


def test_the_determinism_run_counts_are_the_results():
    rows = result("determinism.json")["rows"]
    by = {t: sum(r["threads"] == t for r in rows) for t in (1, 2)}
    assert (f"{by[1]} one-epoch `pytorch-example` runs at 1 thread and {by[2]} at 2 threads" in page("docs/results.md"))


def test_the_fast_bernoulli_shares_are_the_profile():
    prof = result("nll-bernoulli.json")
    s, med = prof["settings"], prof["median"]
    assert abs(prof["nll"]["bce"] - prof["nll"]["fast"]) < 1e-4  # the two forms give the same estimate
    assert prof["bce_share_of_is_nll"] == med["bce"]["log_prob_cpu_s"] / med["bce"]["total_cpu_s"]
    assert (f"BCE-with-logits, {100 * prof['bce_share_of_is_nll']:.0f}% of the IS-NLL CPU time of the 784-400-20 MLP, "
            f"takes two exps and a log per pixel; the same value comes in {100 * prof['fast_over_bce']:.0f}% of that "
            f"time (medians of {s['rounds']} alternating rounds, {s['images']} test images × k = {s['k']}") in page("docs/results.md")
