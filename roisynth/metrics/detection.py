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
    """
    (xr, xs), _ = check_tables(min_rows=cv, real=real, synthetic=synthetic)
    y = np.r_[np.zeros(len(xr), int), np.ones(len(xs), int)]
    return cross_validated_auc(np.vstack([xr, xs]), y, cv, classifier, random_state)
