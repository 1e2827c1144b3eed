"""Group differences per ROI: effect sizes, their agreement between real and synthetic, tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..utils.validation import check_choice, check_nonnegative
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


def _effects(real_background, real_target, synth_background, synth_target, reference=None):
    """Cohen's d (target vs background) per column of the real training tables, of the
    synthetic tables and of the reference (None when not given), and the columns.

    ``reference`` is a ``(background, target)`` pair of tables, or d itself: a Series matched
    by column name or a 1-D array by position.
    """
    tables = {"real_background": real_background, "real_target": real_target,
              "synth_background": synth_background, "synth_target": synth_target}
    paired = isinstance(reference, (tuple, list))
    if paired:
        if len(reference) != 2:
            raise ValueError(f"reference must be a (background, target) pair of tables or a d per column, "
                             f"got a sequence of {len(reference)} items")
        tables |= {"reference_background": reference[0], "reference_target": reference[1]}
    arrays, columns = check_tables(**tables)
    d = [_cohens_d(target, background, columns) for background, target in zip(arrays[::2], arrays[1::2])]
    if reference is None or paired:
        return d[0], d[1], d[2] if paired else None, columns
    if isinstance(reference, pd.Series):
        missing = [c for c in columns if c not in reference.index]
        if missing:
            raise ValueError(f"reference has no d for column(s) {missing[:5]}")
        given = reference.reindex(columns).to_numpy(float)
    else:
        given = np.asarray(reference, dtype=float)
        if given.shape != (len(columns),):
            raise ValueError(f"reference must hold one d per column ({len(columns)}), got shape {given.shape}")
    if not np.isfinite(given).all():
        raise ValueError("reference has NaN or infinite d values")
    return d[0], d[1], given, columns


def effect_maps(real_background, real_target, synth_background, synth_target, reference=None) -> pd.DataFrame:
    r"""The effect maps: Cohen's d of target vs background per ROI, real and synthetic.

    For every column, :func:`cohens_d` of the target table against the background table of the
    real training data (:math:`d_\mathrm{train}`), of the synthetic data (:math:`d_\mathrm{syn}`)
    and, when given, of a reference (:math:`d_\mathrm{ref}`: held-out real data, or the known
    truth of a semi-synthetic benchmark). Negative d = smaller in the target cohort (atrophy).

    Parameters
    ----------
    real_background, real_target : DataFrame or ndarray of shape (n_rows, n_columns)
        The real training cohorts the synthesizer learned from.
    synth_background, synth_target : DataFrame or ndarray of shape (n_rows, n_columns)
        The synthetic cohorts, with the same columns.
    reference : (background, target) pair of tables, Series or ndarray, default=None
        Tables whose d is the reference, or d itself (a Series indexed by column name or a
        1-D array with one value per column).

    Returns
    -------
    DataFrame
        Indexed by column, with ``train`` and ``synthetic`` (and ``reference`` when given).

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.metrics import effect_maps
    >>> rng = np.random.default_rng(0)
    >>> shift = np.array([-1.0, 0.0])
    >>> real = rng.normal(0, 1, (500, 2)), rng.normal(shift, 1, (500, 2))
    >>> synthetic = rng.normal(0, 1, (500, 2)), rng.normal(0.5 * shift, 1, (500, 2))
    >>> effect_maps(*real, *synthetic, reference=shift).round(1)
        train  synthetic  reference
    x0   -0.9       -0.5       -1.0
    x1   -0.0        0.1        0.0
    """
    train, synthetic, given, columns = _effects(real_background, real_target, synth_background, synth_target,
                                                reference)
    maps = {"train": train, "synthetic": synthetic} | ({} if given is None else {"reference": given})
    return pd.DataFrame(maps, index=columns)


def effect_scale(real_background, real_target, synth_background, synth_target, min_effect: float = 0.2) -> float:
    r"""Effect scale: how large the synthetic group differences are relative to the real ones.

    The least-squares slope through the origin of the synthetic effect map on the real
    training data's (see :func:`effect_maps`), over the ROIs :math:`R` where the training data
    show an effect, :math:`|d_{\mathrm{train},j}| \ge` ``min_effect``:

    .. math:: \mathrm{scale} = \frac{\sum_{j \in R} d_{\mathrm{syn},j}\, d_{\mathrm{train},j}}
              {\sum_{j \in R} d_{\mathrm{train},j}^2}

    1 = the synthesizer reproduces the effects it was shown; < 1 it shrinks them (an analysis
    of the synthetic cohort underestimates the disease, and a power calculation overestimates
    the sample size); > 1 it inflates them.

    Parameters
    ----------
    real_background, real_target : DataFrame or ndarray of shape (n_rows, n_columns)
        The real training cohorts the synthesizer learned from.
    synth_background, synth_target : DataFrame or ndarray of shape (n_rows, n_columns)
        The synthetic cohorts, with the same columns.
    min_effect : float, default=0.2
        Smallest training |d| of the ROIs in the fit (0.2 = a "small" effect); 0 keeps every ROI.

    Returns
    -------
    float
        The slope (1 ideal).

    Raises
    ------
    ValueError
        If no ROI reaches ``min_effect`` in the training data.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.metrics import effect_scale
    >>> rng = np.random.default_rng(0)
    >>> shift = np.array([-1.0, -0.5, 0.0, 0.0])
    >>> real = rng.normal(0, 1, (2000, 4)), rng.normal(shift, 1, (2000, 4))
    >>> halved = rng.normal(0, 1, (2000, 4)), rng.normal(0.5 * shift, 1, (2000, 4))
    >>> round(effect_scale(*real, *real), 3), round(effect_scale(*real, *halved), 2)
    (1.0, 0.52)
    """
    min_effect = check_nonnegative(min_effect, "min_effect")
    train, synthetic, _, _ = _effects(real_background, real_target, synth_background, synth_target)
    shown = np.abs(train) >= min_effect
    if not shown.any():
        raise ValueError(f"no column reaches |d| >= min_effect={min_effect} in the real tables "
                         f"(largest |d| {np.abs(train).max():.3g}): lower min_effect")
    return float(synthetic[shown] @ train[shown] / (train[shown] @ train[shown]))


def effect_error(real_background, real_target, synth_background, synth_target, reference) -> dict:
    r"""Effect error: how far the synthetic effect map is from a reference, next to the real data's.

    With :math:`d_\mathrm{ref}` the reference effect map (held-out real data, or the known
    truth of a semi-synthetic benchmark) and :math:`p` ROIs:

    .. math:: \mathrm{rmse} = \Big(\frac1p \sum_j (d_{\mathrm{syn},j} - d_{\mathrm{ref},j})^2\Big)^{1/2},
              \qquad
              \mathrm{train\_rmse} = \Big(\frac1p \sum_j (d_{\mathrm{train},j} - d_{\mathrm{ref},j})^2\Big)^{1/2}

    and the **effect error ratio** = rmse / train_rmse: 1 = the synthetic cohort tells as much
    about group differences as the real data it came from; > 1 it tells less (the synthesizer
    added error: shrunk, inflated or invented effects); < 1 it would be closer to the reference
    than its own training data (a smoothing prior that happens to fit).

    Parameters
    ----------
    real_background, real_target : DataFrame or ndarray of shape (n_rows, n_columns)
        The real training cohorts the synthesizer learned from.
    synth_background, synth_target : DataFrame or ndarray of shape (n_rows, n_columns)
        The synthetic cohorts, with the same columns.
    reference : (background, target) pair of tables, Series or ndarray
        Tables whose d is the reference (e.g. held-out real cohorts), or d itself (a Series
        indexed by column name or a 1-D array with one value per column).

    Returns
    -------
    dict
        ``rmse`` (synthetic vs reference), ``train_rmse`` (training vs reference) and ``ratio``.

    Raises
    ------
    ValueError
        If the training d equals the reference d (the ratio is undefined).

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.metrics import effect_error
    >>> rng = np.random.default_rng(0)
    >>> truth = np.array([-1.0, -0.5, 0.0, 0.0])
    >>> real = rng.normal(0, 1, (200, 4)), rng.normal(truth, 1, (200, 4))
    >>> halved = rng.normal(0, 1, (5000, 4)), rng.normal(0.5 * truth, 1, (5000, 4))
    >>> effect_error(*real, *real, reference=truth)["ratio"]
    1.0
    >>> round(effect_error(*real, *halved, reference=truth)["ratio"], 1)
    2.3
    """
    train, synthetic, given, _ = _effects(real_background, real_target, synth_background, synth_target, reference)
    rmse, train_rmse = (float(np.sqrt(np.mean((d - given) ** 2))) for d in (synthetic, train))
    if train_rmse == 0:
        raise ValueError("the training d equals the reference d, so the effect error ratio is undefined")
    return {"rmse": rmse, "train_rmse": train_rmse, "ratio": rmse / train_rmse}


def spurious_effects(real_background, real_target, synth_background, synth_target, unaffected) -> dict:
    r"""Spurious effects: mean |d| over the ROIs without a true effect, synthetic and real.

    Over the set :math:`U` of unaffected ROIs (e.g. those a semi-synthetic benchmark leaves
    untouched in every patient):

    .. math:: \mathrm{synthetic} = \frac{1}{|U|}\sum_{j \in U} |d_{\mathrm{syn},j}|, \qquad
              \mathrm{train} = \frac{1}{|U|}\sum_{j \in U} |d_{\mathrm{train},j}|

    The training value is what sampling noise alone gives at the training sizes: a synthetic
    value above it means the synthesizer invents group differences where there are none.

    Parameters
    ----------
    real_background, real_target : DataFrame or ndarray of shape (n_rows, n_columns)
        The real training cohorts the synthesizer learned from.
    synth_background, synth_target : DataFrame or ndarray of shape (n_rows, n_columns)
        The synthetic cohorts, with the same columns.
    unaffected : sequence of str, boolean Series or boolean ndarray
        The ROIs with no true effect: their names, a boolean Series indexed by column name, or
        a boolean mask with one entry per column.

    Returns
    -------
    dict
        ``synthetic`` and ``train``: the mean |d| over the unaffected ROIs.

    Raises
    ------
    ValueError
        If ``unaffected`` selects no column or names unknown ones.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from roisynth.metrics import spurious_effects
    >>> rng = np.random.default_rng(0)
    >>> columns = ["Hippocampus_L", "Pons", "Thalamus_L"]
    >>> draw = lambda shift, n: pd.DataFrame(rng.normal(shift, 1, (n, 3)), columns=columns)
    >>> real = draw(0, 300), draw([-1.0, 0.0, 0.0], 300)
    >>> leaky = draw(0, 300), draw([-1.0, 0.3, -0.3], 300)
    >>> scores = spurious_effects(*real, *leaky, unaffected=["Pons", "Thalamus_L"])
    >>> bool(scores["synthetic"] > 0.2 > scores["train"])
    True
    """
    train, synthetic, _, columns = _effects(real_background, real_target, synth_background, synth_target)
    mask = _column_mask(unaffected, columns, "unaffected")
    return {"synthetic": float(np.abs(synthetic[mask]).mean()), "train": float(np.abs(train[mask]).mean())}


def _column_mask(selection, columns: pd.Index, name: str) -> np.ndarray:
    """Boolean mask over ``columns`` from column names, a boolean Series or a boolean array."""
    if isinstance(selection, pd.Series):
        if selection.dtype != bool:
            raise ValueError(f"{name} as a Series must be boolean (indexed by column name), got {selection.dtype}")
        missing = [c for c in columns if c not in selection.index]
        if missing:
            raise ValueError(f"{name} has no entry for column(s) {missing[:5]}")
        mask = selection.reindex(columns).to_numpy(bool)
    elif isinstance(selection, np.ndarray) and selection.dtype == bool:
        if selection.shape != (len(columns),):
            raise ValueError(f"{name} as a mask must have one entry per column ({len(columns)}), "
                             f"got shape {selection.shape}")
        mask = selection
    else:
        names = [selection] if isinstance(selection, str) else list(selection)
        unknown = [c for c in names if c not in columns]
        if unknown:
            raise ValueError(f"{name} names unknown column(s) {unknown[:5]}")
        mask = columns.isin(names)
    if not mask.any():
        raise ValueError(f"{name} selects no column")
    return mask
