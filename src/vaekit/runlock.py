"""One writer per run folder: an exclusive kernel lock (``flock``) on ``RUN/.lock``.

Every command that writes into a run (train, --resume, --overwrite, evaluate, plot, report) holds
it; a second one is refused at once with one line naming the holder's pid and command line.

Why a kernel lock and not a marker file: the kernel releases it when its holder exits, however it
exits (SIGKILL, OOM kill, a crash), so a lock left behind never blocks anyone, and no pid has to be
guessed alive (pids are reused; another machine's pids cannot be checked at all).

Why inside the folder and not beside it (``.RUN.lock``): a sibling needs a writable parent and
litters it, and it would not travel when the run is moved. ``--overwrite`` therefore clears
everything *but* the lock (:func:`vaekit.run.clear_run_dir`), so the folder stays locked while it
is emptied and refilled. A fresh run creates its folder in order to lock it and, if it fails before
writing anything, removes it again while still holding the lock. The file's text (pid, command) is
only informative: the lock itself is the kernel's.

Removing a lock file is safe because a process that locked a file must check, once it holds the
lock, that the path still names the file it locked; if the last holder removed it meanwhile, it
starts over with the new file (:func:`_acquire`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Iterable, Iterator

from .errors import RunBusyError

LOCK = ".lock"
# Tests: a process that takes a lock while this names a file waits, holding it, until the file is
# deleted (it first creates "<file>.held"). A synchronisation point, so the tests need no sleeps.
HOLD_ENV = "VAEKIT_LOCK_HOLD"

_held: dict[str, int] = {}  # real path -> depth: a process re-entering its own lock is not refused
_guard = threading.Lock()


def _inside(path: Path, folder: Path) -> bool:
    p, f = os.path.realpath(path), os.path.realpath(folder)
    return p == f or p.startswith(f.rstrip(os.sep) + os.sep)


def holder(run_dir: str | Path) -> str:
    """Who holds (or last held) the lock of ``run_dir``, as written in its lock file."""
    try:
        info = json.loads((Path(run_dir) / LOCK).read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info.get("pid"):
        return "another process (it has not written its name yet)"
    host = "" if info.get("host") in (None, socket.gethostname()) else f" on {info['host']}"
    since = f", since {info['since']}" if info.get("since") else ""
    return f"pid {info['pid']}{host} ({info.get('command', '?')}{since})"


def _open(lock: Path) -> int | None:
    """The lock file's descriptor, created if need be; read-only where the folder is (flock needs no
    write access); None when it neither exists nor can be made: nobody can lock, or write, there."""
    try:
        return os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as err:
        if err.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
    try:
        return os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None


def _acquire(run_dir: Path, what: str, create: bool) -> int | None:
    lock = run_dir / LOCK
    while True:
        if create:
            run_dir.mkdir(parents=True, exist_ok=True)
        elif not run_dir.is_dir():
            return None  # nothing to protect; the command itself says the folder is missing
        fd = _open(lock)
        if fd is None:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunBusyError(
                f"{run_dir} is in use: {holder(run_dir)} is writing it; wait for it to finish "
                f"or stop it, then run this {what} again"
            ) from None
        try:  # the file we locked must still be the one at the path (see the module docstring)
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def _record(fd: int, what: str) -> None:
    prog = os.path.basename(sys.argv[0]) if sys.argv else ""
    if prog in ("vaekit", "__main__.py"):  # the CLI, or `python -m vaekit` (as torchrun starts it)
        command = " ".join(["vaekit", *sys.argv[1:]])
    else:  # a library call from someone's script
        command = f"vaekit {what}, called from {' '.join(sys.argv) or 'python'}"
    info = {"pid": os.getpid(), "host": socket.gethostname(), "what": what, "command": command[:300],
            "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
    except OSError:  # a read-only lock file: the lock holds all the same, only unnamed
        pass


def _hold_for_tests() -> None:
    hold = os.environ.get(HOLD_ENV)
    if hold:
        Path(hold + ".held").touch()
        while Path(hold).exists():
            time.sleep(0.01)


@contextlib.contextmanager
def lock_run(run_dir: str | Path, what: str, *, create: bool = False,
             writes_to: Iterable[str | Path] | None = None) -> Iterator[None]:
    """Hold ``run_dir``'s lock for the block, or raise :class:`RunBusyError` (exit 2) naming its holder.

    ``what`` names the command in messages ("train", "evaluate"). ``create``: make the folder
    (with its parents) in order to lock it; if it holds nothing but the lock when the block ends,
    it is removed again, with the parents made for it. Without ``create`` a missing folder is not locked. ``writes_to``:
    the paths the command writes; when none is inside ``run_dir`` no lock is needed (``plot -o
    elsewhere``). Re-entrant within a process; other processes, and other machines sharing the
    folder over a file system with working ``flock``, are refused.
    """
    run_dir = Path(run_dir)
    if writes_to is not None and not any(_inside(Path(p), run_dir) for p in writes_to):
        yield
        return
    key = os.path.realpath(run_dir)
    with _guard:
        if key in _held:
            _held[key] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield
        finally:
            with _guard:
                _held[key] -= 1
        return
    made = []  # the folders (the run's and missing parents, e.g. runs/) made here to be locked
    if create:
        p = run_dir.absolute()
        while not p.exists() and p != p.parent:
            made.append(p)
            p = p.parent
    fd = _acquire(run_dir, what, create)
    if fd is None:
        yield
        return
    with _guard:
        _held[key] = 1
    try:
        _record(fd, what)
        _hold_for_tests()
        yield
    finally:
        with _guard:
            _held.pop(key, None)
        if made:
            with contextlib.suppress(OSError):  # anything besides the lock: a run begun, kept
                if [p.name for p in run_dir.iterdir()] == [LOCK]:
                    (run_dir / LOCK).unlink()
                    for folder in made:  # innermost first; one that is not empty stays
                        folder.rmdir()
        os.close(fd)


__all__ = ["LOCK", "holder", "lock_run"]
