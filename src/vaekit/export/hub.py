"""Hugging Face Hub folders: write one, download one (``hf://OWNER/NAME``), push one.

A Hub folder is a run folder plus a model card::

    config.json          the run's resolved config (what vaekit.load reads)
    model.safetensors    the weights, byte for byte the run's (format version in the header)
    README.md            the model card: YAML front matter (library_name, tags, license, datasets,
                         model-index with the evaluation's metrics), samples, how to load, papers
    samples.png          64 samples (seed 0)
    evaluation.json      the run's evaluation, when it has one

so ``vaekit.load(DIR)`` and every command taking a run read it unchanged. Downloading and pushing
need ``huggingface_hub`` (the ``hub`` extra); ``HF_ENDPOINT`` selects the server.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import atomic_write_text, load_tensors, save_model
from ..errors import VaekitError

KINGMA = "Kingma & Welling (2014), Auto-Encoding Variational Bayes, ICLR. arXiv:1312.6114"
CITATIONS = {  # the paper(s) behind each registered family
    "vae": [KINGMA],
    "iwae": [KINGMA, "Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders, ICLR. arXiv:1509.00519"],
    "vamp": [KINGMA, "Tomczak & Welling (2018), VAE with a VampPrior, AISTATS. arXiv:1705.07120"],
    "hvae": [KINGMA, "Sønderby et al. (2016), Ladder Variational Autoencoders, NeurIPS. arXiv:1602.02282"],
    "avae": [KINGMA, "Cemgil et al. (2020), The Autoencoding Variational Autoencoder, NeurIPS. arXiv:2012.03715"],
    "cvae": [KINGMA, "Sohn, Lee & Yan (2015), Learning Structured Output Representation using Deep Conditional "
             "Generative Models, NeurIPS"],
    "fullcov-vae": [KINGMA],
    "capacity-vae": [KINGMA, "Burgess et al. (2018), Understanding disentangling in beta-VAE. arXiv:1804.03599"],
    "warmup-vae": [KINGMA, "Bowman et al. (2016), Generating Sentences from a Continuous Space, CoNLL. arXiv:1511.06349"],
    "freebits-vae": [KINGMA, "Kingma et al. (2016), Improved Variational Inference with Inverse Autoregressive "
                     "Flow, NeurIPS. arXiv:1606.04934"],
    "ae": ["Hinton & Salakhutdinov (2006), Reducing the Dimensionality of Data with Neural Networks, Science"],
    "dae": ["Vincent et al. (2008), Extracting and Composing Robust Features with Denoising Autoencoders, ICML"],
    "sparse-ae": ["Ng (2011), Sparse autoencoder, CS294A lecture notes"],
    "cae": ["Rifai et al. (2011), Contractive Auto-Encoders, ICML"],
}
HUB_DATASETS = {"mnist": "ylecun/mnist"}
DATA_LICENSES = {"mnist": "MNIST (Y. LeCun, C. Cortes, C. J. C. Burges) is licensed CC BY-SA 3.0"}
# The Hub's license identifiers (huggingface.co/docs/hub/repositories-licenses): the card's
# ``license`` must be one of them, or the Hub refuses the README on push. "unknown" when the
# model's author chose none: vaekit never picks a license for someone else's weights.
HUB_LICENSES = (
    "apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0 "
    "bigcode-openrail-m afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda "
    "cc cc0-1.0 cc-by-2.0 cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0 "
    "cc-by-nc-4.0 cc-by-nd-4.0 cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0 "
    "cdla-sharing-1.0 cdla-permissive-1.0 cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 "
    "eupl-1.1 eupl-1.2 agpl-3.0 gfdl gpl gpl-2.0 gpl-3.0 lgpl lgpl-2.1 lgpl-3.0 isc lppl-1.3c ms-pl mpl-2.0 "
    "odc-by odbl openrail++ osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib pddl lgpl-lr unknown other"
).split()
REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")


def _hub() -> Any:
    try:
        import huggingface_hub
    except ImportError:
        raise VaekitError("the Hugging Face Hub needs huggingface_hub: pip install 'vaekit[hub]'") from None
    return huggingface_hub


def check_license(license: str | None) -> str:
    """The card's license identifier: ``license`` lower-cased if the Hub knows it, "unknown" for None."""
    if license is None:
        return "unknown"
    ident = license.strip().lower()
    if ident == "other":  # the Hub then wants license_name and license_link, which the card would lack
        raise VaekitError("--license other: the Hub then needs license_name and license_link, which vaekit does "
                          "not write; export with a Hub identifier, or without --license and edit README.md")
    if ident not in HUB_LICENSES:
        import difflib

        near = difflib.get_close_matches(ident, HUB_LICENSES, n=1, cutoff=0.5)
        hint = f"did you mean '{near[0]}'? " if near else ""
        raise VaekitError(f"--license {license}: not a Hugging Face Hub license identifier; {hint}use one from "
                          "huggingface.co/docs/hub/repositories-licenses")
    return ident


def cache_dir() -> Path:
    """huggingface_hub's cache folder (its own rule, without importing it): runs in it are read-only."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


# ---------------------------------------------------------------------------------------------
# Writing a folder


def _evaluation(run: Any) -> dict[str, Any] | None:
    """The evaluation a card states: the best one of the run's current weights (``vaekit evaluate``,
    :mod:`vaekit.evaluations`), else a shipped model's ``evaluation.json`` summary."""
    from .. import evaluations

    reports, _ = evaluations.load_all(run.dir)
    current, _ = evaluations.split_current(reports, evaluations.weights_id(run.model))
    if current:
        return {k: v for k, v in current[0].items() if k != "_file"}
    legacy = run.dir / evaluations.LEGACY
    return json.loads(legacy.read_text()) if legacy.is_file() else None


def _metrics(run: Any) -> tuple[list[dict[str, Any]], str]:
    """The model-index metrics from the run's evaluation.json (else its last held-out loss), and
    the split they were measured on."""
    ev = _evaluation(run) or {}
    out: list[dict[str, Any]] = []
    if "nll" in ev and isinstance(ev["nll"], (int, float)):  # a shipped model's summary
        out.append({"type": "nll", "value": round(ev["nll"], 3),
                    "name": f"IS NLL, nats (k={ev['nll_k']}, first {ev['nll_images']} test images)"})
        out.append({"type": "neg_elbo", "value": round(ev["test_neg_elbo"], 3),
                    "name": f"negative ELBO, nats ({ev['test_images']} test images)"})
        return out, "test"
    if "nll" in ev:  # `vaekit evaluate`'s report
        out.append({"type": "nll", "value": round(ev["nll"]["value"], 3),
                    "name": f"IS NLL, nats (k={ev['nll']['k']}, {ev['n']} images)"})
    if "elbo" in ev:
        out.append({"type": "neg_elbo", "value": round(ev["elbo"]["neg_elbo"], 3),
                    "name": f"negative ELBO, nats ({ev['n']} images)"})
    if out:
        return out, ev.get("split", "test")
    for row in reversed(run.metrics):
        for split in ("test", "val", "trainset"):
            if f"{split}_loss" in row:
                name = f"{split} loss at epoch {row.get('epoch', '?')} (negative ELBO when beta = 1)"
                return [{"type": "loss", "value": round(row[f"{split}_loss"], 3), "name": name}], split
    return [], "test"


def model_card(run: Any, repo: str, metrics: list[dict[str, Any]], split: str, samples: bool,
               license: str = "unknown") -> str:
    """README.md: YAML front matter the Hub indexes, then what the model is and how to use it.
    ``license``: a checked identifier (:func:`check_license`); "unknown" says that none was chosen."""
    import yaml

    cfg, model = run.config, run.model
    source = cfg.data.source
    front: dict[str, Any] = {
        "library_name": "vaekit",
        "license": license,
        "tags": ["vaekit", "variational-autoencoder" if model.has_posterior else "autoencoder", model.name,
                 "pytorch", "safetensors"],
    }
    if source in HUB_DATASETS:
        front["datasets"] = [HUB_DATASETS[source]]
    if metrics:
        front["model-index"] = [{"name": repo.split("/")[-1], "results": [{
            "task": {"type": "image-generation" if len(model.shape) == 3 else "other",
                     "name": "density estimation" if model.has_posterior else "reconstruction"},
            "dataset": {"name": source, "type": HUB_DATASETS.get(source, source), "split": split},
            "metrics": metrics}]}]
    lines = ["---", yaml.safe_dump(front, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
             f"# {repo.split('/')[-1]}", "",
             f"A `{model.name}` model trained with vaekit "
             f"({'preset `' + cfg.preset + '`, ' if cfg.preset else ''}{cfg.model.arch} networks, "
             f"{model.latent_dim}-D latent, {cfg.model.likelihood} likelihood) on `{source}` data of shape "
             f"{tuple(model.shape)}, pixels in [0, 1], binarization `{cfg.data.binarize}`.", ""]
    lines += ["## License", "",
              f"The weights: `{license}`." if license != "unknown" else
              "The weights: no license was chosen for them (`license: unknown`); whoever trained them sets "
              "one with `vaekit export RUN --format hub --license ID` or `vaekit push RUN REPO --license ID`."]
    if source in DATA_LICENSES:
        lines += [f"The training data: {DATA_LICENSES[source]}."]
    lines += [""]
    if metrics:
        lines += ["## Evaluation", "", "| metric | value |", "|---|---|"]
        lines += [f"| {m['name']} | {m['value']} |" for m in metrics] + [""]
    if samples:
        lines += ["## Samples", "", "![64 samples, seed 0](samples.png)", ""]
    lines += ["## How to load it", "", "```python", "import vaekit  # pip install 'vaekit[hub]'", "",
              f'model = vaekit.load("hf://{repo}")  # or a local copy of this folder',
              "images = model.sample(16)             # (16, *shape), in [0, 1]",
              "codes = model.encode(images)", "```", "",
              f"or from the shell: `vaekit sample hf://{repo} -o samples.png`, "
              f"`vaekit export hf://{repo} --format onnx -o onnx/`.", "",
              "The weights are `model.safetensors` (no pickle); its header carries the file format version "
              "(`vaekit/1`) and the config; `config.json` is the full training config.", "",
              "## Cite", ""]
    lines += [f"- {c}" for c in CITATIONS.get(model.name, [KINGMA])] + [""]
    return "\n".join(lines)


def export_hub(run: Any, out: str | Path, *, repo: str = "OWNER/NAME", license: str | None = None) -> Path:
    """Write ``run`` (a loaded :class:`~vaekit.Run`) as a Hub folder ``out`` (see the module docstring);
    ``license``: the weights' Hub license identifier (None: "unknown", never one vaekit picks)."""
    from ..run import CONFIG, LAST, MODEL, model_meta

    license = check_license(license)  # before anything is written
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / CONFIG, run.config.to_json())
    if (run.dir / MODEL).is_file():
        shutil.copyfile(run.dir / MODEL, out / MODEL)
    else:  # an interrupted run: its last checkpoint's weights, without the optimiser state
        meta = load_tensors(run.dir / LAST)[1]
        save_model(out / MODEL, run.model, model_meta(run.config, run.model, meta["epoch"], meta["step"]))
    ev = _evaluation(run)
    if ev is not None:  # the run's best evaluation of these very weights, as the Hub folder's file
        atomic_write_text(out / "evaluation.json", json.dumps(ev, indent=2) + "\n")
    samples = len(run.model.shape) == 3  # images; a table's rows have no picture
    if samples:
        from ..viz import save_grid

        with torch.random.fork_rng():
            torch.manual_seed(0)
            save_grid(run.model.sample(64), out / "samples.png")
    metrics, split = _metrics(run)
    atomic_write_text(out / "README.md", model_card(run, repo, metrics, split, samples, license))
    return out


# ---------------------------------------------------------------------------------------------
# Downloading and pushing


def _repo(spec: str) -> tuple[str, str | None]:
    repo, _, revision = spec.partition("@")
    if not REPO_ID.fullmatch(repo):
        raise VaekitError(f"hf://{spec}: expected hf://OWNER/NAME or hf://OWNER/NAME@REVISION")
    return repo, revision or None


def _hub_error(what: str, err: Exception) -> VaekitError:
    msg = " ".join(str(err).split())[:240]
    return VaekitError(f"{what}: {type(err).__name__}: {msg}")


def download(spec: str) -> Path:
    """The local folder of the Hub repository ``OWNER/NAME[@REVISION]``, downloaded into the Hub cache
    (only what a run needs: the config, the weights, the card and the evaluation)."""
    repo, revision = _repo(spec)
    hub = _hub()
    try:
        path = hub.snapshot_download(
            repo, revision=revision, endpoint=os.environ.get("HF_ENDPOINT"), cache_dir=cache_dir(),
            allow_patterns=["config.json", "model.safetensors", "evaluation.json", "README.md"],
        )
    except Exception as err:  # network, missing repository, auth: one line, whatever the cause
        raise _hub_error(f"hf://{spec} cannot be downloaded", err) from None
    return Path(path)


def push(run_spec: str | Path, repo: str, *, private: bool = False, message: str = "Upload a vaekit model",
         license: str | None = None) -> str:
    """Upload ``run_spec`` as a Hub folder to the repository ``repo`` (created if needed); the URL."""
    from ..run import load_run

    check_license(license)  # before the download or the upload
    repo, revision = _repo(repo)
    if revision:
        raise VaekitError(f"push: give the repository as OWNER/NAME, without @{revision}")
    run = load_run(run_spec)
    hub = _hub()
    api = hub.HfApi(endpoint=os.environ.get("HF_ENDPOINT"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = export_hub(run, Path(tmp) / "hub", repo=repo, license=license)
        try:
            url = api.create_repo(repo, private=private, exist_ok=True)
            api.upload_folder(folder_path=folder, repo_id=repo, commit_message=message)
        except Exception as err:
            raise _hub_error(f"push to {repo} failed", err) from None
    return str(url)


__all__ = ["CITATIONS", "HUB_LICENSES", "cache_dir", "check_license", "download", "export_hub", "model_card", "push"]
