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
