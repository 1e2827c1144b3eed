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
    macro AUC.
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
