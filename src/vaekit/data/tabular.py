"""The ``csv`` source: a table with a header row, numeric and categorical columns.

Each row becomes one vector ``x`` (D,), column by column:

- a **numeric** column is standardised, ``(v - mean) / std`` with the training file's mean and
  std; with ``data.missing = "mask"`` a column that has gaps is followed by a 0/1 *observed*
  indicator, its gaps are set to 0 (the mean) and the likelihood leaves them out;
- a **categorical** column (text, or named in ``data.categorical``) is one-hot over its sorted
  levels; a missing cell is all zeros, which the categorical likelihood term ignores exactly;
- a column where more than half of the non-missing cells are numbers but some are not (``inf``,
  ``-``, ``1,5``, ``missing``) is refused, naming the lines and values: it is a numeric column
  with bad cells, not a category (list it in ``data.categorical`` if it really is one).

The layout (names, types, mean/std, levels) is a list of dicts that training stores in
``model.columns`` of the run's ``config.json``; :func:`encode` applies it to new rows to score them.
"""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DataError
from .sources import RawData, register_source

if TYPE_CHECKING:
    from ..config import DataConfig

MISSING = {"", "na", "nan", "null", "none", "?", "n/a"}
MAX_LEVELS = 1000  # more distinct values than this in a text column is an id, not a category


def read_csv(path: str | Path) -> tuple[list[str], list[list[str]]]:
    """The header and the rows of a CSV file, every row checked for its length."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: file does not exist; check data.path (--data-path)")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path}: is not a readable UTF-8 CSV file ({err})") from None
    if len(rows) < 2:
        raise DataError(f"{path}: needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    if len(set(header)) != len(header) or "" in header:
        raise DataError(f"{path}: the header has empty or repeated column names: {header}")
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise DataError(f"{path}: line {i} has {len(row)} fields but the header has {len(header)}")
    return header, [[v.strip() for v in r] for r in rows[1:]]


def _is_missing(v: str) -> bool:
    return v.lower() in MISSING


def _as_float(v: str) -> float | None:
    try:
        f = float(v)
    except ValueError:
        return None
    return f if math.isfinite(f) else None


def _lines(rows: list[int]) -> str:
    shown = ", ".join(str(r + 2) for r in rows[:10])  # +2: 1-based and the header line
    return shown + (f", ... ({len(rows)} in all)" if len(rows) > 10 else "")


def infer_columns(header: list[str], rows: list[list[str]], categorical: list[str], missing: str,
                  where: str) -> list[dict[str, Any]]:
    """The layout of a training table: each column's type and its standardisation or levels."""
    unknown = sorted(set(categorical) - set(header))
    if unknown:
        raise DataError(f"data.categorical: {unknown} are not columns of {where} (columns: {header})")
    columns: list[dict[str, Any]] = []
    for j, name in enumerate(header):
        values = [r[j] for r in rows]
        gaps = [i for i, v in enumerate(values) if _is_missing(v)]
        if gaps and missing == "error":
            raise DataError(
                f"{where}: column '{name}' has {len(gaps)} missing value(s) on line(s) {_lines(gaps)}; "
                "fill them, or set data.missing=mask to leave them out of the likelihood"
            )
        present = [v for v in values if not _is_missing(v)]
        if not present:
            raise DataError(f"{where}: column '{name}' has no values; drop it")
        floats = [_as_float(v) for v in present]
        if name not in categorical:
            _check_numeric(name, values, where)
        if name not in categorical and all(f is not None for f in floats):
            arr = np.asarray(floats, dtype=np.float64)
            std = float(arr.std())
            columns.append({"name": name, "type": "numeric", "mean": float(arr.mean()),
                            "std": std if std > 0 else 1.0, "masked": bool(gaps)})
        else:
            levels = sorted(set(present))
            if len(levels) > MAX_LEVELS:
                raise DataError(f"{where}: column '{name}' has {len(levels)} distinct text values; "
                                "an identifier is no category: drop the column")
            columns.append({"name": name, "type": "categorical", "levels": levels})
    return columns


def _check_numeric(name: str, values: list[str], where: str) -> None:
    """Refuse a column that is mostly numbers with some cells that are neither numbers nor missing.

    The rule: a column (not listed in data.categorical) where more than half of the non-missing
    cells are finite numbers is numeric, and its other cells (``inf``, ``-``, ``1,5``, ``missing``)
    are errors, not category levels: taking it as text would train on a one-hot of hundreds of
    "levels" and never apply data.missing. Missing markers are only those of ``MISSING``.
    """
    present = [(i, v) for i, v in enumerate(values) if not _is_missing(v)]
    bad = [(i, v) for i, v in present if _as_float(v) is None]
    commas = sum(bool(re.fullmatch(r"[+-]?\d+,\d+", v)) for _, v in present)
    if bad and commas * 2 > len(present):
        raise DataError(f"{where}: column '{name}' writes decimals with a comma (e.g. {bad[0][1]!r} on line "
                        f"{bad[0][0] + 2}); write them with a point (1.5), or list the column in data.categorical")
    if not bad or len(bad) * 2 >= len(present):
        return
    shown = ", ".join(repr(v) for v in dict.fromkeys(v for _, v in bad[:50]))
    raise DataError(
        f"{where}: column '{name}' is numeric in {len(present) - len(bad)} of {len(present)} cells but line(s) "
        f"{_lines([i for i, _ in bad])} hold {shown}, which are neither finite numbers nor missing markers "
        f"({', '.join(repr(m) for m in sorted(MISSING))}); fix them, leave them empty (missing, see data.missing), "
        "or list the column in data.categorical"
    )


def _size(c: dict[str, Any]) -> int:
    """A column's values in an encoded row: one per numeric (two with its observed flag when
    masked), one per level for a categorical."""
    return 1 + int(bool(c.get("masked"))) if c["type"] == "numeric" else len(c["levels"])


def offsets(columns: list[dict[str, Any]]) -> list[int]:
    """Where each column's values start in an encoded row, in ``columns`` order: the one place the
    layout is walked (encode, the mixed likelihood and the explorer all index rows by it)."""
    starts, at = [], 0
    for c in columns:
        starts.append(at)
        at += _size(c)
    return starts


def width(columns: list[dict[str, Any]]) -> int:
    """D, the length of an encoded row."""
    return sum(_size(c) for c in columns)


def encode(header: list[str], rows: list[list[str]], columns: list[dict[str, Any]], where: str) -> np.ndarray:
    """Rows -> (N, D) float32 with a saved layout; a column, value or gap it cannot take is an error."""
    names = [c["name"] for c in columns]
    absent = [n for n in names if n not in header]
    if absent:
        raise DataError(f"{where}: lacks the column(s) {absent} the model was trained on")
    out = np.zeros((len(rows), width(columns)), dtype=np.float32)
    for c, at in zip(columns, offsets(columns)):
        j = header.index(c["name"])
        values = [r[j] for r in rows]
        gaps = [i for i, v in enumerate(values) if _is_missing(v)]
        if c["type"] == "numeric":
            masked = bool(c.get("masked"))
            if gaps and not masked:
                raise DataError(f"{where}: column '{c['name']}' has missing value(s) on line(s) {_lines(gaps)} "
                                "but was complete in training; fill them")
            bad = [i for i, v in enumerate(values) if not _is_missing(v) and _as_float(v) is None]
            if bad:
                raise DataError(f"{where}: column '{c['name']}' is numeric but line(s) {_lines(bad)} "
                                f"hold text (e.g. {values[bad[0]]!r})")
            x = np.array([0.0 if _is_missing(v) else float(v) for v in values])
            observed = np.array([0.0 if _is_missing(v) else 1.0 for v in values])
            out[:, at] = observed * (x - c["mean"]) / c["std"]  # gaps at the mean: 0
            if masked:
                out[:, at + 1] = observed
        else:
            index = {v: k for k, v in enumerate(c["levels"])}
            bad = [i for i, v in enumerate(values) if not _is_missing(v) and v not in index]
            if bad:
                raise DataError(f"{where}: column '{c['name']}' has value {values[bad[0]]!r} on line(s) "
                                f"{_lines(bad)} that training never saw (known: {c['levels'][:10]})")
            for i, v in enumerate(values):
                if not _is_missing(v):
                    out[i, at + index[v]] = 1.0  # a gap stays all-zero
    return out


def load_table(path: str | Path, columns: list[dict[str, Any]]) -> np.ndarray:
    """A CSV file encoded with a run's saved layout: (N, D) float32."""
    header, rows = read_csv(path)
    return encode(header, rows, columns, str(path))


@register_source("csv", kind="table", path=True, likelihood="mixed")
def csv_source(cfg: DataConfig) -> RawData:
    """Registered as ``data.source = "csv"``: the table at ``cfg.path``, all rows for training."""
    if not cfg.path:
        raise DataError("data.path: the 'csv' source needs a .csv file (--data-path PATH)")
    header, rows = read_csv(cfg.path)
    columns = infer_columns(header, rows, list(cfg.categorical), cfg.missing, cfg.path)
    return RawData(encode(header, rows, columns, cfg.path), columns=columns)
