r"""2-Wasserstein distances between Gaussian fits of two samples.

For Gaussians N(m_a, A) and N(m_b, B) the Bures-Wasserstein distance is

.. math:: W_2^2 = \lVert m_a - m_b\rVert^2 + \operatorname{tr}A + \operatorname{tr}B
                  - 2\operatorname{tr}\big(A^{1/2} B A^{1/2}\big)^{1/2}

Every function here returns :math:`W_2` (not squared), in the units of the data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _values(x) -> np.ndarray:
    arr = x.to_numpy(dtype=np.float64) if isinstance(x, pd.DataFrame) else np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < 2:
        raise ValueError(f"expected a 2-D table with at least 2 rows, got shape {arr.shape}")
    return arr


def _gaussian_fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def gaussian_w2(a, b) -> float:
    """W2 between Gaussian fits (mean, unbiased covariance) of tables ``a`` and ``b``.

    Computed with POT's ``ot.gaussian.bures_wasserstein_distance``, which returns W2, not
    W2². Columns must correspond; DataFrames are compared column by column as given.
    """
    import ot  # imported here: POT's import takes seconds, and most users never call this

    xa, xb = _values(a), _values(b)
    if xa.shape[1] != xb.shape[1]:
        raise ValueError(f"tables have {xa.shape[1]} and {xb.shape[1]} columns")
    (ma, ca), (mb, cb) = _gaussian_fit(xa), _gaussian_fit(xb)
    return float(ot.gaussian.bures_wasserstein_distance(ma, mb, ca, cb))


class GaussianReference:
    """A fixed sample whose Gaussian fit is compared with many others (early stopping).

    Precomputes the reference mean, trace and covariance square root :math:`A^{1/2}`, so
    each ``distance(y)`` needs one covariance and one symmetric eigenvalue problem.
    Gives the same value as :func:`gaussian_w2` (tested).
    """

    def __init__(self, x):
        x = _values(x)
        self.mean, cov = _gaussian_fit(x)
        w, v = np.linalg.eigh(cov)
        self.sqrt = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
        self.trace = float(np.trace(cov))

    def distance(self, y) -> float:
        y = _values(y)
        mean, cov = _gaussian_fit(y)
        cross = np.linalg.eigvalsh(self.sqrt @ cov @ self.sqrt)
        w2sq = ((self.mean - mean) ** 2).sum() + self.trace + np.trace(cov) - 2 * np.sqrt(np.clip(cross, 0, None)).sum()
        return float(np.sqrt(max(w2sq, 0.0)))
