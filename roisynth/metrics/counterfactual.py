"""Counterfactual accuracy, where the truth is known (semi-synthetic benchmarks)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._common import check_tables


def _rmse(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(((x - y) ** 2).mean()))


def twin_error(twins, truth, observed=None) -> dict:
    r"""Root-mean-square error of counterfactual ``twins`` against the known ``truth``.

    Rows correspond by position (DataFrames must then share the same index);
    RMSE = √(mean over all rows and columns of (twin − truth)²), in the units of the data, so
    pass z-scores to weight all ROIs alike. With ``observed`` (the factual rows the twins were
    made from), also returns ``observed_rmse`` = RMSE(observed, truth) and
    ``ratio`` = rmse / observed_rmse: < 1 means the twin is closer to the truth than doing nothing.

    .. math:: \mathrm{RMSE}(x, y) = \Big(\frac{1}{n p}\sum_{i=1}^{n}\sum_{j=1}^{p}
              (x_{ij} - y_{ij})^2\Big)^{1/2}

    Parameters
    ----------
    twins : DataFrame or ndarray of shape (n_rows, n_columns)
        Counterfactual rows (e.g. healthy twins of patients).
    truth : DataFrame or ndarray of shape (n_rows, n_columns)
        The true counterfactual of each row, in the same order.
    observed : DataFrame, ndarray or None, default=None
        The factual rows the twins were made from.

    Returns
    -------
    dict
        ``{"rmse": float}``, plus ``"observed_rmse"`` and ``"ratio"`` when ``observed`` is given.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.metrics import twin_error
    >>> truth = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> observed = truth - 1.0
    >>> twin_error(truth + 0.5, truth, observed)
    {'rmse': 0.5, 'observed_rmse': 1.0, 'ratio': 0.5}
    """
    tables = {"twins": twins, "truth": truth} | ({} if observed is None else {"observed": observed})
    arrays, _ = check_tables(min_rows=1, **tables)
    frames = {name: t for name, t in tables.items() if isinstance(t, pd.DataFrame)}
    lengths = {name: len(x) for name, x in zip(tables, arrays)}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"rows must correspond one to one, got {lengths} rows")
    first = next(iter(frames.values()), None)
    for name, frame in frames.items():
        if not frame.index.equals(first.index):
            raise ValueError(
                f"{name} has a different index from {next(iter(frames))}: rows are matched by position, so align "
                "them first (or pass .to_numpy())"
            )
    result = {"rmse": _rmse(arrays[0], arrays[1])}
    if observed is not None:
        result["observed_rmse"] = _rmse(arrays[2], arrays[1])
        if result["observed_rmse"] == 0:
            raise ValueError("observed equals truth, so the ratio is undefined")
        result["ratio"] = result["rmse"] / result["observed_rmse"]
    return result
