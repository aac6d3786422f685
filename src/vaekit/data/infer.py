"""Which data source a path is: ``--data PATH`` and ``--data-path PATH`` name data by where it lives.

A path the user gives is used or refused, never ignored: a folder of images is ``folder``, a
``.npy``/``.npz`` file or a folder of ``.npy`` shards is ``arrays``, a ``.csv`` file is ``csv``;
anything else (a missing path, an empty folder, another suffix) is one clear error.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from ..registry import SOURCES


def _builtin() -> list[str]:
    """Registered sources that read no path (mnist, digits, ...): ``--data NAME`` names one."""
    return SOURCES.names(lambda s: not s.path)


def _path_sources() -> list[str]:
    """Registered sources that read ``data.path`` (folder, arrays, csv, ...)."""
    return SOURCES.names(lambda s: s.path)


INFERRED = ("folder", "arrays", "csv")  # the sources source_of tells apart by a path alone


def source_of(path: str | Path) -> str:
    """The source that reads ``path``: ``folder``, ``arrays`` or ``csv``; :class:`DataError` if none does."""
    from .folder import IMAGE_EXTS

    p = Path(path)
    if not p.exists():
        raise DataError(f"data path {p} does not exist; check the path (relative paths start in {Path.cwd()})")
    if p.is_file():
        suffix = p.suffix.lower()
        if suffix in (".npy", ".npz"):
            return "arrays"
        if suffix == ".csv":
            return "csv"
        raise DataError(f"data path {p}: a '{suffix or 'no suffix'}' file is no data vaekit reads; use a folder "
                        "of images, a .npy/.npz file, a folder of .npy shards or a .csv table")
    if not p.is_dir():
        raise DataError(f"data path {p} is neither a file nor a folder")
    names = [q for q in p.rglob("*") if q.is_file() and not q.name.startswith(".")]
    if any(q.suffix.lower() == ".npy" for q in names if q.parent == p):
        return "arrays"  # a folder of .npy shards (vaekit.data.stream)
    if any(q.suffix.lower() in IMAGE_EXTS for q in names):
        return "folder"
    raise DataError(f"data path {p}: the folder holds no images ({', '.join(sorted(IMAGE_EXTS))}) and no "
                    ".npy shards")


def resolve_data_flags(data: str | None, data_path: str | None) -> dict[str, str]:
    """The ``data`` config section that ``--data`` and ``--data-path`` ask for.

    ``--data NAME`` names a registered source (mnist, digits, ...); ``--data PATH`` (or ``--data-path
    PATH`` alone) infers the source from the path; ``--data folder --data-path imgs/`` names both, and
    they must agree. A registered path source that :func:`source_of` does not infer is taken as named.
    """
    out: dict[str, str] = {}
    builtin, path_sources = _builtin(), _path_sources()
    if data is not None and data not in builtin + path_sources:
        if data_path is not None:
            raise DataError(f"--data {data} is a path and --data-path {data_path} another; give one of them")
        data, data_path = None, data
    if data_path is not None:
        inferred = data if data in path_sources and data not in INFERRED else source_of(data_path)
        if data in builtin:
            raise DataError(f"--data {data} reads no file, but --data-path {data_path} was given; drop one "
                            f"(--data {data_path} alone reads the path)")
        if data is not None and data != inferred:
            raise DataError(f"--data {data} cannot read {data_path}: it is {inferred} data (--data {inferred})")
        out.update(source=inferred, path=str(data_path))
    elif data is not None:
        if data in path_sources:
            raise DataError(f"--data {data} needs a path: --data-path PATH, or --data PATH alone")
        out["source"] = data
    return out
