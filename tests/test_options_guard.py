"""The guard's walk: every key of DataConfig, ModelConfig and TrainConfig and every option
of every registered model, set to a value other than the baseline's, either changes what a tiny run
does or is refused with one line naming it. A key that is neither fails; so does a key without a
probe below (a new key needs one).

How a run is observed (``observe``): the metric rows (timings dropped), a hash of the final
weights, the files written, the log lines (timings dropped), every batch the model saw (training
or evaluation, its size), the intra-op threads during the forward pass, the checkpoint saves, what
went to stderr, and the URLs asked of the MNIST download. "Refused" means a VaekitError with exit
code 2 whose message names the key (from resolve, open_data or the trainer's start).

Each probe is (value, given): ``given`` are settings applied to both the baseline and the variant,
the context where the key has its effect. Every key with a conditional declaration is also set
alone on the bare baseline, where the guard must refuse it (``test_conditional_keys_are_refused_
where_they_do_not_apply``). Special cases, each observed honestly:

- train.epochs-dependent keys (lr_schedule, lr_step_epochs, lr_gamma, eval_every, checkpoint_every)
  run 2 epochs: schedules step between epochs, the last epoch always evaluates and checkpoints.
- train.max_bad_steps: only non-finite losses exercise it; the context injects NaN losses into
  the first 3 training steps (the default 5 survives them, 1 stops the run).
- train.progress: tqdm draws only on a terminal; the context gives the run a stderr that is a TTY.
- train.tensorboard: the tensorboard package is not installed here, so the context provides a
  recording SummaryWriter; without the package the key changes nothing.
- train.threads: observed as torch's thread count inside the forward pass (the suite runs at 1).
- train.device: "cuda" is refused on a CPU-only torch (it runs on CUDA where there is one);
  "cpu" is not probed: on a CPU-only machine it is what "auto" picks, the same run by design.
- train.precision / compile: CUDA speed-ups, refused on CPU (no CPU context).
- data.download / data.url: no network in tests; the download is a stub returning a distinct
  image set, and the run must train on what it returns (and ask for the URL given).
- data.missing / data.skip_bad: on a table with gaps / a folder with a broken file the baseline
  is refused and the variant trains; that difference is the behaviour.
- model.columns: written by training from the table, never an input: refused on a new run on any
  source; its use by score and resume is tested in tests/test_score.py.
- data.grayscale: probed with false (digits become 3-channel); true on grey data keeps them grey.
- final pictures (curves, manifold) are not drawn: no key acts only through them, and matplotlib
  would dominate the walk's time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import vaekit
from vaekit import checkpoint
from vaekit.config import Config, DataConfig, ModelConfig, TrainConfig, resolve
from vaekit.errors import VaekitError
from vaekit.guard import EVERYWHERE, applies_of
from vaekit.models import MODELS

# The tiny run every probe varies: digits, 200 training images in batches of 32 (7 steps), 1 epoch.
BASE = {"data": {"source": "digits", "limit": 200}, "model": {"latent_dim": 4},
        "train": {"epochs": 1, "batch_size": 32, "progress": False, "tensorboard": False, "eval_batch_size": 100}}
TWO = {"train": {"epochs": 2}}
CONV = {"model": {"arch": "conv"}}

# key -> (value, given). Files named {...} are made by the ``files`` fixture.
PROBES: dict[str, tuple[Any, dict]] = {
    "data.source": ("mnist", {"data": {"test_limit": 60}}),
    "data.path": ("{arrays_b}", {"data": {"source": "arrays", "path": "{arrays_a}"}}),
    "data.split": ("all", {}),
    "data.val_size": (0.2, {}),
    "data.binarize": ("threshold", {}),
    "data.threshold": (0.3, {"data": {"binarize": "threshold"}}),
    "data.test_binarize_seed": (1, {"data": {"binarize": "static"}}),
    "data.image_size": ([4, 4], {}),
    "data.grayscale": (False, {}),
    "data.limit": (100, {}),
    "data.test_limit": (50, {}),
    "data.download": (True, {"data": {"source": "mnist", "test_limit": 60}}),
    "data.url": ("http://mirror.invalid/mnist/", {"data": {"source": "mnist", "download": True, "test_limit": 60}}),
    "data.seed": (1, {}),
    "data.categorical": (["n"], {"data": {"source": "csv", "path": "{csv}"}}),
    "data.missing": ("mask", {"data": {"source": "csv", "path": "{csv_gaps}"}}),
    "data.stream": ("on", {"data": {"source": "arrays", "path": "{npy}"}}),
    "data.skip_bad": (True, {"data": {"source": "folder", "path": "{folder_bad}"}}),
    "model.name": ("ae", {}),
    "model.latent_dim": (2, {}),
    "model.arch": ("conv", {}),
    "model.hidden": ([8], {}),
    "model.decoder_hidden": ([8], {}),
    "model.channels": ([4, 8], CONV),
    "model.kernel_size": (5, CONV),
    "model.strides": ([1, 2], CONV),
    "model.dense": ([16], CONV),
    "model.decoder_dense": ([16], CONV),
    "model.init": ("glorot", {}),
    "model.activation": ("tanh", {}),
    "model.likelihood": ("gaussian", {}),
    "model.sigma": (0.5, {"model": {"likelihood": "gaussian"}}),
    "model.min_sigma": (0.1, {"model": {"likelihood": "gaussian-learned"}}),
    "model.beta": (2.0, {}),
    "model.kl": ("mc", {}),
    "model.samples": (2, {}),
    "model.options": ({"k": 2}, {"model": {"name": "iwae"}}),
    "model.columns": ([{"name": "h", "type": "numeric", "mean": 0.0, "std": 1.0, "masked": False}],
                      {"data": {"source": "csv", "path": "{csv}"}}),
    "train.epochs": (2, {}),
    "train.batch_size": (50, {}),
    "train.lr": (1e-2, {}),
    "train.adam_eps": (1e-2, {}),
    "train.weight_decay": (0.1, {}),
    "train.lr_schedule": ("cosine", TWO),
    "train.lr_step_epochs": (1, {"train": {"epochs": 2, "lr_schedule": "step"}}),
    "train.lr_gamma": (0.1, {"train": {"epochs": 2, "lr_schedule": "exponential"}}),
    "train.grad_clip": (0.01, {}),
    "train.seed": (1, {}),
    "train.device": ("cuda", {}),
    "train.eval_batch_size": (7, {}),
    "train.eval_every": (0, TWO),
    "train.checkpoint_every": (2, TWO),
    "train.checkpoint_every_steps": (2, {}),
    "train.snapshot_every": (1, {}),
    "train.max_bad_steps": (1, {"faults": 3}),
    "train.progress": (True, {"tty": True}),
    "train.tensorboard": (True, {"tensorboard": True}),
    "train.threads": (2, {}),
    "train.plot_every": (1, {}),
    "train.precision": ("bf16", {}),
    "train.compile": (True, {}),
}
# Refused on every context this machine offers (see the module docstring).
NEVER_RUN = {"model.columns"} | ({"train.device", "train.precision", "train.compile"}
                                 if not torch.cuda.is_available() else set())

# Keys whose context's baseline is refused, naming the key as the fix (data.missing=mask, data.skip_bad=true).
BASE_REFUSED = {"data.missing", "data.skip_bad"}

# "name.option" -> (value, given options), the model trained by name with the other options at defaults.
OPTION_PROBES: dict[str, tuple[Any, dict]] = {
    "dae.noise": ("gaussian", {}), "dae.std": (0.5, {"noise": "gaussian"}), "dae.drop": (0.5, {}),
    "sparse-ae.penalty": ("kl", {}), "sparse-ae.weight": (0.1, {}), "sparse-ae.rho": (0.2, {"penalty": "kl"}),
    "cae.weight": (1.0, {}), "cae.jacobian": ("stochastic", {}), "cae.projections": (3, {"jacobian": "stochastic"}),
    "capacity-vae.gamma": (10.0, {}), "capacity-vae.c_max": (5.0, {}), "capacity-vae.steps": (2, {}),
    "warmup-vae.schedule": ("cyclical", {}), "warmup-vae.steps": (2, {}),
    "warmup-vae.ratio": (0.25, {"schedule": "cyclical", "steps": 4}),
    "warmup-vae.cycles": (1, {"schedule": "cyclical", "steps": 1}),
    "freebits-vae.floor": (1.0, {}), "freebits-vae.groups": (2, {}),
    "iwae.k": (2, {}),
    "vamp.pseudo_inputs": (3, {}), "vamp.schedule": ("cyclical", {}), "vamp.steps": (2, {}),
    "vamp.ratio": (0.25, {"schedule": "cyclical", "steps": 4}), "vamp.cycles": (1, {"schedule": "cyclical", "steps": 1}),
    "cvae.classes": (12, {}),
    "hvae.top_dim": (1, {}), "hvae.features": (16, {}), "hvae.top_hidden": (8, {}), "hvae.warmup_steps": (2, {}),
    "avae.rho": (0.5, {}), "avae.weight": (2.0, {}), "avae.decoded": ("mean", {}),
}

CSV = "h,colour,n\n" + "".join(f"{i * 0.37:.2f},{'rgb'[i % 3]},{i % 4}\n" for i in range(40))


def _merge(a: dict, b: dict) -> dict:
    out = json.loads(json.dumps(a))
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "options" else v
    return out


def _nested(dotted: str, value: Any) -> dict:
    section, name = dotted.split(".", 1)
    return {section: {name: value}}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    from PIL import Image
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("guard-data")
    x = (load_digits().images[:240] / 16).astype(np.float32)
    np.savez(root / "a.npz", x=x)
    np.savez(root / "b.npz", x=x[::-1].copy())
    np.save(root / "x.npy", x)
    (root / "t.csv").write_text(CSV)
    (root / "gaps.csv").write_text(CSV.replace("\n0.37,", "\n,", 1))
    for i in range(40):
        d = root / "imgs" / str(i % 2)
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray((x[i] * 255).astype(np.uint8)).save(d / f"{i}.png")
    (root / "imgs" / "0" / "broken.png").write_text("not a png")
    return {"arrays_a": str(root / "a.npz"), "arrays_b": str(root / "b.npz"), "npy": str(root / "x.npy"),
            "csv": str(root / "t.csv"), "csv_gaps": str(root / "gaps.csv"), "folder_bad": str(root / "imgs")}


def _fill(obj: Any, files: dict[str, str]) -> Any:
    text = json.dumps(obj)
    for name, path in files.items():
        text = text.replace("{" + name + "}", path)
    return json.loads(text)


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Writer:  # stands in for torch.utils.tensorboard.SummaryWriter (package not installed)
    def __init__(self, log_dir: str) -> None:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        self.path = Path(log_dir) / "scalars.jsonl"

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps([tag, value, step]) + "\n")

    def close(self) -> None:
        pass


def observe(raw: dict, out: Path, *, faults: int = 0, tty: bool = False, tensorboard: bool = False) -> dict:
    """Train the config ``raw`` into ``out`` and return what the run did (see the module docstring)."""
    seen: dict[str, Any] = {"batches": [], "threads": set(), "saves": 0, "downloads": []}
    try:
        cfg = Config.from_dict(raw)
    except VaekitError as err:
        return {"refused": str(err)}
    mp = pytest.MonkeyPatch()
    import importlib

    import vaekit.data.download as dl
    import vaekit.viz.progress as vp

    tr = importlib.import_module("vaekit.train")  # the module: vaekit.train is also the function

    real_build, real_save = tr.build, checkpoint.save_training_state

    def build(mcfg, shape):  # noqa: ANN001, ANN202
        model = real_build(mcfg, shape)
        bad = [faults]

        def hook(m, inputs, terms):  # noqa: ANN001, ANN202
            seen["batches"].append((m.training, int(inputs[0].shape[0])))
            seen["threads"].add(torch.get_num_threads())
            if m.training and bad[0] > 0:  # a non-finite loss (train.max_bad_steps' context)
                bad[0] -= 1
                return dataclasses.replace(terms, loss=terms.loss * float("nan"))
            return terms

        model.register_forward_hook(hook)
        return model

    def save(*a, **k):  # noqa: ANN002, ANN003, ANN202
        seen["saves"] += 1
        return real_save(*a, **k)

    def download(url):  # noqa: ANN001, ANN202 - no network: distinct images, the URL recorded
        from vaekit.data.mnist import _embedded

        seen["downloads"].append(url)
        e = _embedded()
        return dataclasses.replace(e, x_train=255 - e.x_train[:1000], y_train=e.y_train[:1000])

    threads = torch.get_num_threads()
    stderr = _TTY()
    lines: list[str] = []
    try:
        mp.setattr(tr, "build", build)
        mp.setattr(checkpoint, "save_training_state", save)
        mp.setattr(vp, "final_pictures", lambda *a, **k: [])
        mp.setattr(dl, "download_mnist", download)
        if tty:
            mp.setattr(sys, "stderr", stderr)
        if tensorboard:
            mp.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=_Writer))
        run = vaekit.train(cfg, out, log=lines.append)
    except VaekitError as err:
        return {"refused" if err.exit_code == 2 else "error": f"{type(err).__name__}: {err}"}
    finally:
        mp.undo()
        torch.set_num_threads(threads)  # train.threads sets torch's global count
    state = run.model.state_dict()
    digest = hashlib.sha256(b"".join(v.detach().cpu().numpy().tobytes() for v in state.values())).hexdigest()
    return {
        "metrics": [{k: v for k, v in r.items() if k not in ("seconds", "cpu_seconds")} for r in run.metrics],
        "weights": digest,
        "files": sorted(str(p.relative_to(out)) for p in out.rglob("*")),
        "log": [re.sub(r"\s+[\d.]+s$", "", line) for line in lines],
        "stderr": stderr.getvalue(), **{k: sorted(v) if isinstance(v, set) else v for k, v in seen.items()},
    }


class Walk:
    """Baselines per context, computed once per module."""

    def __init__(self, files: dict[str, str], root: Path) -> None:
        self.files, self.root, self.cache, self.n = files, root, {}, 0

    def run(self, given: dict, extra: dict | None = None) -> dict:
        flags = {k: given[k] for k in ("faults", "tty", "tensorboard") if k in given}
        cfg = _fill(_merge(_merge(BASE, {k: v for k, v in given.items() if k not in flags}), extra or {}), self.files)
        key = json.dumps([cfg, flags], sort_keys=True)
        if key not in self.cache:
            self.n += 1
            self.cache[key] = observe(cfg, self.root / f"run{self.n}", **flags)
        return self.cache[key]


@pytest.fixture(scope="module")
def walk(files, tmp_path_factory) -> Walk:
    return Walk(files, tmp_path_factory.mktemp("guard-runs"))


def _changed_or_refused(name: str, base: dict, variant: dict) -> None:
    if "refused" in variant:
        assert name in variant["refused"], f"{name}: refused without naming the key: {variant['refused']}"
        assert "\n" not in variant["refused"]
        return
    if name in BASE_REFUSED:  # the baseline refuses the data the key makes usable
        assert "refused" in base and name in base["refused"], base
    assert "refused" not in base or name in BASE_REFUSED, f"{name}: its context's baseline is refused: {base}"
    assert variant != base, f"{name}: set to a new value, the run did exactly the same thing and was not refused"


def test_every_key_has_a_probe_and_a_declaration():
    keys = {f"{s}.{f.name}" for s, cls in (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig))
            for f in dataclasses.fields(cls)}
    assert keys == set(PROBES), f"keys without a probe: {keys - set(PROBES)}; probes of no key: {set(PROBES) - keys}"
    opts = {f"{n}.{f.name}" for n, cls in MODELS.items() for f in dataclasses.fields(cls.Options)}
    assert opts == set(OPTION_PROBES), f"options without a probe: {opts - set(OPTION_PROBES)}"
    for cls in (DataConfig, ModelConfig, TrainConfig):
        for f in dataclasses.fields(cls):
            assert applies_of(f) is not None, f"{cls.__name__}.{f.name} declares no applies"


def test_the_baseline_is_deterministic(walk, tmp_path):
    assert observe(_fill(BASE, walk.files), tmp_path / "again") == walk.run({})


@pytest.mark.parametrize("name", sorted(PROBES))
def test_key_changes_the_run_or_is_refused(walk, name):
    value, given = PROBES[name]
    base, variant = walk.run(given), walk.run(given, _nested(name, value))
    _changed_or_refused(name, base, variant)
    if name in NEVER_RUN:
        assert "refused" in variant
    else:
        assert "refused" not in variant, f"{name} is refused in the context where it should apply: {variant}"


@pytest.mark.parametrize("name", sorted(OPTION_PROBES))
def test_model_option_changes_the_run_or_is_refused(walk, name):
    model, option = name.split(".", 1)
    value, given = OPTION_PROBES[name]
    at = {"model": {"name": model, "options": given}}
    base, variant = walk.run(at), walk.run({"model": {"name": model, "options": {**given, option: value}}})
    _changed_or_refused(f"model.options.{option}", base, variant)
    assert "refused" not in variant, variant


def _conditional(cls_fields) -> list:
    return [f for f in cls_fields if applies_of(f) not in (None, EVERYWHERE)]


@pytest.mark.parametrize("name", sorted(k for k, (_, g) in PROBES.items() if g and any(
    k == f"{s}.{f.name}" for s, c in (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig))
    for f in _conditional(dataclasses.fields(c)))))
def test_conditional_keys_are_refused_where_they_do_not_apply(walk, name):
    value, _ = PROBES[name]
    with pytest.raises(VaekitError, match=re.escape(name) + ".* has no effect here: it applies only "):
        Config.from_dict(_fill(_merge(BASE, _nested(name, value)), walk.files))


@pytest.mark.parametrize("name", sorted(k for k, (_, g) in OPTION_PROBES.items() if g))
def test_conditional_options_are_refused_where_they_do_not_apply(name):
    model, option = name.split(".", 1)
    value, _ = OPTION_PROBES[name]
    with pytest.raises(VaekitError, match=f"model.options.{option}=.* has no effect here"):
        resolve(overrides=[BASE, {"model": {"name": model, "options": {option: value}}}])
