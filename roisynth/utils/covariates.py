"""Covariate columns (age, sex, ICV, ...) as numbers, with errors that name the column and rows."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .validation import check_covariate_bounds

SEX_CODES = {"f": 0.0, "female": 0.0, "w": 0.0, "m": 1.0, "male": 1.0}


def covariate_matrix(table: pd.DataFrame, columns: Sequence[str], name: str = "table") -> np.ndarray:
    """``table[columns]`` as a float matrix; text columns are read as sex (F/female → 0, M/male → 1).

    Raises ``ValueError`` naming the column for a missing column, and the column and rows for
    missing values or text that is not a sex code. Sex codes are matched case-insensitively,
    after stripping spaces: F, female, W → 0 and M, male → 1. Boolean columns are read as text.
    Age and ICV outside their plausible ranges
    (:data:`~roisynth.utils.validation.COVARIATE_BOUNDS`) are refused naming the row
    (:func:`~roisynth.utils.validation.check_covariate_bounds`).

    Parameters
    ----------
    table : DataFrame
        The table holding the covariates.
    columns : sequence of str
        The covariate columns, in the order of the matrix's columns.
    name : str, default="table"
        Name of the table, used in error messages.

    Returns
    -------
    ndarray of shape (len(table), len(columns))
        The covariates as float64.

    Examples
    --------
    >>> import pandas as pd
    >>> from roisynth.utils.covariates import covariate_matrix
    >>> table = pd.DataFrame({"age": [71, 64], "sex": ["F", "Male"]})
    >>> covariate_matrix(table, ["age", "sex"])
    array([[71.,  0.],
           [64.,  1.]])
    """
    out = np.empty((len(table), len(columns)))
    for j, column in enumerate(columns):
        if column not in table.columns:
            raise ValueError(f"{name} has no covariate column {column!r}")
        values = table[column]
        if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
            text = values.astype("string").str.strip().str.lower()
            values = text.map(SEX_CODES)
            unmapped = text.notna() & values.isna()
            if unmapped.any():
                raise ValueError(
                    f"{name} column {column!r} has values {sorted(text[unmapped].unique())[:5]} that are neither "
                    "numbers nor sex codes (F/M, female/male)"
                )
        values = pd.to_numeric(values).astype(float)
        missing = ~np.isfinite(values.to_numpy())
        if missing.any():
            rows = list(table.index[missing][:5])
            more = " ..." if missing.sum() > 5 else ""
            raise ValueError(f"{name} column {column!r} has missing values in rows {rows}" + more)
        out[:, j] = values.to_numpy()
    check_covariate_bounds(table, columns, out, name)
    return out
