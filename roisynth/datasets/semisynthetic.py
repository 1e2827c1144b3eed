"""The seed paper's semi-synthetic benchmark (Table 1): CN subjects given known atrophy subtypes."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..utils.covariates import covariate_matrix
from .muse import base_name, read_rois, roi_names

SUBTYPE_ROIS = {  # Table 1; each entry means both hemispheres
    1: (
        "Amygdala",
        "TemporalPole",
        "Hippocampus",
        "EntorhinalArea",
        "MedialFrontalCortex",
        "MiddleFrontalGyrus",
        "ParietalOperculum",
    ),
    2: (
        "TemporalPole",
        "Hippocampus",
        "FrontalOperculum",
        "InferiorTemporalGyrus",
        "MedialFrontalCortex",
        "ParahippocampalGyrus",
        "PosteriorInsula",
    ),
    3: (
        "TemporalPole",
        "AngularGyrus",
        "LateralOrbitalGyrus",
        "MiddleOccipitalGyrus",
        "OpercularPartInferiorFrontalGyrus",
        "ParietalOperculum",
        "SupramarginalGyrus",
    ),
}
REDUCTION_RANGE = (0.1, 0.3)


@dataclass
class SemiSynthetic:
    """Result of :func:`make_semisynthetic`: two halves of a CN table, the second atrophied.

    Parameters
    ----------
    background, target : DataFrame
        Covariates and ROIs of the two halves (target after atrophy), with the input's index
        and participant_id.
    target_healthy : DataFrame
        The target rows before atrophy (each target subject's healthy twin).
    subtype : ndarray of shape (n_target,)
        Subtype (1..n_subtypes) of each target row.
    factors : DataFrame
        Reduction f [target row, ROI], 0 where the ROI is untouched.
    rois : list of str
        The ROI columns.
    patterns : dict of int to list of str
        Subtype -> its ROIs present in the table.

    Examples
    --------
    >>> from roisynth.datasets import load_example, make_semisynthetic
    >>> cohort = load_example()
    >>> data = make_semisynthetic(cohort[cohort.diagnosis == "CN"].iloc[:100], random_state=0)
    >>> len(data.background), len(data.target), sorted(set(data.subtype.tolist()))
    (50, 50, [1, 2, 3])
    >>> data.patterns[1][:2]
    ['Amygdala_R', 'Amygdala_L']
    """

    background: pd.DataFrame
    target: pd.DataFrame
    target_healthy: pd.DataFrame
    subtype: np.ndarray
    factors: pd.DataFrame
    rois: list[str]
    patterns: dict[int, list[str]]


def make_semisynthetic(
    cn,
    n_subtypes: int = 3,
    random_state=None,
    covariates: Sequence[str] = ("age", "sex", "icv"),
    rois: Sequence[str] | None = None,
) -> SemiSynthetic:
    """Split a CN table into background and target halves and atrophy the target.

    The table (DataFrame or path; ROI columns in any naming, see :func:`read_rois`) is split at
    random into halves; target subjects get subtypes 1..n_subtypes in equal numbers. Per ROI,
    OLS on all CN rows, v = b0 + b'x with x the covariates centred at their mean, gives the
    covariate-adjusted volume a = v - b'x (the volume at the average covariates). For each ROI of
    the subject's subtype (Table 1, both hemispheres; ROIs absent from the table are skipped)
    a <- (1 - f) a with f ~ Uniform(0.1, 0.3) drawn per subject and ROI, i.e.
    v_new = v - f a. ``rois`` restricts the ROIs (default: every single ROI in the table).

    Parameters
    ----------
    cn : DataFrame, str or path-like
        Healthy (CN) subjects with covariate and ROI columns; at least 4 rows.
    n_subtypes : int, default=3
        Number of atrophy subtypes, 1 to 3 (Table 1's first ``n_subtypes``).
    random_state : int, Generator or None, default=None
        Seed of the split, the subtypes and the reductions (``numpy.random.default_rng``).
    covariates : sequence of str, default=("age", "sex", "icv")
        Covariate columns of the adjustment (text columns are read as sex codes).
    rois : sequence of str, default=None
        The ROIs to keep (see :func:`read_rois`); None keeps every single ROI in the table.

    Returns
    -------
    SemiSynthetic
        The halves, the healthy twins of the target, subtypes and reduction factors.

    Examples
    --------
    >>> from roisynth.datasets import load_example, make_semisynthetic
    >>> cohort = load_example()
    >>> data = make_semisynthetic(cohort[cohort.diagnosis == "CN"].iloc[:100], random_state=0)
    >>> shrunk = data.target_healthy[data.rois] - data.target[data.rois]
    >>> bool((shrunk >= 0).all().all()), round(float(data.factors.max().max()), 3)
    (True, 0.3)
    """
    integer = isinstance(n_subtypes, numbers.Integral) and not isinstance(n_subtypes, bool)
    if not integer or not 1 <= n_subtypes <= len(SUBTYPE_ROIS):
        raise ValueError(f"n_subtypes must be an integer in 1..{len(SUBTYPE_ROIS)}, got {n_subtypes!r}")
    covariates = [covariates] if isinstance(covariates, str) else list(covariates)
    table = read_rois(cn, rois=rois)
    singles = set(roi_names(include_ventricles=True))
    columns = [c for c in table.columns if c in singles]
    overlap = [c for c in covariates if c in singles]
    if overlap:
        raise ValueError(f"covariates {overlap} are ROIs")
    if len(table) < 4:
        raise ValueError(f"cn has {len(table)} rows; at least 4 are needed")
    patterns = {k: [c for c in columns if base_name(c) in SUBTYPE_ROIS[k]] for k in range(1, n_subtypes + 1)}
    empty = [k for k, found in patterns.items() if not found]
    if empty:
        raise ValueError(
            f"subtype(s) {empty} have no ROI in the table (Table 1 ROIs: {[SUBTYPE_ROIS[k] for k in empty]})"
        )

    rng = np.random.default_rng(random_state)
    X = covariate_matrix(table, covariates, "cn")
    X = X - X.mean(axis=0)
    volumes = table[columns].to_numpy(float)
    design = np.column_stack([np.ones(len(table)), X])
    slopes = np.linalg.lstsq(design, volumes, rcond=None)[0][1:]
    adjusted = volumes - X @ slopes

    order = rng.permutation(len(table))
    background_rows, target_rows = np.sort(order[: len(table) // 2]), np.sort(order[len(table) // 2 :])
    subtype = rng.permutation(np.resize(np.arange(1, n_subtypes + 1), len(target_rows)))
    affected = np.array([[c in patterns[k] for c in columns] for k in range(1, n_subtypes + 1)])[subtype - 1]
    factors = np.where(affected, rng.uniform(*REDUCTION_RANGE, size=affected.shape), 0.0)

    keep = [c for c in ["participant_id", *covariates] if c in table.columns] + columns
    healthy = table.iloc[target_rows][keep].astype({c: float for c in columns})
    target = healthy.copy()
    target[columns] = volumes[target_rows] - factors * adjusted[target_rows]
    return SemiSynthetic(
        background=table.iloc[background_rows][keep].copy(),
        target=target,
        target_healthy=healthy,
        subtype=subtype,
        factors=pd.DataFrame(factors, index=target.index, columns=columns),
        rois=columns,
        patterns=patterns,
    )
