"""Maximum mean discrepancy with a multi-bandwidth RBF kernel."""

from __future__ import annotations

import numpy as np

from ._common import check_tables

BANDWIDTH_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)


def mmd(a, b, unbiased: bool = True) -> float:
    r"""Squared maximum mean discrepancy MMD² between the samples ``a`` (n rows) and ``b`` (m rows).

    Kernel: the mean of five RBF kernels,

    .. math:: k(u, v) = \frac15 \sum_{s \in \{1/4, 1/2, 1, 2, 4\}} \exp\!\big(-\lVert u - v\rVert^2 / (s\,h)\big),

    with h the median pairwise squared distance of the pooled sample (so k ∈ (0, 1] and the
    bandwidths follow the data's scale). ``unbiased=True`` returns the U-statistic

    .. math:: \frac{1}{n(n-1)}\sum_{i\ne j} k(a_i, a_j) + \frac{1}{m(m-1)}\sum_{i\ne j} k(b_i, b_j)
              - \frac{2}{nm}\sum_{i,j} k(a_i, b_j),

    whose expectation is the population MMD² (0 when the distributions are equal; it can be
    slightly negative); ``unbiased=False`` the V-statistic (all pairs, i = j included), which is
    ≥ 0 but biased upwards by O(1/n + 1/m). Unitless. Memory O((n + m)²).

    Parameters
    ----------
    a : DataFrame or ndarray of shape (n, n_columns)
        First sample (at least 2 rows).
    b : DataFrame or ndarray of shape (m, n_columns)
        Second sample, with the same columns (at least 2 rows).
    unbiased : bool, default=True
        Return the U-statistic (True) or the V-statistic (False).

    Returns
    -------
    float
        MMD² (not MMD).

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.metrics import mmd
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(100, 3))
    >>> round(mmd(a, rng.normal(size=(100, 3))), 3)
    -0.001
    >>> round(mmd(a, rng.normal(1.0, 1.0, size=(100, 3))), 3)
    0.19
    """
    (xa, xb), _ = check_tables(a=a, b=b)
    pooled = np.vstack([xa, xb])
    norms = (pooled**2).sum(1)
    sq = np.clip(norms[:, None] + norms[None, :] - 2 * pooled @ pooled.T, 0, None)
    h = np.median(sq[np.triu_indices(len(pooled), 1)])
    if h == 0:
        raise ValueError("all rows are identical: the kernel bandwidth (median pairwise distance) is 0")
    kernel = sum(np.exp(-sq / (s * h)) for s in BANDWIDTH_SCALES) / len(BANDWIDTH_SCALES)
    n = len(xa)
    k_aa, k_bb, k_ab = kernel[:n, :n], kernel[n:, n:], kernel[:n, n:]
    if unbiased:
        within = [(k.sum() - np.trace(k)) / (len(k) * (len(k) - 1)) for k in (k_aa, k_bb)]
    else:
        within = [k.mean() for k in (k_aa, k_bb)]
    return float(within[0] + within[1] - 2 * k_ab.mean())
