import json
import re

import pytest
import torch
from conftest import small_config

import vaekit
from vaekit.checkpoint import load_tensors
from vaekit.errors import VaekitError


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_run_folder_contents(tmp_path, tiny_cfg):
    run = vaekit.train(tiny_cfg, tmp_path / "run", log=lambda s: None)
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"config.json", "metrics.jsonl", "model.safetensors", "samples.png", "reconstructions.png", "checkpoints"} <= files
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    for key in ("train_loss", "train_recon", "train_kl", "test_loss", "test_recon", "test_kl", "seconds"):
        assert key in rows[-1]
    assert rows[-1]["train_loss"] == pytest.approx(rows[-1]["train_recon"] + rows[-1]["train_kl"], rel=1e-5)
    assert rows[1]["train_loss"] < rows[0]["train_loss"]
    assert run.metrics == rows
    saved = vaekit.Config.from_dict(json.loads((tmp_path / "run" / "config.json").read_text()))
    assert saved == tiny_cfg


def test_training_is_deterministic(tmp_path, tiny_cfg):
    a = vaekit.train(tiny_cfg, tmp_path / "a", log=lambda s: None)
    b = vaekit.train(tiny_cfg, tmp_path / "b", log=lambda s: None)
    for k, v in _weights(a.model).items():
        assert torch.equal(v, b.model.state_dict()[k]), k
    assert a.metrics[-1]["test_loss"] == b.metrics[-1]["test_loss"]


@pytest.mark.parametrize("binarize", ["none", "dynamic"])
def test_resume_equals_uninterrupted(tmp_path, binarize):
    cfg = small_config(model={"hidden": [64], "latent_dim": 4}, data={"limit": 512, "binarize": binarize})
    cfg.train.epochs = 3
    full = vaekit.train(cfg, tmp_path / "full", log=lambda s: None)
    cfg.train.epochs = 1
    vaekit.train(cfg, tmp_path / "part", log=lambda s: None)
    cfg.train.epochs = 3  # extending a run is a resumable change
    resumed = vaekit.train(cfg, tmp_path / "part", resume=True, log=lambda s: None)
    for k, v in _weights(full.model).items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    assert [r["epoch"] for r in resumed.metrics] == [1, 2, 3]
    assert resumed.metrics[-1]["train_loss"] == full.metrics[-1]["train_loss"]
    # The optimiser state in the checkpoint is the uninterrupted one too.
    t_full, _ = load_tensors(tmp_path / "full" / "checkpoints" / "last.safetensors")
    t_res, _ = load_tensors(tmp_path / "part" / "checkpoints" / "last.safetensors")
    for k in t_full:
        if not k.startswith("rng."):
            assert torch.equal(t_full[k], t_res[k]), k


def test_a_run_whose_config_carries_the_retired_channels_last_key_loads_and_resumes_exactly(tmp_path, tiny_cfg):
    # config.json as vaekit wrote it before train.channels_last was retired (true: a CUDA run's)
    full = vaekit.train(tiny_cfg, tmp_path / "full", log=lambda s: None)
    tiny_cfg.train.epochs = 1
    vaekit.train(tiny_cfg, tmp_path / "old", log=lambda s: None)
    saved = json.loads((tmp_path / "old" / "config.json").read_text())
    saved["train"]["channels_last"] = True
    (tmp_path / "old" / "config.json").write_text(json.dumps(saved, indent=2))

    assert vaekit.load_run(tmp_path / "old").config == tiny_cfg  # read without the key
    from vaekit.cli import main

    assert main(["train", "--out", str(tmp_path / "old"), "--resume", "--epochs", "2", "--no-progress"]) == 0
    resumed = vaekit.load_run(tmp_path / "old")
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    assert "channels_last" not in json.loads((tmp_path / "old" / "config.json").read_text())["train"]


def test_resume_refuses_a_changed_model(tmp_path, tiny_cfg):
    vaekit.train(tiny_cfg, tmp_path / "r", log=lambda s: None)
    tiny_cfg.model.latent_dim = 5
    with pytest.raises(VaekitError, match="model.latent_dim is 5 but the run was started with 4"):
        vaekit.train(tiny_cfg, tmp_path / "r", resume=True, log=lambda s: None)


def test_save_load_round_trip(tmp_path, tiny_cfg):
    run = vaekit.train(tiny_cfg, tmp_path / "r", log=lambda s: None)
    model = vaekit.load(tmp_path / "r")
    for k, v in run.model.state_dict().items():
        assert torch.equal(v, model.state_dict()[k])
    x = torch.rand(7, 1, 28, 28)
    run.model.eval()
    torch.testing.assert_close(model.reconstruct(x), run.model.reconstruct(x), rtol=0, atol=0)
    torch.manual_seed(3)
    a = model.sample(4)
    torch.manual_seed(3)
    torch.testing.assert_close(a, run.model.sample(4), rtol=0, atol=0)
    assert model.config == tiny_cfg


def test_existing_run_is_not_overwritten(tmp_path, tiny_cfg):
    tiny_cfg.train.epochs = 1
    vaekit.train(tiny_cfg, tmp_path / "r", log=lambda s: None)
    before = (tmp_path / "r" / "model.safetensors").read_bytes()
    with pytest.raises(VaekitError, match="already holds a run.*--overwrite"):
        vaekit.train(tiny_cfg, tmp_path / "r", log=lambda s: None)
    assert (tmp_path / "r" / "model.safetensors").read_bytes() == before
    tiny_cfg.train.seed = 1
    vaekit.train(tiny_cfg, tmp_path / "r", overwrite=True, log=lambda s: None)
    assert (tmp_path / "r" / "model.safetensors").read_bytes() != before


def test_bad_input_writes_nothing(tmp_path, tiny_cfg):
    tiny_cfg.train.batch_size = 10_000
    with pytest.raises(VaekitError, match="batch_size=10000 is larger than the 512 training examples"):
        vaekit.train(tiny_cfg, tmp_path / "r", log=lambda s: None)
    assert not (tmp_path / "r").exists()


def test_validation_split_and_schedule(tmp_path):
    cfg = small_config(model={"hidden": [32], "latent_dim": 2}, data={"limit": 400, "val_size": 0.25},
                       train={"lr_schedule": "cosine", "grad_clip": 5.0})
    run = vaekit.train(cfg, tmp_path / "r", log=lambda s: None)
    assert "val_loss" in run.metrics[-1] and "test_loss" not in run.metrics[-1]
    assert run.metrics[1]["lr"] < run.metrics[0]["lr"]


def test_conv_and_gaussian_presets_train(tmp_path):
    for preset in ("keras-conv", "gaussian-mlp"):
        cfg = small_config(preset, data={"limit": 256, "split": "train"})
        cfg.train.epochs = 1
        run = vaekit.train(cfg, tmp_path / preset, log=lambda s: None)
        assert all(torch.isfinite(torch.tensor(v)) for k, v in run.metrics[-1].items() if k.endswith("loss"))


def test_tensorboard_logs_every_metric_when_installed(tmp_path, tiny_cfg, monkeypatch):
    import sys
    import types

    calls = []

    class FakeWriter:  # stands in for torch.utils.tensorboard.SummaryWriter (an optional extra)
        def __init__(self, logdir):
            calls.append(("init", logdir))

        def add_scalar(self, tag, value, step):
            calls.append((tag, value, step))

        def close(self):
            calls.append(("close",))

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=FakeWriter))
    tiny_cfg.train.tensorboard = True
    run = vaekit.train(tiny_cfg, tmp_path / "r", log=lambda s: None)
    assert calls[0] == ("init", str(tmp_path / "r" / "tensorboard")) and calls[-1] == ("close",)
    scalars = {(c[0], c[2]): c[1] for c in calls if len(c) == 3}
    assert scalars[("train/loss", 2)] == run.metrics[1]["train_loss"]
    assert scalars[("test/kl", 1)] == run.metrics[0]["test_kl"]


def test_resume_refuses_to_stretch_a_cosine_schedule(tmp_path, tiny_cfg):
    """The cosine period is the epoch count: extending it on resume would restart the schedule."""
    tiny_cfg.train.lr_schedule, tiny_cfg.train.epochs = "cosine", 1
    vaekit.train(tiny_cfg, tmp_path / "r", log=lambda s: None)
    tiny_cfg.train.epochs = 3
    with pytest.raises(VaekitError, match="train.epochs cannot change from 1 to 3 with the cosine"):
        vaekit.train(tiny_cfg, tmp_path / "r", resume=True, log=lambda s: None)


def test_resume_with_cosine_schedule_equals_uninterrupted(tmp_path, monkeypatch, tiny_cfg):
    tiny_cfg.train.lr_schedule, tiny_cfg.train.epochs = "cosine", 3
    full = vaekit.train(tiny_cfg, tmp_path / "full", log=lambda s: None)
    from vaekit.train import Trainer

    original, calls = Trainer._step, {"n": 0}

    def crash(self, x, y):
        calls["n"] += 1
        if calls["n"] == 12:  # in epoch 2 (8 steps per epoch)
            raise RuntimeError("crash")
        original(self, x, y)

    monkeypatch.setattr(Trainer, "_step", crash)
    with pytest.raises(RuntimeError):
        vaekit.train(tiny_cfg, tmp_path / "part", log=lambda s: None)
    monkeypatch.undo()
    resumed = vaekit.train(tiny_cfg, tmp_path / "part", resume=True, log=lambda s: None)
    assert [r["lr"] for r in resumed.metrics] == [r["lr"] for r in full.metrics]
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k


def test_adam_epsilon_reaches_the_optimiser():
    from vaekit.optim import make_optimizer

    cfg = vaekit.resolve("pytorch-example", overrides=[{"train": {"adam_eps": 1e-7}}])
    opt = make_optimizer(torch.nn.Linear(2, 2), cfg.train)
    assert opt.param_groups[0]["eps"] == 1e-7 and vaekit.resolve("pytorch-example").train.adam_eps == 1e-8


def test_evaluating_on_the_training_data_keeps_the_running_train_means(tmp_path):
    """With no held-out split (Keras's set-up: all 70k images train) the end-of-run evaluation is
    on the training data; it is logged as trainset_*, and train_* stays the epoch's running mean
    of the batch losses, the number Keras prints (it once overwrote it)."""
    lines: list[str] = []
    cfg = small_config(data={"split": "all"}, model={"hidden": [64], "latent_dim": 4},
                       train={"eval_every": 0, "epochs": 2})
    run = vaekit.train(cfg, tmp_path / "run", log=lines.append)
    last = run.metrics[-1]
    assert {"trainset_loss", "trainset_recon", "trainset_kl"} <= set(last)
    assert "trainset_loss" not in run.metrics[0]  # eval_every = 0: only at the end
    # The running mean over epoch 2's batches vs the end-of-epoch model on the same rows: different numbers.
    assert last["train_loss"] != pytest.approx(last["trainset_loss"], rel=1e-3)
    assert last["train_loss"] == pytest.approx(last["train_recon"] + last["train_kl"], rel=1e-5)
    assert "trainset loss" in lines[-1] and "train loss" in lines[-1]


# ---- what a resumed run says and saves, progress, TensorBoard ----------------------------------

TINY_CLI = ["--data", "digits", "--limit", "256", "--batch-size", "64", "--latent-dim", "2", "--set", "model.hidden=[16]",
            "--set", "train.threads=1", "--set", "train.tensorboard=false", "--no-progress"]


def test_resume_saves_the_config_it_continues_with_and_a_finished_run_says_so(tmp_path, capsys):
    from vaekit.cli import main

    run = tmp_path / "r"
    assert main(["train", *TINY_CLI, "--epochs", "1", "--out", str(run)]) == 0
    assert main(["train", "--out", str(run), "--resume", "--epochs", "2"]) == 0
    assert json.loads((run / "config.json").read_text())["train"]["epochs"] == 2  # not the 1 it began with
    capsys.readouterr()
    files = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    assert main(["train", "--out", str(run), "--resume"]) == 0  # finished: exit 0 (a retry loop may call it)
    out, err = capsys.readouterr()
    assert f"{run} has finished: it trained all 2 epochs; nothing to do" in err
    assert f"vaekit train --out {run} --resume --epochs N (N > 2)" in err and "wrote" not in out
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"} == files
    assert main(["train", "--out", str(run), "--resume", "--epochs", "1"]) == 2
    assert "has trained 2 epochs, more than train.epochs = 1; pass --epochs N (N >= 2)" in capsys.readouterr().err


def test_progress_lines_without_a_terminal(tmp_path, tiny_cfg, monkeypatch):
    # Under pytest stderr is no terminal, as in a log file or under nohup: lines, not a bar.
    monkeypatch.setenv("VAEKIT_PROGRESS_SECONDS", "0")
    lines: list[str] = []
    tiny_cfg.train.progress = True
    vaekit.train(tiny_cfg, tmp_path / "r", log=lines.append)
    progress = [line for line in lines if " batch " in line]
    assert len(progress) == 16  # 2 epochs of 8 batches, every interval (0 s here) a line
    assert progress[10].startswith("epoch 2/2  batch 3/8  loss ") and " run ETA " in progress[10]
    assert progress[-1].endswith("run ETA 0s")


def test_progress_bar_on_a_terminal_shows_the_loss_and_the_run_eta(tmp_path):
    """A real pseudo-terminal: the bar's postfix (running loss, whole-run ETA) used to be skipped there."""
    import os
    import pty
    import subprocess
    import sys

    import fcntl
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 160, 0, 0))  # a 160-column terminal
    args = ["train", "--data", "digits", "--limit", "1024", "--batch-size", "4", "--latent-dim", "2",
            "--set", "model.hidden=[16]", "--set", "train.threads=1", "--epochs", "1", "--out", str(tmp_path / "r")]
    # TensorBoard on (the default) but not importable, as without the optional extra installed.
    code = "import sys; sys.modules['torch.utils.tensorboard'] = None; from vaekit.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stderr=follower, stdout=subprocess.DEVNULL,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert proc.wait(timeout=120) == 0, shown.decode(errors="replace")[-2000:]
    text = shown.decode(errors="replace")
    assert "epoch 1/1:" in text and "/256 [" in text  # tqdm's bar
    assert re.search(r"loss \d+\.\d\d, recon \d+\.\d\d, kl \d+\.\d\d; run ETA \d+s", text), text[-1000:]
    assert text.count("tensorboard package is not installed") == 1  # TensorBoard on, missing: said once
