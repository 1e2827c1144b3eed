"""Classifier two-sample test: can a classifier tell real rows from synthetic ones?"""

from __future__ import annotations

import numpy as np

from ._common import check_tables, cross_validated_auc


def detection_auc(real, synthetic, cv: int = 5, classifier: str = "logistic", random_state=None) -> float:
    """Cross-validated ROC AUC of a classifier separating ``real`` from ``synthetic`` rows.

    The pooled rows are labelled 1 (synthetic) / 0 (real) and split into ``cv`` stratified,
    shuffled folds; the returned AUC is the mean over held-out folds. 0.5 = indistinguishable,
    1 = perfectly separable (values a little under 0.5 are noise). ``classifier``:
    ``"logistic"`` (standardized features + logistic regression: detects differences in means
    and, weakly, in scale) or ``"gradient_boosting"`` (histogram gradient boosting: also
    non-linear differences, needs more rows).

    Parameters
    ----------
    real : DataFrame or ndarray of shape (n_real, n_columns)
        Real rows (at least ``cv``).
    synthetic : DataFrame or ndarray of shape (n_synthetic, n_columns)
        Synthetic rows with the same columns (at least ``cv``).
    cv : int, default=5
        Number of folds.
    classifier : {"logistic", "gradient_boosting"}, default="logistic"
        The classifier (see above).
    random_state : int, RandomState or None, default=None
        Seed of the fold split (and of gradient boosting).

    Returns
    -------
    float
        Mean ROC AUC over the held-out folds.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.metrics import detection_auc
    >>> rng = np.random.default_rng(0)
    >>> real = rng.normal(size=(100, 3))
    >>> round(detection_auc(real, rng.normal(size=(100, 3)), random_state=0), 2)  # same distribution
    0.45
    >>> round(detection_auc(real, rng.normal(2.0, 1.0, size=(100, 3)), random_state=0), 2)
    0.99
    """
    (xr, xs), _ = check_tables(min_rows=cv, real=real, synthetic=synthetic)
    y = np.r_[np.zeros(len(xr), int), np.ones(len(xs), int)]
    return cross_validated_auc(np.vstack([xr, xs]), y, cv, classifier, random_state)
