"""The result tables in README.md / docs are what benchmarks/tables.py makes from the committed
benchmarks/results/{model,conditional}-family.json, and the renderer turns a run into the row a
reader expects."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tables():
    spec = importlib.util.spec_from_file_location("tables", ROOT / "benchmarks" / "tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def config(model, options=None, beta=1.0, hidden=(200, 200), latent=50, activation="tanh"):
    return {"preset": model, "model": model, "arch": "mlp", "hidden": list(hidden), "latent_dim": latent,
            "activation": activation, "beta": beta, "options": options or {}, "epochs": 5}


FAMILY = {
    "protocol": {"k": 1000, "smoke": False},
    "runs": {
        "vae": {"has_density": True, "epochs": 5, "train_seconds": 74.4, "train_cpu_seconds": 20.2, "config": config("vae"),
                "published": {"nll": "86.76"},
                "evaluation": {"nll": 121.184, "nll_se": 0.801, "k": 1000, "neg_elbo": 124.094, "kl": 13.776,
                               "active_units": 35, "latent_dim": 50}},
        "vamp-relu": {"has_density": True, "epochs": 5, "train_seconds": 320.0, "train_cpu_seconds": 80.0,
                      "config": config("vamp", {"pseudo_inputs": 500, "schedule": "linear"}, hidden=(300, 300),
                                       latent=40, activation="relu"),
                      "evaluation": {"nll": 102.36, "nll_se": 0.71, "k": 1000, "neg_elbo": 107.3, "kl": 17.71,
                                     "active_units": 40, "latent_dim": 40}},
        "sparse-ae": {"has_density": False, "epochs": 2, "train_seconds": 29.2, "train_cpu_seconds": 9.6,
                      "config": config("sparse-ae", {"rho": 0.05, "weight": 3.0}, hidden=(400,), latent=64),
                      "evaluation": {"bce": 98.991, "mse": 16.523, "penalty": {"sparsity": 2.3771}}},
    },
}
CONDITIONAL = {
    "protocol": {"noises": [0.1], "smoke": False},
    "runs": {
        "beta-4": {"conditional": False, "epochs": 10, "train_seconds": 57.3, "train_cpu_seconds": 50.5,
                   "args": ["--preset", "pytorch-example", "--beta", "4", "--epochs", "10"],
                   "config": config("vae", beta=4.0, hidden=(400,), latent=20, activation="relu"),
                   "evaluation": {"loss": 149.65, "neg_elbo": 121.69, "nll": 108.87, "nll_se": 0.7,
                                  "active_units": 15, "latent_dim": 20},
                   "sensitivity": {"0.1": {"relative": 0.3456}}},
        "cvae": {"conditional": True, "epochs": 10, "train_seconds": 240.0, "train_cpu_seconds": 61.0, "args": ["--preset", "cvae"],
                 "config": config("cvae", {"classes": 10}, hidden=(400,), latent=20, activation="relu"),
                 "evaluation": {"loss": 98.81, "neg_elbo": 98.81, "marginal_neg_elbo": 99.85, "nll": 96.71,
                                "nll_se": 0.59, "active_units": 20, "latent_dim": 20},
                 "sensitivity": {"0.1": {"relative": 0.492}}},
    },
    "extra": {"gradvar": {"run": "beta-4", "command": "vaekit gradvar R --batch-size 100 --draws 200",
                          "parameters": 330040, "batch": 100, "draws": 200, "reparam": {"variance": 0.0022137},
                          "score": {"variance": 14.21}, "score-baseline": {"variance": 0.2163},
                          "ratio_score": 6419.2, "ratio_score-baseline": 97.7}},
}


def test_every_result_table_in_the_docs_matches_its_committed_json(tables):
    for name in tables.BLOCKS:
        start, end = tables.markers(name)
        doc = tables.holder(start, end)  # exactly one of README.md, docs/**/*.md holds it
        assert tables.block_text(doc.read_text(), start, end) == tables.render_block(name), (
            f"{doc.name}'s table {name} differs from benchmarks/results: run python benchmarks/tables.py --write")


def test_every_block_has_its_committed_results_file(tables):
    for name, (files, _) in tables.BLOCKS.items():
        for file in (files,) if isinstance(files, str) else files:
            assert (tables.RESULTS / file).is_file(), f"block {name}: benchmarks/results/{file} is not committed"
        assert not tables.render_block(name).startswith("(not measured yet"), name


def test_the_committed_results_are_full_runs_not_smoke_checks():
    for file in ("model-family.json", "conditional-family.json"):
        d = json.loads((ROOT / "benchmarks" / "results" / file).read_text())
        assert d["protocol"]["smoke"] is False, file
        assert d["runs"], file
        for name, run in d["runs"].items():  # every run trained the epochs its config asked for
            assert run["epochs"] == run["config"]["epochs"], (file, name)
            assert run["made"]["threads"] == 1, (file, name)


def test_family_rows_come_from_each_runs_config_and_evaluation(tables):
    vaes = tables.render_family(FAMILY).splitlines()
    assert vaes[0].startswith("| run | model, options | test NLL (IS, k=1000) | test -ELBO | KL | active units |")
    assert vaes[2] == "| vae | `vae` | 121.18 ± 0.80 | 124.09 | 13.78 | 35/50 | 5 | 74 s (CPU 20 s) | 86.76 |"
    # the options as config.json has them; the net in bold because it differs from the first run's
    assert vaes[3] == ("| vamp-relu | `vamp`, pseudo_inputs 500, schedule linear, **relu 300-300-40** | 102.36 ± 0.71 "
                       "| 107.30 | 17.71 | 40/40 | 5 | 320 s (CPU 80 s) | — |")
    assert len(vaes) == 4  # the autoencoder has no density: not in this table
    aes = tables.render_autoencoders(FAMILY).splitlines()
    assert aes[2:] == ["| sparse-ae | `sparse-ae`, rho 0.05, weight 3 | 98.99 | 16.52 | sparsity 2.377 | 2 | 29 s (CPU 10 s) |"]


def test_conditional_rows_show_the_bound_the_label_marginal_and_the_training_loss(tables):
    rows = tables.render_conditional(CONDITIONAL).splitlines()
    assert rows[0] == "| model (preset) | latent | test −ELBO | test NLL (IS) | active units | epochs | training time |"
    assert rows[2] == ("| beta-4: `vae`, β = 4 (`--preset pytorch-example --beta 4`) | 20 | 121.69 (training loss "
                       "149.65) | 108.87 ± 0.70 | 15/20 | 10 | 57 s (CPU 50 s) |")
    assert rows[3] == ("| cvae: `cvae`, classes 10 (`--preset cvae`), label-marginal −log p(x) | 20 | 99.85 "
                       "| 96.71 ± 0.59 | 20/20 | 10 | 240 s (CPU 61 s) |")
    assert rows[4] == "| cvae, given the label: −log p(x\\|y) | 20 | 98.81 | — | 20/20 | 10 | (same run) |"
    assert tables.render_sensitivity(CONDITIONAL).splitlines() == [
        "| input noise s | beta-4 | cvae (label inferred) |", "|---|---|---|", "| 0.1 | 0.346 | 0.492 |"]
    grad = tables.render_gradvar(CONDITIONAL).splitlines()
    assert grad[0].startswith("On the trained `beta-4` run (330,040 encoder parameters, 100 test images, 200 draws")
    assert grad[4:] == ["| reparameterised (z = μ + σε) | 0.00221 | 1 |", "| score function (REINFORCE) | 14.2 | 6419 |",
                        "| score function − baseline log p(x \\| z = μ) | 0.216 | 98 |"]


def test_write_fills_the_block_wherever_it_is_keeping_a_list_items_indentation(tables, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "model-family.json").write_text(json.dumps(FAMILY))
    (results / "conditional-family.json").write_text(json.dumps(CONDITIONAL))
    (tmp_path / "docs" / "results").mkdir(parents=True)
    page = tmp_path / "docs" / "results" / "mnist.md"
    pads = ["", "  "] + [""] * (len(tables.BLOCKS) - 2)  # the second block sits in a list item
    blocks = [f"{pad}{s}\n{pad}old\n{pad}{e}" for pad, (s, e) in zip(pads, (tables.markers(n) for n in tables.BLOCKS))]
    page.write_text("# Results\n\n- a list item:\n\n" + "\n\ntext\n\n".join(blocks) + "\n\nthe end\n")
    (tmp_path / "README.md").write_text("no tables here\n")
    written = tables.write_blocks(tmp_path, results)
    assert {path for _, path in written} == {page}
    text = page.read_text()
    assert "old" not in text and text.endswith("the end\n")
    for name in tables.BLOCKS:
        start, end = tables.markers(name)
        assert tables.block_text(text, start, end) == tables.render_block(name, results)
    ae = text.split(tables.markers("family-autoencoders")[0])[1].splitlines()
    assert ae[1].startswith("  | run | model, options | test BCE")  # the table stays inside the list item
    assert f"\n  {tables.markers('family-autoencoders')[1]}" in text
    assert tables.write_blocks(tmp_path, results) and page.read_text() == text  # idempotent


def test_a_block_in_two_files_or_in_none_is_an_error(tables, tmp_path):
    start, end = tables.markers("family-results")
    (tmp_path / "README.md").write_text(f"{start}\n{end}\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text(f"{start}\n{end}\n")
    with pytest.raises(ValueError, match="README.md, docs/a.md"):
        tables.holder(start, end, tmp_path)
    with pytest.raises(ValueError, match="no file"):
        tables.holder(*tables.markers("conditional-results"), tmp_path)


IWAE_RUN = {  # the fields of benchmarks/results/iwae-paper-vae.json the renderer reads
    "epochs": 90, "train_cpu_seconds": 345.2, "config": {"batch_size": 100}, "made": {"threads": 1},
    "train_process": {"user": 350.0, "sys": 5.0, "wall": 1620.0},
    "evaluate_process": {"user": 398.0, "sys": 4.0, "wall": 1020.0},
    "evaluation": {"n": 10000, "nll": {"value": 91.463, "se": 0.252, "mc_se": 0.0029, "k": 5000},
                   "elbo": {"neg_elbo": 95.151}, "latent": {"active_units": 15, "latent_dim": 50}},
}


def test_the_published_protocol_block_derives_the_gap_and_the_bound_from_the_run(tables):
    text = tables.render_iwae_paper(IWAE_RUN)
    rows = text.splitlines()
    assert rows[3] == ("| vaekit `iwae-paper-vae` | **91.46 ± 0.25** (SE over the 10,000 test images; MC SE 0.003) | 90 "
                       "| 345 s CPU, 1 thread |")
    assert "The honest gap is **4.7 nats**, from training 36x fewer epochs (at 5x fewer steps per epoch)" in text
    assert "negative ELBO is 95.15, so importance sampling tightens the bound by 3.7 nats. 15 of the 50" in text
    assert "(27 min wall on a shared machine)" in text and "(50,000,000 decoder passes) took 402 s of CPU time (17 min wall)" in text


def test_the_keras_conv_rows_put_both_libraries_by_seed_with_each_ones_best_in_bold(tables):
    run = lambda seed, loss, final: {"seed": seed, "loss": loss, "recon": loss - 6, "kl": 6.0,  # noqa: E731
                                     "final_model_loss": final}
    seeds = {"settings": {"target": 148.0, "epochs": 30},
             "results": {"vaekit": [run(4, 149.3, 149.1), run(5, 147.9, 147.5)], "keras": [run(4, 149.5, 150.2)]},
             "summary": {"vaekit": {"runs": 2, "mean": 148.6, "sd": 0.99, "min": 147.9, "max": 149.3, "at_or_below_target": 1},
                         "keras": {"runs": 1, "mean": 149.5, "sd": 0.0, "min": 149.5, "max": 149.5, "at_or_below_target": 0}}}
    rows = tables.render_keras_seeds(seeds).splitlines()
    assert rows[2] == "| 4 | 149.30 (143.30 + 6.00) | 149.10 | **149.50** (143.50 + 6.00) | 150.20 |"
    assert rows[3] == "| 5 | **147.90** (141.90 + 6.00) | 147.50 |  |  |"
    assert rows[5] == "| **≤ 148** | 1 of 2 | 1 of 2 | 0 of 1 | 0 of 1 |"
    pt = {"epochs": 10, "evaluation": {"seed": 0, "elbo": {"neg_elbo": 105.5, "recon": 79.9, "kl": 25.6}}}
    assert "target ≤ 148 reached by 1 run of either library here |" in tables.render_classic(pt, seeds)
