r"""Privacy: how close synthetic rows sit to the training rows, compared with fresh real rows,
and what they copy exactly (:func:`exact_copies`; the attacks of a privacy audit are in
:mod:`roisynth.metrics.attacks`).

All distances are Euclidean, computed after standardizing every table with the mean and
standard deviation of ``train`` (z-score units; a constant training column is left unscaled).
The yardstick is a ``holdout`` sample of real subjects from the same population that the
synthesizer never saw: a synthesizer that generalizes puts its rows as close to the training
rows as new real subjects are, one that memorizes puts them closer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..utils.validation import as_frame, check_choice, check_nonnegative, seed_from
from ._common import check_tables

METHODS = ("distance", "density")


def _standardized(**tables) -> list[np.ndarray]:
    arrays, _ = check_tables(**tables)
    train = arrays[list(tables).index("train")]
    mean, sd = train.mean(0), train.std(0, ddof=1)
    sd[sd == 0] = 1.0
    return [(x - mean) / sd for x in arrays]


def _neighbour_distances(queries: np.ndarray, reference: np.ndarray, k: int = 1) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(n_neighbors=k).fit(reference).kneighbors(queries)[0]


def distance_to_closest_record(synthetic, train, holdout) -> dict:
    r"""Distance to closest record (DCR): for each row, the distance to its nearest training row.

    .. math:: \mathrm{DCR}(x) = \min_j \lVert x - t_j \rVert_2

    over the training rows t_j, in z-score units (see the module docstring).
    Returns ``synthetic_median`` (median DCR of the synthetic rows), ``holdout_median``
    (median DCR of the real holdout rows, the baseline) and ``ratio`` = synthetic / holdout:
    ≈ 1 for synthetic data as far from the training rows as new real subjects, ≈ 0 for
    copies of training rows.

    Parameters
    ----------
    synthetic : DataFrame or ndarray of shape (n_synthetic, n_columns)
        Synthetic rows.
    train : DataFrame or ndarray of shape (n_train, n_columns)
        The real rows the synthesizer was trained on (they also set the standardization).
    holdout : DataFrame or ndarray of shape (n_holdout, n_columns)
        Real rows from the same population that the synthesizer never saw.

    Returns
    -------
    dict
        ``{"synthetic_median": float, "holdout_median": float, "ratio": float}``.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.metrics import distance_to_closest_record
    >>> rng = np.random.default_rng(0)
    >>> train, holdout = rng.normal(size=(100, 3)), rng.normal(size=(100, 3))
    >>> round(distance_to_closest_record(rng.normal(size=(100, 3)), train, holdout)["ratio"], 2)
    1.0
    >>> round(distance_to_closest_record(train + 0.01, train, holdout)["ratio"], 2)  # near copies
    0.04
    """
    synth, train, holdout = _standardized(synthetic=synthetic, train=train, holdout=holdout)
    medians = [float(np.median(_neighbour_distances(x, train)[:, 0])) for x in (synth, holdout)]
    if medians[1] == 0:
        raise ValueError("holdout rows duplicate training rows (median DCR 0): the baseline is undefined")
    return {"synthetic_median": medians[0], "holdout_median": medians[1], "ratio": medians[0] / medians[1]}


def nndr(synthetic, train) -> float:
    r"""Median nearest-neighbour distance ratio d₁/d₂ of the synthetic rows, where d₁ and d₂ are
    the distances to the closest and second-closest training rows (0/0 counts as 0).

    .. math:: \mathrm{NNDR} = \operatorname{median}_i \frac{d_1(x_i)}{d_2(x_i)}

    In [0, 1]: near 0, synthetic rows sit on one particular training subject (memorization);
    near 1, they are about as close to several subjects (no single one singled out).
    Distances are Euclidean in z-score units (see the module docstring).

    Parameters
    ----------
    synthetic : DataFrame or ndarray of shape (n_synthetic, n_columns)
        Synthetic rows.
    train : DataFrame or ndarray of shape (n_train, n_columns)
        The real rows the synthesizer was trained on (at least 2).

    Returns
    -------
    float
        Median d₁/d₂ over the synthetic rows.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.metrics import nndr
    >>> rng = np.random.default_rng(0)
    >>> train = rng.normal(size=(100, 3))
    >>> round(nndr(rng.normal(size=(100, 3)), train), 2)
    0.78
    >>> round(nndr(train + 0.01, train), 2)  # near copies of training rows
    0.04
    """
    synth, train = _standardized(synthetic=synthetic, train=train)
    d = _neighbour_distances(synth, train, k=2)
    ratio = np.divide(d[:, 0], d[:, 1], out=np.zeros(len(d)), where=d[:, 1] > 0)
    return float(np.median(ratio))


def membership_inference_auc(synthetic, train, holdout, method: str = "distance", bandwidth="scott",
                             random_state=None) -> float:
    r"""ROC AUC of an attacker who, given the synthetic data, guesses which candidates were
    in the training set.

    Candidates: m training rows (members) and m holdout rows (non-members), m = the smaller of
    the two sizes, drawn without replacement. Each candidate x gets a score, higher = "member":

    - ``"distance"``: −min_j ‖x − s_j‖, closeness to the nearest synthetic row;
    - ``"density"``: log p̂(x) under a Gaussian kernel density estimate fitted on the synthetic
      rows, with ``bandwidth`` in z-score units (a number, or ``"scott"`` = n^{−1/(d+4)} or
      ``"silverman"`` = (n(d + 2)/4)^{−1/(d+4)}), evaluated exactly in log space by
      :func:`roisynth.synthesizers.log_kde` (scikit-learn's tree estimate is far off for distant
      points at small bandwidths). In few dimensions a
      wide kernel smooths memorized rows away; with many, it acts like the distance score.

    0.5 = the synthetic data leak nothing about membership; 1 = members fully identified.

    Parameters
    ----------
    synthetic : DataFrame or ndarray of shape (n_synthetic, n_columns)
        Synthetic rows.
    train : DataFrame or ndarray of shape (n_train, n_columns)
        The real rows the synthesizer was trained on (members).
    holdout : DataFrame or ndarray of shape (n_holdout, n_columns)
        Real rows the synthesizer never saw (non-members).
    method : {"distance", "density"}, default="distance"
        The attacker's score (see above).
    bandwidth : float or {"scott", "silverman"}, default="scott"
        Kernel bandwidth of the ``"density"`` score, in z-score units.
    random_state : int, RandomState or None, default=None
        Seed of the candidate draw.

    Returns
    -------
    float
        ROC AUC of the attack, in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.metrics import membership_inference_auc
    >>> rng = np.random.default_rng(0)
    >>> train, holdout = rng.normal(size=(100, 3)), rng.normal(size=(100, 3))
    >>> round(membership_inference_auc(rng.normal(size=(100, 3)), train, holdout, random_state=0), 2)
    0.47
    >>> round(membership_inference_auc(train + 0.01, train, holdout, random_state=0), 2)  # copies
    1.0
    """
    from sklearn.metrics import roc_auc_score

    from ..synthesizers._kde import log_kde

    check_choice(method, "method", METHODS)
    synth, train, holdout = _standardized(synthetic=synthetic, train=train, holdout=holdout)
    rng = np.random.default_rng(seed_from(random_state))
    m = min(len(train), len(holdout))
    candidates = np.vstack([train[rng.choice(len(train), m, replace=False)],
                            holdout[rng.choice(len(holdout), m, replace=False)]])
    if method == "distance":
        scores = -_neighbour_distances(candidates, synth)[:, 0]
    else:
        n, d = synth.shape
        rules = {"scott": n ** (-1 / (d + 4)), "silverman": (n * (d + 2) / 4) ** (-1 / (d + 4))}
        h = rules[check_choice(bandwidth, "bandwidth", list(rules))] if isinstance(bandwidth, str) \
            else check_nonnegative(bandwidth, "bandwidth", positive=True)
        scores = log_kde(synth, candidates, [h])[0]
    return float(roc_auc_score(np.r_[np.ones(m), np.zeros(m)], scores))


#: Covariate-like columns taken as quasi-identifiers when present (matched case-insensitively):
#: what a register or a hospital file holds besides the images.
DEFAULT_QUASI_IDENTIFIERS = ("site", "age", "sex", "icv")

#: Integer values below this magnitude are left out of the cell check of :func:`exact_copies`:
#: codes, counts and ages in whole years coincide by chance.
SMALL_INTEGER = 1000


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Numeric columns rounded to float32 (then back to float64), others as strings: equal
    values compare equal whatever the table's precision (a float32 file, a CSV round trip)."""
    return pd.DataFrame({c: frame[c].to_numpy(float).astype(np.float32).astype(float)
                         if _is_numeric(frame[c]) else frame[c].astype(str).to_numpy() for c in frame.columns})


def _is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _row_matches(synthetic: pd.DataFrame, train: pd.DataFrame, columns) -> np.ndarray:
    """Which synthetic rows equal some training row on ``columns`` (float32-rounded)."""
    hashes = [pd.util.hash_pandas_object(_comparable(t[columns]), index=False).to_numpy() for t in (synthetic, train)]
    return np.isin(hashes[0], hashes[1])


def default_quasi_identifiers(columns) -> list:
    """The columns among ``columns`` named like a covariate of ``DEFAULT_QUASI_IDENTIFIERS``.

    Parameters
    ----------
    columns : iterable of str
        Column names.

    Returns
    -------
    list of str
        Those named site, age, sex or icv (case-insensitive), in their order.

    Examples
    --------
    >>> from roisynth.metrics.privacy import default_quasi_identifiers
    >>> default_quasi_identifiers(["participant_id", "Site", "age", "Hippocampus_L", "ICV"])
    ['Site', 'age', 'ICV']
    """
    return [c for c in columns if str(c).lower() in DEFAULT_QUASI_IDENTIFIERS]


def exact_copies(synthetic, train, quasi_identifiers=None) -> dict:
    """Count what a synthetic table copies exactly from the training table.

    Values are compared on the columns the two tables share (DataFrames by name, two arrays by
    position), numeric ones after rounding both sides to float32, so that a copy survives a
    float32 file or a CSV round trip; other columns as text.

    - ``rows``: synthetic rows equal to a training row on every shared column;
    - ``quasi_identifiers``: synthetic rows whose quasi-identifier tuple (e.g. site, age, sex,
      ICV) equals a training subject's — the attributes a register holds, which single a person
      out even when the volumes are new;
    - ``cells``: single numeric synthetic cells equal to a value of the same training column.
      Integer values below ``SMALL_INTEGER`` (1000) in magnitude are left out: codes, counts and
      whole-year ages coincide by chance, not by copying. ``cells_by_column`` gives, per column
      with at least one copy, the share of its checked cells that are copies.

    Parameters
    ----------
    synthetic : DataFrame or ndarray of shape (n_synthetic, n_columns)
        Synthetic rows.
    train : DataFrame or ndarray of shape (n_train, n_columns)
        The real rows the synthesizer was trained on.
    quasi_identifiers : list of str or None, default=None
        The quasi-identifier columns; None: those named site, age, sex or icv
        (case-insensitive, see :func:`default_quasi_identifiers`) among the shared columns.

    Returns
    -------
    dict
        ``n_synthetic``; ``rows``; ``quasi_identifiers`` (None when there is no quasi-identifier
        column) and ``quasi_identifier_columns``; ``cells``, ``cells_checked`` and
        ``cells_by_column`` ({column: share of its checked cells that are copies}).

    Raises
    ------
    ValueError
        If the tables share no column, or a quasi-identifier is not a shared column.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from roisynth.metrics import exact_copies
    >>> rng = np.random.default_rng(0)
    >>> train = pd.DataFrame({"age": rng.uniform(60, 90, 50), "sex": rng.choice(["F", "M"], 50),
    ...                       "Hippocampus_L": rng.normal(3500, 400, 50)})
    >>> synthetic = train.assign(Hippocampus_L=rng.normal(3500, 400, 50))  # covariates copied
    >>> copies = exact_copies(synthetic, train)
    >>> copies["rows"], copies["quasi_identifiers"], copies["cells"], copies["cells_by_column"]
    (0, 50, 50, {'age': 1.0})
    """
    synthetic, train = as_frame(synthetic, "synthetic"), as_frame(train, "train")
    columns = [c for c in train.columns if c in synthetic.columns]
    if not columns:
        raise ValueError("synthetic and train share no column")
    if quasi_identifiers is None:
        quasi_identifiers = default_quasi_identifiers(columns)
    else:
        quasi_identifiers = [quasi_identifiers] if isinstance(quasi_identifiers, str) else list(quasi_identifiers)
        unknown = [c for c in quasi_identifiers if c not in columns]
        if unknown:
            raise ValueError(f"quasi_identifiers {unknown} are not columns of both synthetic and train")
    cells = checked = 0
    by_column = {}
    for column in columns:
        if not (_is_numeric(synthetic[column]) and _is_numeric(train[column])):
            continue
        values = synthetic[column].to_numpy(float).astype(np.float32)
        counted = ~((values == np.round(values)) & (np.abs(values) < SMALL_INTEGER))
        copied = counted & np.isin(values, train[column].to_numpy(float).astype(np.float32))
        cells, checked = cells + int(copied.sum()), checked + int(counted.sum())
        if copied.any():
            by_column[column] = float(copied.sum() / counted.sum())
    return {
        "n_synthetic": len(synthetic),
        "rows": int(_row_matches(synthetic, train, columns).sum()),
        "quasi_identifiers": int(_row_matches(synthetic, train, quasi_identifiers).sum()) if quasi_identifiers
        else None,
        "quasi_identifier_columns": quasi_identifiers,
        "cells": cells,
        "cells_checked": checked,
        "cells_by_column": by_column,
    }
