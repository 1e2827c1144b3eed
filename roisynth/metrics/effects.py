"""Group differences per ROI: effect sizes, their agreement between real and synthetic, tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..utils.validation import check_choice
from ._common import check_tables

CORRECTIONS = ("fdr_bh", "bonferroni")


def _cohens_d(xa: np.ndarray, xb: np.ndarray, columns: pd.Index) -> np.ndarray:
    na, nb = len(xa), len(xb)
    pooled = np.sqrt(((na - 1) * xa.var(0, ddof=1) + (nb - 1) * xb.var(0, ddof=1)) / (na + nb - 2))
    if (pooled == 0).any():
        raise ValueError(f"column(s) {list(columns[pooled == 0][:5])} are constant in both groups: d is undefined")
    return (xa.mean(0) - xb.mean(0)) / pooled


def cohens_d(a, b) -> pd.Series:
    r"""Cohen's d of group ``a`` against group ``b`` for every column (unitless):

    .. math:: d = \frac{\bar a - \bar b}{s_p},\qquad
              s_p^2 = \frac{(n_a - 1)s_a^2 + (n_b - 1)s_b^2}{n_a + n_b - 2}

    where :math:`s_a^2, s_b^2` are the unbiased variances. Negative where ``a`` is smaller
    (e.g. ``cohens_d(patients, controls)`` < 0 for atrophy).

    Parameters
    ----------
    a, b : DataFrame or ndarray of shape (n_rows, n_columns)
        The two groups (at least 2 rows each), with the same columns.

    Returns
    -------
    Series
        d for every column, named ``"d"`` and indexed by column name (``x0, x1, ...`` for arrays).

    Examples
    --------
    >>> import pandas as pd
    >>> from roisynth.metrics import cohens_d
    >>> patients = pd.DataFrame({"Hippocampus_L": [2.0, 3.0, 4.0], "Thalamus_L": [8.0, 9.0, 10.0]})
    >>> controls = pd.DataFrame({"Hippocampus_L": [4.0, 5.0, 6.0], "Thalamus_L": [9.0, 10.0, 11.0]})
    >>> cohens_d(patients, controls)
    Hippocampus_L   -2.0
    Thalamus_L      -1.0
    Name: d, dtype: float64
    """
    (xa, xb), columns = check_tables(a=a, b=b)
    return pd.Series(_cohens_d(xa, xb, columns), index=columns, name="d")


def effect_map_correlation(real_a, real_b, synth_a, synth_b) -> float:
    """Pearson correlation over ROIs between the real and the synthetic effect maps.

    The effect maps are ``cohens_d(real_a, real_b)`` and ``cohens_d(synth_a, synth_b)``
    (see :func:`cohens_d`); 1 = the synthetic data reproduce which regions differ between the
    groups, and by how much relative to each other.

    Parameters
    ----------
    real_a, real_b : DataFrame or ndarray of shape (n_rows, n_columns)
        The two real groups (e.g. patients, controls).
    synth_a, synth_b : DataFrame or ndarray of shape (n_rows, n_columns)
        The corresponding synthetic groups, with the same columns (at least 2).

    Returns
    -------
    float
        Pearson correlation between the two vectors of d, in [-1, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.metrics import effect_map_correlation
    >>> rng = np.random.default_rng(0)
    >>> shift = np.array([-1.0, -0.5, 0.0, 0.2])
    >>> real_a, real_b = rng.normal(shift, 1.0, (80, 4)), rng.normal(0.0, 1.0, (80, 4))
    >>> synth_a, synth_b = rng.normal(shift, 1.0, (80, 4)), rng.normal(0.0, 1.0, (80, 4))
    >>> round(effect_map_correlation(real_a, real_b, synth_a, synth_b), 3)
    0.946
    """
    (ra, rb, sa, sb), columns = check_tables(real_a=real_a, real_b=real_b, synth_a=synth_a, synth_b=synth_b)
    if len(columns) < 2:
        raise ValueError("an effect-map correlation needs at least 2 columns")
    return float(np.corrcoef(_cohens_d(ra, rb, columns), _cohens_d(sa, sb, columns))[0, 1])


def roi_tests(a, b, correction: str = "fdr_bh", alpha: float = 0.05) -> pd.DataFrame:
    r"""Welch's t-test of ``a`` against ``b`` for every column, corrected for multiple testing.

    Returns a DataFrame indexed by column with ``t`` (Welch statistic, mean a − mean b over its
    standard error), ``p`` (two-sided), ``p_adjusted`` (statsmodels ``multipletests`` with
    ``correction``: ``"fdr_bh"`` Benjamini-Hochberg false discovery rate or ``"bonferroni"``
    family-wise error), ``reject`` (p_adjusted < ``alpha``) and ``d`` (:func:`cohens_d`).

    .. math:: t = \frac{\bar a - \bar b}{\sqrt{s_a^2/n_a + s_b^2/n_b}}

    Parameters
    ----------
    a, b : DataFrame or ndarray of shape (n_rows, n_columns)
        The two groups (at least 2 rows each), with the same columns.
    correction : {"fdr_bh", "bonferroni"}, default="fdr_bh"
        Multiple-testing correction.
    alpha : float, default=0.05
        Level of the corrected tests, in (0, 1).

    Returns
    -------
    DataFrame
        One row per column with ``t``, ``p``, ``p_adjusted``, ``reject`` and ``d``.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.metrics import roi_tests
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal([-1.0, 0.0], 1.0, (50, 2)), rng.normal(0.0, 1.0, (50, 2))
    >>> tests = roi_tests(a, b)
    >>> tests["reject"].tolist()
    [True, False]
    >>> tests["d"].round(2).tolist()
    [-0.91, 0.16]
    """
    from scipy.stats import ttest_ind
    from statsmodels.stats.multitest import multipletests

    check_choice(correction, "correction", CORRECTIONS)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    (xa, xb), columns = check_tables(a=a, b=b)
    d = _cohens_d(xa, xb, columns)
    test = ttest_ind(xa, xb, axis=0, equal_var=False)
    reject, adjusted, _, _ = multipletests(test.pvalue, alpha=alpha, method=correction)
    return pd.DataFrame(
        {"t": test.statistic, "p": test.pvalue, "p_adjusted": adjusted, "reject": reject, "d": d}, index=columns
    )
