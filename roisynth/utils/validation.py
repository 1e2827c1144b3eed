"""Input checks shared by every estimator: clear errors that name the column or row."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
import pandas as pd

MIN_ROWS = 10


def as_frame(X, name: str, feature_names: Sequence[str] | None = None) -> pd.DataFrame:
    """Return ``X`` as a DataFrame; arrays get ``feature_names`` (or ``x0..``) as columns.

    Parameters
    ----------
    X : DataFrame, ndarray, list or tuple
        A table (rows = subjects); arrays must be 2-D. A Series is refused.
    name : str
        Name of the argument, used in error messages.
    feature_names : sequence of str, default=None
        Column names for arrays (their number must match); None gives ``x0, x1, ...``.

    Returns
    -------
    DataFrame
        ``X`` itself when it is a DataFrame, otherwise a new DataFrame.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.utils.validation import as_frame
    >>> as_frame(np.array([[1.0, 2.0]]), "X", feature_names=["a", "b"])
         a    b
    0  1.0  2.0
    """
    if isinstance(X, pd.DataFrame):
        return X
    if isinstance(X, pd.Series):
        raise TypeError(f"{name} is a Series; pass a DataFrame (one row per subject), e.g. series.to_frame().T")
    if isinstance(X, (np.ndarray, list, tuple)):
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise ValueError(f"{name} must be 2-D (subjects x ROIs), got shape {arr.shape}")
        if feature_names is not None:
            if arr.shape[1] != len(feature_names):
                raise ValueError(
                    f"{name} has {arr.shape[1]} columns but the model was fitted on {len(feature_names)}"
                )
            columns = list(feature_names)
        else:
            columns = [f"x{i}" for i in range(arr.shape[1])]
        return pd.DataFrame(arr, columns=columns)
    raise TypeError(f"{name} must be a pandas DataFrame or a 2-D NumPy array, got {type(X).__name__}")


def _rows(index: pd.Index, mask: np.ndarray, limit: int = 5) -> str:
    bad = list(index[mask][:limit])
    more = int(mask.sum()) - len(bad)
    return ", ".join(map(str, bad)) + (f" and {more} more" if more > 0 else "")


def check_numeric_table(
    df: pd.DataFrame,
    name: str,
    *,
    min_rows: int = MIN_ROWS,
    nonnegative: bool = True,
) -> np.ndarray:
    """Validate a table of ROI volumes and return it as a float64 array.

    Raises ``TypeError`` for non-numeric columns and ``ValueError`` for too few rows,
    NaN/inf values or negative volumes, naming the offending columns and rows.

    Parameters
    ----------
    df : DataFrame
        The table (rows = subjects).
    name : str
        Name of the table, used in error messages.
    min_rows : int, default=10
        Fewest rows accepted.
    nonnegative : bool, default=True
        Refuse negative values (volumes).

    Returns
    -------
    ndarray of shape (n_rows, n_columns)
        The values as float64.

    Examples
    --------
    >>> import pandas as pd
    >>> from roisynth.utils.validation import check_numeric_table
    >>> table = pd.DataFrame({"Hippocampus_L": [3.1, -1.0]}, index=["s1", "s2"])
    >>> check_numeric_table(table, "cn", min_rows=2, nonnegative=False)
    array([[ 3.1],
           [-1. ]])
    >>> check_numeric_table(table, "cn", min_rows=2)
    Traceback (most recent call last):
    ...
    ValueError: cn has negative volumes in column(s) ['Hippocampus_L'] (rows s2)
    """
    if len(df.columns) == 0:
        raise ValueError(f"{name} has no columns")
    dup = df.columns[df.columns.duplicated()]
    if len(dup):
        raise ValueError(f"{name} has duplicated columns: {list(dup)}")
    types = pd.api.types
    non_numeric = [c for c in df.columns if not types.is_numeric_dtype(df[c]) or types.is_bool_dtype(df[c])]
    if non_numeric:
        raise TypeError(
            f"{name} has non-numeric column(s) {non_numeric[:5]}: pass only ROI volume columns "
            "(e.g. df[roisynth.datasets.roi_names()]), covariates go to the preprocessing pipeline"
        )
    if len(df) < min_rows:
        raise ValueError(f"{name} has {len(df)} rows; at least {min_rows} subjects are needed")
    values = df.to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.all():
        cols = [c for c, ok in zip(df.columns, finite.all(axis=0)) if not ok]
        rows = _rows(df.index, ~finite.all(axis=1))
        raise ValueError(f"{name} has NaN or infinite values in column(s) {cols[:5]} (rows {rows})")
    if nonnegative:
        negative = values < 0
        if negative.any():
            cols = [c for c, bad in zip(df.columns, negative.any(axis=0)) if bad]
            rows = _rows(df.index, negative.any(axis=1))
            raise ValueError(f"{name} has negative volumes in column(s) {cols[:5]} (rows {rows})")
    return values


def align_columns(df: pd.DataFrame, columns: Sequence[str], name: str, reference: str) -> pd.DataFrame:
    """Reorder ``df`` to ``columns``; missing or extra columns are an error naming them.

    Parameters
    ----------
    df : DataFrame
        The table to reorder.
    columns : sequence of str
        The expected columns, in the wanted order.
    name : str
        Name of ``df``, used in error messages.
    reference : str
        Name of what ``columns`` come from (e.g. the training data), used in error messages.

    Returns
    -------
    DataFrame
        ``df`` with its columns in the order of ``columns``.

    Examples
    --------
    >>> import pandas as pd
    >>> from roisynth.utils.validation import align_columns
    >>> list(align_columns(pd.DataFrame({"b": [1], "a": [2]}), ["a", "b"], "X", "the training data").columns)
    ['a', 'b']
    >>> align_columns(pd.DataFrame({"b": [1]}), ["a", "b"], "X", "the training data")
    Traceback (most recent call last):
    ...
    ValueError: X columns differ from the training data: missing ['a']
    """
    missing = [c for c in columns if c not in df.columns]
    extra = [c for c in df.columns if c not in set(columns)]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}" + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""))
        if extra:
            parts.append(f"unexpected {extra[:5]}" + (f" (+{len(extra) - 5} more)" if len(extra) > 5 else ""))
        raise ValueError(f"{name} columns differ from {reference}: " + "; ".join(parts))
    return df.loc[:, list(columns)]


def check_choice(value, name: str, choices: Sequence[str]) -> str:
    """Check that ``value`` is one of ``choices``.

    Parameters
    ----------
    value : object
        The value to check.
    name : str
        Name of the argument, used in the error message.
    choices : sequence of str
        The allowed values.

    Returns
    -------
    str
        ``value``, unchanged.

    Examples
    --------
    >>> from roisynth.utils.validation import check_choice
    >>> check_choice("full", "noise", ("full", "diagonal"))
    'full'
    >>> check_choice("dense", "noise", ("full", "diagonal"))
    Traceback (most recent call last):
    ...
    ValueError: noise='dense' is not one of ['full', 'diagonal']
    """
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {list(choices)}")
    return value


def check_count(n, name: str = "n") -> int:
    """Check that ``n`` is a positive integer (booleans are refused).

    Parameters
    ----------
    n : int
        The count to check.
    name : str, default="n"
        Name of the argument, used in the error message.

    Returns
    -------
    int
        ``n`` as a Python int.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.utils.validation import check_count
    >>> check_count(np.int64(3))
    3
    >>> check_count(0, "n_samples")
    Traceback (most recent call last):
    ...
    ValueError: n_samples must be a positive integer, got 0
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"{name} must be a positive integer, got {n!r}")
    return int(n)


def check_nonnegative(value, name: str, *, positive: bool = False) -> float:
    """A finite number ≥ 0 (> 0 if ``positive``): a weight, a tolerance, a bandwidth.

    Parameters
    ----------
    value : float
        The number to check (booleans are refused).
    name : str
        Name of the argument, used in the error message.
    positive : bool, default=False
        Refuse 0 as well.

    Returns
    -------
    float
        ``value`` as a float.

    Examples
    --------
    >>> from roisynth.utils.validation import check_nonnegative
    >>> check_nonnegative(2, "bandwidth", positive=True)
    2.0
    """
    number = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not number or value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be a {'positive' if positive else 'non-negative'} finite number, got {value!r}")
    return float(value)


def seed_from(random_state) -> int:
    """An int seed from ``None`` (fresh entropy), an int or a ``RandomState``.

    The seed is one draw in [0, 2³¹ − 1) from scikit-learn's ``check_random_state(random_state)``,
    so an int always gives the same seed and a ``RandomState`` advances by one draw.

    Parameters
    ----------
    random_state : int, RandomState or None
        The scikit-learn style seed.

    Returns
    -------
    int
        A seed for NumPy, torch or scikit-learn.

    Examples
    --------
    >>> from roisynth.utils.validation import seed_from
    >>> seed_from(0) == seed_from(0)
    True
    """
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def check_codes(codes, n: int, width: int, name: str = "salient") -> np.ndarray:
    """Latent codes for ``n`` rows: one vector of ``width`` for all rows, or one per row.

    Parameters
    ----------
    codes : array-like of shape (width,) or (n, width)
        The codes; a single vector is broadcast to every row. Must be finite.
    n : int
        Number of rows.
    width : int
        Number of latent dimensions.
    name : str, default="salient"
        Name of the argument, used in the error message.

    Returns
    -------
    ndarray of shape (n, width)
        The codes as float64 (a read-only broadcast view for a single vector).

    Examples
    --------
    >>> from roisynth.utils.validation import check_codes
    >>> check_codes([1.0, 0.0], n=3, width=2)
    array([[1., 0.],
           [1., 0.],
           [1., 0.]])
    """
    values = np.asarray(codes, dtype=np.float64)
    if values.ndim == 1:
        values = np.broadcast_to(values, (n, values.shape[0]))
    if values.shape != (n, width) or not np.isfinite(values).all():
        raise ValueError(f"{name} must be finite with shape ({width},) or ({n}, {width}), got {np.shape(codes)}")
    return values
