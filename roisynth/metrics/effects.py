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

    Negative where ``a`` is smaller (e.g. ``cohens_d(patients, controls)`` < 0 for atrophy).
    """
    (xa, xb), columns = check_tables(a=a, b=b)
    return pd.Series(_cohens_d(xa, xb, columns), index=columns, name="d")


def effect_map_correlation(real_a, real_b, synth_a, synth_b) -> float:
    """Pearson correlation over ROIs between the real and the synthetic effect maps,
    ``cohens_d(real_a, real_b)`` and ``cohens_d(synth_a, synth_b)`` (1 = the synthetic data
    reproduce which regions differ between the groups, and by how much relative to each other)."""
    (ra, rb, sa, sb), columns = check_tables(real_a=real_a, real_b=real_b, synth_a=synth_a, synth_b=synth_b)
    if len(columns) < 2:
        raise ValueError("an effect-map correlation needs at least 2 columns")
    return float(np.corrcoef(_cohens_d(ra, rb, columns), _cohens_d(sa, sb, columns))[0, 1])


def roi_tests(a, b, correction: str = "fdr_bh", alpha: float = 0.05) -> pd.DataFrame:
    """Welch's t-test of ``a`` against ``b`` for every column, corrected for multiple testing.

    Returns a DataFrame indexed by column with ``t`` (Welch statistic, mean a − mean b over its
    standard error), ``p`` (two-sided), ``p_adjusted`` (statsmodels ``multipletests`` with
    ``correction``: ``"fdr_bh"`` Benjamini-Hochberg false discovery rate or ``"bonferroni"``
    family-wise error), ``reject`` (p_adjusted < ``alpha``) and ``d`` (:func:`cohens_d`).
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
