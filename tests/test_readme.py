"""The README and the guide's first pages (tour, data, export) run as written, on small data, so it cannot drift
from the tool: every ``vaekit`` command of its shell blocks exits 0 (epochs and data shrunk by the
test, nothing else changed), every quoted ``$ vaekit`` output matches what the tool prints, and
the Python example runs."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
GUIDE = [ROOT / "docs" / "guide" / f"{page}.md" for page in ("tour", "data", "export")]
FRONT = "\n".join(p.read_text() for p in [README, *GUIDE])
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)


def blocks(lang):
    return [body for kind, body in BLOCK.findall(FRONT) if kind == lang]


def shrink(argv):
    """The command with fewer epochs and examples: what the test may change, and nothing else."""
    argv = list(argv)
    if argv[1] == "train":
        if "--epochs" in argv:
            argv[argv.index("--epochs") + 1] = "2"
        elif "--resume" not in argv:
            argv += ["--epochs", "1"]
        if "--resume" not in argv:
            argv += ["--limit", "300"]
        argv.append("--no-progress")
    if argv[1] == "evaluate":
        argv += ["--k", "5", "--limit", "50", "--no-progress"]
    return argv


def run(argv, cwd):
    return subprocess.run([sys.executable, "-m", "vaekit", *argv[1:]], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})


def test_every_shell_command_runs(tmp_path):
    np.save(tmp_path / "mydata.npy", np.random.default_rng(0).integers(0, 256, (400, 8, 8), dtype=np.uint8))
    commands = [line.split(" #")[0].strip() for body in blocks("bash") for line in body.splitlines()]
    commands = list(dict.fromkeys(c for c in commands if c.startswith("vaekit ")))  # the README repeats the guide's
    assert len(commands) >= 7
    for command in commands:
        r = run(shrink(shlex.split(command)), tmp_path)
        assert r.returncode == 0 and "Traceback" not in r.stderr, (command, r.stderr[-2000:])
    assert (tmp_path / "runs" / "digits" / "outputs" / "samples.png").is_file()


def test_quoted_outputs_match_the_tool(tmp_path):
    quoted = 0
    for body in blocks("text"):
        lines = body.splitlines()
        for i, line in enumerate(lines):
            if not line.startswith("$ vaekit "):
                continue
            shown = []
            for nxt in lines[i + 1:]:
                if nxt.startswith("$ "):
                    break
                shown.append(nxt)
            r = run(shlex.split(line[2:]), tmp_path)
            actual = (r.stdout + r.stderr).splitlines()
            for s in shown:  # an excerpt: each quoted line is a line of the output, "..." cut short
                prefix = s.split(" ...")[0].rstrip()
                assert any(a.startswith(prefix) for a in actual), (line, s, actual[:5])
                quoted += 1
    assert quoted >= 5


def test_python_example_runs(tmp_path, monkeypatch):
    code = next(b for b in blocks("python") if "vaekit.train(" in b)  # the tour's example
    monkeypatch.chdir(tmp_path)
    env: dict = {}
    exec(compile(code, "README.md", "exec"), env)  # noqa: S102 - the README's own example
    assert tuple(env["z"].shape) == (4, 8) and tuple(env["images"].shape) == (16, 1, 8, 8)


def test_determinism_paragraph_matches_its_results_file():
    import json

    res = json.loads((ROOT / "benchmarks" / "results" / "determinism.json").read_text())
    text = " ".join((ROOT / "docs" / "results.md").read_text().split())  # line breaks are spaces
    losses = {(r["train_loss"], r["test_loss"]) for r in res["rows"]}
    assert res["identical_within_thread_count"] == {"1": True, "2": True} and len(losses) == 1
    (train, test), = losses
    assert f"train loss {train}" in text
    assert f"test loss {test}" in text
    runs = {t: sum(r["threads"] == int(t) for r in res["rows"]) for t in ("1", "2")}
    assert f"{runs['1']} one-epoch `pytorch-example` runs at 1 thread" in text and f"{runs['2']} at 2 threads" in text
