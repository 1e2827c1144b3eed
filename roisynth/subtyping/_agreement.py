r"""Agreement and consensus of continuous disease dimensions (R-indices) found by several fold models.

Dimensions are numbered arbitrarily, like subtypes: fold model A's pattern 1 may be fold model
B's pattern 3. Before comparing or averaging fold models, their dimensions are matched by the
Hungarian algorithm on the correlations of their R-indices (:func:`match_dimensions`). The
agreement of two fold models is Surreal-GAN's "Rindices-corr" (Yang et al. 2022): the mean of

- the dimension correlation, :math:`\frac1K \sum_k \rho(r^1_k, r^2_{\pi(k)})`, and
- the difference correlation, :math:`\binom K2^{-1} \sum_{k<l} \rho(r^1_k - r^1_l, r^2_{\pi(k)} - r^2_{\pi(l)})`

(ρ Pearson's correlation; with K = 1 the dimension correlation alone). The consensus is the
mean of the aligned R-indices, as :func:`~roisynth.subtyping.consensus` averages subtype
probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy.optimize import linear_sum_assignment


def _correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlations between the columns of ``a`` (n × k) and of ``b`` (n × m); 0 for a constant column."""
    a = a - a.mean(0)
    b = b - b.mean(0)
    norms = np.outer(np.linalg.norm(a, axis=0), np.linalg.norm(b, axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(norms > 0, a.T @ b / norms, 0.0)


def match_dimensions(reference: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Column order π of ``r`` whose columns correlate best with those of ``reference``:
    maximizes Σ_k ρ(reference_k, r_π(k)), so that ``r[:, π]`` speaks the reference's dimensions.

    Parameters
    ----------
    reference : ndarray of shape (n_samples, k)
        Reference dimensions (e.g. true severities, or the consensus R-indices).
    r : ndarray of shape (n_samples, m), m ≥ k
        Dimensions to match to the reference.

    Returns
    -------
    order : ndarray of shape (k,)
        The column of ``r`` matched to each reference column.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.subtyping import match_dimensions
    >>> reference = np.array([[0.1, 0.9], [0.5, 0.2], [0.9, 0.4]])
    >>> match_dimensions(reference, reference[:, ::-1]).tolist()
    [1, 0]
    """
    reference, r = np.asarray(reference, dtype=np.float64), np.asarray(r, dtype=np.float64)
    if r.shape[1] < reference.shape[1]:
        raise ValueError(f"r has {r.shape[1]} dimensions, fewer than the reference's {reference.shape[1]}")
    return linear_sum_assignment(-_correlations(reference, r))[1]


def dimension_agreement(r1: np.ndarray, r2: np.ndarray) -> tuple[float, float]:
    """(dimension correlation, difference correlation) of two sets of R-indices of the same rows,
    after matching the dimensions of ``r2`` to those of ``r1`` (see the module docstring).

    Parameters
    ----------
    r1, r2 : ndarray of shape (n_samples, k)
        R-indices of the same patients by two models.

    Returns
    -------
    dimension_corr, difference_corr : tuple of float
        The two correlations; ``difference_corr`` equals ``dimension_corr`` when k = 1.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.subtyping import dimension_agreement
    >>> r = np.random.default_rng(0).uniform(size=(50, 3))
    >>> [round(v, 3) for v in dimension_agreement(r, r[:, [2, 0, 1]])]
    [1.0, 1.0]
    """
    r1, r2 = np.asarray(r1, dtype=np.float64), np.asarray(r2, dtype=np.float64)
    r2 = r2[:, match_dimensions(r1, r2)]
    dimension = float(np.mean(np.diag(_correlations(r1, r2))))
    pairs = list(combinations(range(r1.shape[1]), 2))
    if not pairs:
        return dimension, dimension
    d1 = np.column_stack([r1[:, k] - r1[:, m] for k, m in pairs])
    d2 = np.column_stack([r2[:, k] - r2[:, m] for k, m in pairs])
    return dimension, float(np.mean(np.diag(_correlations(d1, d2))))


@dataclass
class DimensionConsensus:
    """Agreement and consensus of fold models' R-indices on the same rows (:func:`dimension_consensus`).

    Parameters
    ----------
    r : ndarray of shape (n_samples, k)
        Mean of the aligned R-indices.
    pairwise : ndarray of shape (m, m)
        Agreement (mean of dimension and difference correlations) between fold models.
    mean_agreement : float
        Mean over distinct pairs (1 = all folds agree; nan with one fold).
    orders : list of ndarray of shape (k,)
        The column order that aligns each fold with the consensus.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.subtyping import DimensionConsensus
    >>> one = DimensionConsensus(r=np.ones((2, 1)), pairwise=np.ones((1, 1)), mean_agreement=float("nan"),
    ...                          orders=[np.array([0])])
    >>> one.r.shape
    (2, 1)
    """

    r: np.ndarray
    pairwise: np.ndarray
    mean_agreement: float
    orders: list[np.ndarray]


def dimension_consensus(fold_r: list[np.ndarray], rounds: int = 3) -> DimensionConsensus:
    """Align every fold's R-indices to the running consensus (starting from the first fold) and
    average them; repeat ``rounds`` times so the reference itself settles.

    Parameters
    ----------
    fold_r : list of array-like of shape (n_samples, k)
        R-indices of the same rows by each fold model, in its own dimension order.
    rounds : int, default=3
        Alignment rounds.

    Returns
    -------
    result : DimensionConsensus
        The aligned mean R-indices and the agreement between folds.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.subtyping import dimension_consensus
    >>> r = np.random.default_rng(0).uniform(size=(40, 2))
    >>> result = dimension_consensus([r, r[:, ::-1]])
    >>> bool(np.allclose(result.r, r)), round(result.mean_agreement, 3)
    (True, 1.0)
    """
    folds = [np.asarray(r, dtype=np.float64) for r in fold_r]
    reference = folds[0]
    for _ in range(rounds):
        orders = [match_dimensions(reference, r) for r in folds]
        reference = np.mean([r[:, order] for r, order in zip(folds, orders)], axis=0)
    m = len(folds)
    pairwise = np.ones((m, m))
    for i, j in combinations(range(m), 2):
        pairwise[i, j] = pairwise[j, i] = float(np.mean(dimension_agreement(folds[i], folds[j])))
    mean = float(pairwise[np.triu_indices(m, 1)].mean()) if m > 1 else float("nan")
    return DimensionConsensus(reference, pairwise, mean, orders)
