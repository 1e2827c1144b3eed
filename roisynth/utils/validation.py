"""Input checks shared by every estimator: clear errors that name the column or row.

Every table an estimator is fitted on or applied to goes through :func:`check_numeric_table`:
numeric, non-complex columns; finite values that fit float32, the dtype the models compute in
(|v| ≤ :data:`FLOAT32_MAX`); for volumes, no negative value and none above
:data:`VOLUME_MAX_MM3`. Covariates are checked by :func:`check_covariate_bounds` against
:data:`COVARIATE_BOUNDS`. The plausibility bounds (not the finiteness or float32 checks) can be
switched off for legitimately unusual data with :func:`plausibility_checks`.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import numbers
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

MIN_ROWS = 10

#: Largest magnitude the models' float32 computations can hold.
FLOAT32_MAX = float(np.finfo(np.float32).max)

#: Largest plausible volume of one brain ROI, or of the whole intracranial cavity, in mm³
#: (2.5 L). Adult intracranial volume is about 1.1–1.9 L (Buckner et al. 2004, NeuroImage 23:724,
#: eTIV of 1,200+ adults) and the heaviest human brains on record weigh about 2.3 kg (≈ 2.2 L), so
#: no ROI or ICV in mm³ exceeds it; a larger value is a unit error (µL vs mm³ is 1:1, but mm³ vs
#: µm³ or a mis-scaled column is not) or a data-entry error.
VOLUME_MAX_MM3 = 2.5e6

#: Plausible ranges of covariates, inclusive, by lower-case column name: age in years (the oldest
#: person on record lived 122 years); ICV in mm³ (0.1 L, below a newborn's ≈ 0.4 L, to
#: :data:`VOLUME_MAX_MM3`; an ICV in cm³ or L falls below and is refused). Sex is checked where it
#: is text (F/M, female/male, see :func:`roisynth.utils.covariates.covariate_matrix`); numeric
#: sex codes are not bounded, as cohorts code it 0/1 or 1/2.
COVARIATE_BOUNDS = {"age": (0.0, 120.0), "icv": (1e5, VOLUME_MAX_MM3)}

_PLAUSIBILITY = contextvars.ContextVar("roisynth_plausibility_checks", default=True)


@contextlib.contextmanager
def plausibility_checks(enabled: bool = False):
    """Switch the plausibility bounds on or off within a ``with`` block (off by default).

    Inside ``with plausibility_checks(False):`` volumes above :data:`VOLUME_MAX_MM3` and
    covariates outside :data:`COVARIATE_BOUNDS` are accepted (data in other units, unusual
    cohorts). NaN, infinite values, values beyond float32 and negative volumes are refused
    regardless. The setting is per thread (a context variable); the CLI's ``--no-plausibility``
    option runs a whole command with the checks off.

    Parameters
    ----------
    enabled : bool, default=False
        Whether the bounds are checked inside the block.

    Yields
    ------
    None

    Examples
    --------
    >>> import pandas as pd
    >>> from roisynth.utils.validation import check_numeric_table, plausibility_checks
    >>> table = pd.DataFrame({"TotalBrain": [3.1e6, 2.9e6]})
    >>> check_numeric_table(table, "X", min_rows=2)
    Traceback (most recent call last):
    ...
    ValueError: X column 'TotalBrain' row 0 holds 3.1e+06, above the plausible volume 2.5e+06 mm³ ...
    >>> with plausibility_checks(False):
    ...     check_numeric_table(table, "X", min_rows=2).shape
    (2, 1)
    """
    token = _PLAUSIBILITY.set(bool(enabled))
    try:
        yield
    finally:
        _PLAUSIBILITY.reset(token)


def _cell(df: pd.DataFrame, mask: np.ndarray) -> str:
    """The first cell where ``mask`` (rows x columns) is true, and how many there are: "column 'a' row 3"."""
    row, col = np.argwhere(mask)[0]
    count = int(mask.sum())
    more = f" (and {count - 1} more cell{'s' if count > 2 else ''})" if count > 1 else ""
    return f"column {_label(df.columns[col])!r} row {_label(df.index[row])!r}", more


def _label(value):
    """A row or column label as a plain Python value (``7``, not ``np.int64(7)``) for messages."""
    return value.item() if isinstance(value, np.generic) else value


def check_covariate_bounds(table: pd.DataFrame, columns: Sequence[str], values: np.ndarray, name: str) -> None:
    """Refuse covariates outside :data:`COVARIATE_BOUNDS`, naming the column, row and value.

    Columns without a bound (matched by lower-case name) are not checked, nor anything inside
    ``with plausibility_checks(False):``.

    Parameters
    ----------
    table : DataFrame
        The table the covariates come from (its index names the rows).
    columns : sequence of str
        The covariate columns, in the order of ``values``' columns.
    values : ndarray of shape (len(table), len(columns))
        The covariates as numbers (e.g. from :func:`~roisynth.utils.covariates.covariate_matrix`).
    name : str
        Name of the table, used in error messages.

    Raises
    ------
    ValueError
        For the first value out of its bounds.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from roisynth.utils.validation import check_covariate_bounds
    >>> table = pd.DataFrame({"age": [71.0, 300.0]}, index=["s1", "s2"])
    >>> check_covariate_bounds(table, ["age"], table.to_numpy(), "covariates")
    Traceback (most recent call last):
    ...
    ValueError: covariates column 'age' row 's2' holds 300, outside the plausible range [0, 120] ...
    """
    if not _PLAUSIBILITY.get():
        return
    for j, column in enumerate(columns):
        bounds = COVARIATE_BOUNDS.get(str(column).lower())
        if bounds is None:
            continue
        low, high = bounds
        bad = (values[:, j] < low) | (values[:, j] > high)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{name} column {_label(column)!r} row {_label(table.index[i])!r} holds {values[i, j]:g}, outside "
                f"the plausible range [{low:g}, {high:g}] ({int(bad.sum())} row(s) in all); fix the data, or for "
                "legitimately unusual data wrap the call in roisynth.utils.validation.plausibility_checks(False) "
                "(CLI: --no-plausibility)"
            )


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

    Raises ``TypeError`` for non-numeric or complex columns and ``ValueError`` for too few
    rows, NaN/inf values, values beyond float32 (:data:`FLOAT32_MAX`), and, for volumes
    (``nonnegative=True``), negative values or values above :data:`VOLUME_MAX_MM3` (unless
    :func:`plausibility_checks` is off), naming the offending columns and rows or cell.

    Parameters
    ----------
    df : DataFrame
        The table (rows = subjects).
    name : str
        Name of the table, used in error messages.
    min_rows : int, default=10
        Fewest rows accepted.
    nonnegative : bool, default=True
        The values are volumes: refuse negative values and values above :data:`VOLUME_MAX_MM3`.

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
    complex_ = [c for c in df.columns if types.is_complex_dtype(df[c])]
    if complex_:
        raise TypeError(f"{name} has complex-number column(s) {complex_[:5]}: volumes are real numbers")
    non_numeric = [c for c in df.columns if not types.is_numeric_dtype(df[c]) or types.is_bool_dtype(df[c])]
    if non_numeric:
        raise TypeError(
            f"{name} has non-numeric column(s) {non_numeric[:5]}: pass only ROI volume columns "
            "(e.g. df[roisynth.datasets.roi_names()]), covariates go to the preprocessing pipeline"
        )
    if len(df) < min_rows:
        if len(df) == 0:
            raise ValueError(f"{name} is empty (0 rows)")
        raise ValueError(f"{name} has {len(df)} row(s); at least {min_rows} subjects are needed")
    values = df.to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.all():
        cols = [c for c, ok in zip(df.columns, finite.all(axis=0)) if not ok]
        rows = _rows(df.index, ~finite.all(axis=1))
        raise ValueError(f"{name} has NaN or infinite values in column(s) {cols[:5]} (rows {rows})")
    huge = np.abs(values) > FLOAT32_MAX
    if huge.any():
        where, more = _cell(df, huge)
        raise ValueError(f"{name} {where} holds {values[huge][0]:g}, beyond the float32 range the models "
                         f"compute in (|v| ≤ {FLOAT32_MAX:.3g}){more}")
    if nonnegative:
        negative = values < 0
        if negative.any():
            cols = [c for c, bad in zip(df.columns, negative.any(axis=0)) if bad]
            rows = _rows(df.index, negative.any(axis=1))
            raise ValueError(f"{name} has negative volumes in column(s) {cols[:5]} (rows {rows})")
        implausible = values > VOLUME_MAX_MM3
        if implausible.any() and _PLAUSIBILITY.get():
            where, more = _cell(df, implausible)
            raise ValueError(
                f"{name} {where} holds {values[implausible][0]:g}, above the plausible volume {VOLUME_MAX_MM3:g} mm³ "
                f"of any brain region{more}; are the units mm³? For legitimately unusual data wrap the call in "
                "roisynth.utils.validation.plausibility_checks(False) (CLI: --no-plausibility)"
            )
    return values


def check_standardized(df: pd.DataFrame, values: np.ndarray, mean: np.ndarray, scale: np.ndarray,
                       name: str) -> None:
    """Refuse values that leave float32's range once standardized, ``(values − mean) / scale``.

    A value far outside the training data (e.g. 1e30 mm³ when the training spread is a few
    hundred) would overflow the models' float32 computations and come back as inf or NaN.

    Parameters
    ----------
    df : DataFrame
        The table ``values`` come from (its columns and index name the cell).
    values : ndarray of shape (n_rows, n_columns)
        The raw values.
    mean, scale : ndarray of shape (n_columns,)
        The standardization (the background training cohort's mean and standard deviation).
    name : str
        Name of the table, used in error messages.

    Raises
    ------
    ValueError
        Naming the first cell that does not fit.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from roisynth.utils.validation import check_standardized
    >>> df = pd.DataFrame({"Hippocampus_L": [3000.0, 3.0e36]})
    >>> check_standardized(df, df.to_numpy(), np.array([3000.0]), np.array([1e-3]), "X")
    Traceback (most recent call last):
    ...
    ValueError: X column 'Hippocampus_L' row 1 holds 3e+36, which is 3e+39 standard deviations from ...
    """
    with np.errstate(over="ignore", invalid="ignore"):
        z = (values - mean) / scale
    bad = ~(np.abs(z) <= FLOAT32_MAX)
    if bad.any():
        where, more = _cell(df, bad)
        raise ValueError(f"{name} {where} holds {values[bad][0]:g}, which is {np.abs(z[bad][0]):.3g} standard "
                         f"deviations from the training mean: beyond the float32 range the models compute in{more}")


def check_finite_output(values, source: str, what: str = "values") -> None:
    """Refuse to return non-finite results: a ``ValueError`` instead of NaN or inf passed on silently.

    Parameters
    ----------
    values : array-like
        The results about to be returned.
    source : str
        What produced them (an estimator's name), used in the message.
    what : str, default="values"
        What the results are, used in the message.

    Raises
    ------
    ValueError
        If any value is NaN or infinite.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.utils.validation import check_finite_output
    >>> check_finite_output(np.array([1.0, 2.0]), "Model")
    >>> check_finite_output(np.array([1.0, np.nan]), "Model", "probabilities")
    Traceback (most recent call last):
    ...
    ValueError: Model produced 1 non-finite probabilities (NaN or inf); its fitted state may be damaged ...
    """
    values = np.asarray(values)
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(f"{source} produced {int(bad.sum())} non-finite {what} (NaN or inf); its fitted state may be "
                         "damaged or the inputs too far from the training data")


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


def available_memory() -> int | None:
    """Bytes of memory available now (Linux and macOS: free physical pages), or None where unknown.

    Returns
    -------
    int or None

    Examples
    --------
    >>> from roisynth.utils.validation import available_memory
    >>> available = available_memory()
    >>> available is None or available > 0
    True
    """
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


#: Bytes per cell assumed by :func:`check_disk_space`: a float written as CSV text (17 significant digits,
#: sign, point, exponent, separator) or as an uncompressed float64 in Parquet.
BYTES_PER_CELL = {"csv": 24, "parquet": 8}


def check_disk_space(path, n_rows: int, n_columns: int, kind: str = "csv") -> None:
    """Refuse a file that would not fit on the disk that is to hold it, before writing anything.

    Parameters
    ----------
    path : str or path-like
        The file to write (its folder, or the nearest existing parent, is measured).
    n_rows, n_columns : int
        Size of the table.
    kind : {"csv", "parquet"}, default="csv"
        File format (:data:`BYTES_PER_CELL`).

    Raises
    ------
    ValueError
        Naming the size needed and the space free.

    Examples
    --------
    >>> import tempfile
    >>> from roisynth.utils.validation import check_disk_space
    >>> check_disk_space(tempfile.gettempdir() + "/s.csv", 1000, 145)
    >>> check_disk_space(tempfile.gettempdir() + "/s.csv", 10**15, 145)
    Traceback (most recent call last):
    ...
    ValueError: writing 1000000000000000 rows x 145 columns as csv needs about 3.48e+09 GB; ...
    """
    import shutil
    from pathlib import Path

    folder = Path(os.fspath(path)).resolve().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    needed = n_rows * n_columns * BYTES_PER_CELL[kind]
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise ValueError(f"writing {n_rows} rows x {n_columns} columns as {kind} needs about {needed / 1e9:.3g} GB; "
                         f"the disk holding {folder} has {free / 1e9:.3g} GB free")


def check_sample_size(n, n_columns: int, name: str = "n", copies: int = 4) -> int:
    """A positive count of synthetic rows whose table fits in the memory available now.

    A table of ``n`` rows x ``n_columns`` float64 values is made a few times over while it is
    drawn and written (``copies``); beyond the available memory this is a ``ValueError`` saying
    how much is needed, instead of a ``MemoryError`` (or the machine swapping) later.

    Parameters
    ----------
    n : int
        Number of rows asked for.
    n_columns : int
        Columns of each row.
    name : str, default="n"
        Name of the argument, used in the error message.
    copies : int, default=4
        Copies of the table alive at once while it is made.

    Returns
    -------
    int
        ``n`` as a Python int.

    Examples
    --------
    >>> from roisynth.utils.validation import check_sample_size
    >>> check_sample_size(1000, 139)
    1000
    >>> check_sample_size(10**15, 139)
    Traceback (most recent call last):
    ...
    ValueError: n=1000000000000000 rows x 139 columns needs about 4.45e+09 GB of memory...
    """
    n = check_count(n, name)
    needed = n * max(int(n_columns), 1) * 8 * copies
    available = available_memory()
    if available is not None and needed > available:
        raise ValueError(f"{name}={n} rows x {n_columns} columns needs about {needed / 1e9:.3g} GB of memory, "
                         f"more than the {available / 1e9:.3g} GB available: draw it in chunks (several calls "
                         "with different random_state) and write them one after the other")
    return n


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
        The scikit-learn style seed (an int in [0, 2³²); anything else is a ``ValueError``).

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
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def check_random_state(random_state) -> np.random.RandomState:
    """scikit-learn's ``check_random_state``, with a clear error for a bad ``random_state``.

    Parameters
    ----------
    random_state : int, RandomState or None
        None (fresh entropy), an int in [0, 2³²) or a ``RandomState`` (returned as it is).

    Returns
    -------
    RandomState

    Raises
    ------
    ValueError
        If ``random_state`` is anything else, naming the argument and the allowed values.

    Examples
    --------
    >>> from roisynth.utils.validation import check_random_state
    >>> int(check_random_state(0).randint(10))
    5
    >>> check_random_state(-1)
    Traceback (most recent call last):
    ...
    ValueError: random_state must be None, an int in [0, 2**32) or a numpy RandomState, got -1
    """
    from sklearn.utils import check_random_state as sklearn_check_random_state

    if not is_random_state(random_state):
        raise ValueError(f"random_state must be None, an int in [0, 2**32) or a numpy RandomState, "
                         f"got {random_state!r}")
    return sklearn_check_random_state(random_state)


def is_random_state(value) -> bool:
    """Whether ``value`` is a valid ``random_state``: None, an int in [0, 2³²) or a ``RandomState``.

    Parameters
    ----------
    value : object
        The candidate seed.

    Returns
    -------
    bool

    Examples
    --------
    >>> from roisynth.utils.validation import is_random_state
    >>> is_random_state(0), is_random_state(2**32), is_random_state("abc"), is_random_state(True)
    (True, False, False, False)
    """
    if value is None or isinstance(value, np.random.RandomState):
        return True
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)) and 0 <= value < 2**32


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
