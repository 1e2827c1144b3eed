"""Scores for learned representations: what the common and salient latents carry."""

from __future__ import annotations

import numbers

from ..utils.validation import seed_from
from ._common import check_labels, check_tables, cross_validated_auc


def decoupling_auc(z, labels, cv: int = 5, random_state=None) -> float:
    """Cross-validated ROC AUC of logistic regression predicting ``labels`` from the latents ``z``.

    For the common latent z of a contrastive model, 0.5 means z carries no information on the
    cohort (background vs target): it is decoupled from the disease; 1 means fully entangled.
    Mean over ``cv`` stratified shuffled folds; with more than two classes, the one-vs-rest
    macro AUC. The features are standardized and the regression is L2-penalized (C = 1).

    Parameters
    ----------
    z : DataFrame or ndarray of shape (n_rows, n_latent)
        Latent codes (e.g. the common latents of ``ContrastiveVAE.transform``), at least ``cv`` rows.
    labels : array-like of shape (n_rows,)
        Class of each row (e.g. cohort), at least two classes, no missing values.
    cv : int, default=5
        Number of folds.
    random_state : int, RandomState or None, default=None
        Seed of the fold split.

    Returns
    -------
    float
        Mean ROC AUC over the held-out folds.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.metrics import decoupling_auc
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 50)
    >>> round(decoupling_auc(rng.normal(size=(100, 2)), labels, random_state=0), 2)  # decoupled
    0.52
    >>> z = rng.normal(size=(100, 2)) + 3.0 * labels[:, None]
    >>> round(decoupling_auc(z, labels, random_state=0), 2)  # entangled
    1.0
    """
    (x,), _ = check_tables(min_rows=cv, z=z)
    return cross_validated_auc(x, check_labels(labels, len(x)), cv, "logistic", random_state)


def subtype_recovery(s, labels, n_clusters: int | None = None, random_state=None) -> dict:
    """Cluster the latents ``s`` with k-means and compare the clusters with known ``labels``.

    ``n_clusters`` defaults to the number of distinct labels. Returns (all in [0, 1] except
    ARI, which is ≤ 1 with 0 = chance):

    - ``completeness``: each true subtype falls in a single cluster;
    - ``homogeneity``: each cluster holds a single true subtype;
    - ``ari``: adjusted Rand index between clusters and labels.

    k-means runs with 10 initializations (scikit-learn's ``KMeans``).

    Parameters
    ----------
    s : DataFrame or ndarray of shape (n_rows, n_latent)
        Latent codes (e.g. the salient latents of patients), at least 2 rows.
    labels : array-like of shape (n_rows,)
        True subtype of each row, at least two classes.
    n_clusters : int or None, default=None
        Number of clusters, between 2 and the number of rows; None = number of distinct labels.
    random_state : int, RandomState or None, default=None
        Seed of k-means.

    Returns
    -------
    dict
        ``{"completeness": float, "homogeneity": float, "ari": float}``.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.metrics import subtype_recovery
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([1, 2, 3], 30)
    >>> s = rng.normal(0.0, 0.3, size=(90, 2)) + np.eye(3, 2)[labels - 1] * 3.0
    >>> {k: round(v, 3) for k, v in subtype_recovery(s, labels, random_state=0).items()}
    {'completeness': 1.0, 'homogeneity': 1.0, 'ari': 1.0}
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import (
        adjusted_rand_score,
        completeness_score,
        homogeneity_score,
    )

    (x,), _ = check_tables(s=s)
    y = check_labels(labels, len(x))
    k = len(set(y)) if n_clusters is None else n_clusters
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 2 <= k <= len(x):
        raise ValueError(f"n_clusters must be an integer between 2 and the number of rows ({len(x)}), got {k!r}")
    clusters = KMeans(int(k), n_init=10, random_state=seed_from(random_state)).fit_predict(x)
    return {
        "completeness": float(completeness_score(y, clusters)),
        "homogeneity": float(homogeneity_score(y, clusters)),
        "ari": float(adjusted_rand_score(y, clusters)),
    }
