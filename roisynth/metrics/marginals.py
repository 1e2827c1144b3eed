"""Per-column (marginal) comparisons and the comparison of correlation structures."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._common import check_tables


def marginal_distances(a, b) -> pd.DataFrame:
    r"""Compare the distribution of each column of ``a`` and ``b`` separately.

    Returns a DataFrame indexed by column with

    - ``ks_statistic``: two-sample Kolmogorov-Smirnov D = sup_x |F_a(x) − F_b(x)| (unitless, in [0, 1]);
    - ``ks_pvalue``: its p-value (exact for small samples, asymptotic otherwise; scipy);
    - ``wasserstein``: the 1-D W1 = ∫ |F_a(x) − F_b(x)| dx, in the units of the column.

    F_a and F_b are the empirical distribution functions of the column in ``a`` and ``b``.

    Parameters
    ----------
    a, b : DataFrame or ndarray of shape (n_rows, n_columns)
        The two samples (at least 2 rows each), with the same columns.

    Returns
    -------
    DataFrame
        One row per column with ``ks_statistic``, ``ks_pvalue`` and ``wasserstein``.

    Examples
    --------
    >>> import pandas as pd
    >>> from roisynth.metrics import marginal_distances
    >>> a = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [0.0, 1.0, 0.0, 1.0]})
    >>> b = pd.DataFrame({"x": [2.0, 3.0, 4.0, 5.0], "y": [0.0, 1.0, 0.0, 1.0]})
    >>> marginal_distances(a, b)[["ks_statistic", "wasserstein"]]
       ks_statistic  wasserstein
    x          0.25          1.0
    y          0.00          0.0
    """
    from scipy.stats import ks_2samp, wasserstein_distance

    (xa, xb), columns = check_tables(a=a, b=b)
    ks = ks_2samp(xa, xb, axis=0)
    w1 = [wasserstein_distance(xa[:, j], xb[:, j]) for j in range(xa.shape[1])]
    return pd.DataFrame({"ks_statistic": ks.statistic, "ks_pvalue": ks.pvalue, "wasserstein": w1}, index=columns)


def correlation_similarity(a, b) -> dict:
    r"""How alike the Pearson correlation matrices R_a and R_b of two tables are.

    - ``r``: Pearson correlation between the p(p−1)/2 upper-triangle entries of R_a and R_b
      (1 = same pattern of correlations, up to scale and offset);
    - ``frobenius``: :math:`\lVert R_a - R_b\rVert_F` over the whole matrices (0 = identical).

    Both unitless. Needs at least 3 columns and no constant column.

    Parameters
    ----------
    a, b : DataFrame or ndarray of shape (n_rows, n_columns)
        The two samples (at least 3 rows each), with the same columns.

    Returns
    -------
    dict
        ``{"r": float, "frobenius": float}``.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.metrics import correlation_similarity
    >>> rng = np.random.default_rng(0)
    >>> cov = [[1.0, 0.8, 0.0], [0.8, 1.0, 0.3], [0.0, 0.3, 1.0]]
    >>> a, b = rng.multivariate_normal(np.zeros(3), cov, 500), rng.multivariate_normal(np.zeros(3), cov, 500)
    >>> {k: round(v, 2) for k, v in correlation_similarity(a, b).items()}
    {'r': 1.0, 'frobenius': 0.11}
    """
    (xa, xb), columns = check_tables(min_rows=3, a=a, b=b)
    if len(columns) < 3:
        raise ValueError(f"correlation_similarity needs at least 3 columns, got {len(columns)}")
    matrices = []
    for name, x in (("a", xa), ("b", xb)):
        constant = columns[x.std(0) == 0]
        if len(constant):
            raise ValueError(f"{name} has constant column(s) {list(constant[:5])}: their correlations are undefined")
        matrices.append(np.corrcoef(x, rowvar=False))
    upper = np.triu_indices(len(columns), 1)
    r = np.corrcoef(matrices[0][upper], matrices[1][upper])[0, 1]
    return {"r": float(r), "frobenius": float(np.linalg.norm(matrices[0] - matrices[1]))}
