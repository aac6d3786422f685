"""One progress policy for every long job (vaekit.progress): a bar on a terminal, a plain line
every VAEKIT_PROGRESS_SECONDS elsewhere, for evaluation's counter and training's run alike."""

from __future__ import annotations

import io

import pytest

from vaekit.progress import Lines, Progress, duration, progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("seconds", "shown"), [(0.4, "0s"), (12, "12s"), (245, "4m05s"), (10920, "3h02m")])
def test_duration(seconds, shown):
    assert duration(seconds) == shown


def test_both_shapes_follow_the_terminal_and_the_interval(monkeypatch):
    monkeypatch.setenv("VAEKIT_PROGRESS_SECONDS", "0")  # a line at every step
    log_file, logged = io.StringIO(), []
    bar = progress(4, "IS NLL", file=log_file)
    assert type(bar) is Lines and bar.every == 0.0
    bar.update(3)
    assert log_file.getvalue().startswith("IS NLL: 3/4 (75%), ")
    run = Progress(True, epochs=2, batches=3, log=logged.append, stream=io.StringIO())
    run.start(0, 0)
    run.step(lambda: {"loss": 1.5})
    assert run.bar is None and logged == [logged[0]] and logged[0].startswith("epoch 1/2  batch 1/3  loss 1.50  run ETA ")

    monkeypatch.setenv("VAEKIT_PROGRESS_SECONDS", "3600")  # no line within the hour
    quiet = io.StringIO()
    progress(4, "IS NLL", file=quiet).update(4)
    assert quiet.getvalue() == ""

    term = Terminal()
    bar = progress(4, "IS NLL", file=term)
    assert type(bar).__name__ == "tqdm"
    bar.close()
    run = Progress(True, epochs=2, batches=3, log=logged.append, stream=term)
    run.start(0, 0)
    assert type(run.bar).__name__ == "tqdm"
    run.close()
