"""Tables on disk: CSV (optionally gzipped) or Parquet, chosen by the file's extension."""

from __future__ import annotations

import os

import pandas as pd

_CSV = (".csv", ".csv.gz")
_PARQUET = (".parquet", ".pq")


def _kind(path) -> str:
    name = os.fspath(path).lower()
    if name.endswith(_CSV):
        return "csv"
    if name.endswith(_PARQUET):
        return "parquet"
    extension = os.path.splitext(name)[1] or "(none)"
    raise ValueError(f"{os.fspath(path)!r}: extension {extension} is not one of {', '.join(_CSV + _PARQUET)}")


def read_table(source) -> pd.DataFrame:
    """A copy of ``source`` if it is a DataFrame, else the CSV/Parquet file it names."""
    if isinstance(source, pd.DataFrame):
        return source.copy()
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"expected a DataFrame or a path to a CSV/Parquet file, got {type(source).__name__}")
    kind = _kind(source)
    if not os.path.exists(source):
        raise FileNotFoundError(f"no table at {os.fspath(source)!r}")
    return pd.read_csv(source) if kind == "csv" else pd.read_parquet(source)


def write_table(df: pd.DataFrame, path) -> None:
    """Write ``df`` without its index to a CSV or Parquet file (by extension)."""
    kind = _kind(path)
    parent = os.path.dirname(os.fspath(path))
    if parent:
        os.makedirs(parent, exist_ok=True)
    if kind == "csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)
