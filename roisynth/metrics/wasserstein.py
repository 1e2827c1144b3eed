r"""2-Wasserstein distances between two samples: exact, sliced, and between Gaussian fits.

For Gaussians N(m_a, A) and N(m_b, B) the Bures-Wasserstein distance is

.. math:: W_2^2 = \lVert m_a - m_b\rVert^2 + \operatorname{tr}A + \operatorname{tr}B
                  - 2\operatorname{tr}\big(A^{1/2} B A^{1/2}\big)^{1/2}

Every function here returns :math:`W_2` (not :math:`W_2^2`), in the units of the data.
"""

from __future__ import annotations

import numpy as np

from ..utils.validation import check_count
from ._common import check_tables


def _gaussian_fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def _factor(cov: np.ndarray) -> np.ndarray:
    """F with F Fᵀ = cov: Cholesky, or V diag(√λ) when cov is singular."""
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(cov)
        return v * np.sqrt(np.clip(w, 0, None))


def _bures(mean_a, trace_a: float, factor_a: np.ndarray, mean_b, trace_b: float, cross: np.ndarray) -> float:
    r"""W2 from the moments, with ``cross`` = Fᵀ B F for any F with F Fᵀ = A.

    Fᵀ B F is similar to A^{1/2} B A^{1/2} (same eigenvalues λ), so the trace term is Σ √λ.
    """
    root = np.sqrt(np.clip(np.linalg.eigvalsh(cross), 0, None)).sum()
    w2sq = ((mean_a - mean_b) ** 2).sum() + trace_a + trace_b - 2 * root
    return float(np.sqrt(max(w2sq, 0.0)))


def gaussian_w2(a, b) -> float:
    r"""W2 between Gaussian fits (mean, unbiased covariance) of tables ``a`` and ``b``.

    With m_a, m_b the column means and A, B the unbiased covariance matrices,

    .. math:: W_2 = \Big(\lVert m_a - m_b\rVert^2 + \operatorname{tr}A + \operatorname{tr}B
              - 2\operatorname{tr}\big(A^{1/2} B A^{1/2}\big)^{1/2}\Big)^{1/2}

    The same value as POT's ``ot.gaussian.bures_wasserstein_distance`` (which also returns
    W2, not W2²), computed from a Cholesky factor F of A (Fᵀ B F has the eigenvalues of
    A^{1/2} B A^{1/2}) with eigenvalues clipped at 0, so that it also holds for singular
    covariances (fewer rows than columns), where POT's square roots fail.

    Parameters
    ----------
    a, b : DataFrame or ndarray of shape (n_rows, n_columns)
        The two samples (rows = subjects). DataFrames are matched by column name, arrays by
        position; at least 2 rows each, numeric and finite.

    Returns
    -------
    float
        W2 (not W2²) between the two Gaussian fits, in the units of the data.

    See Also
    --------
    wasserstein : exact W2 between the empirical distributions.
    GaussianReference : the same distance to a fixed reference, precomputed.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.metrics import gaussian_w2
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(0.0, 1.0, size=(200, 3))
    >>> round(gaussian_w2(a, a + [1.0, 0.0, 0.0]), 3)  # a shift of the mean by 1
    1.0
    >>> round(gaussian_w2(a, rng.normal(0.0, 1.0, size=(200, 3))), 3)
    0.315
    """
    (xa, xb), _ = check_tables(a=a, b=b)
    (ma, ca), (mb, cb) = _gaussian_fit(xa), _gaussian_fit(xb)
    factor = _factor(ca)
    return _bures(ma, np.trace(ca), factor, mb, np.trace(cb), factor.T @ cb @ factor)


class GaussianReference:
    """A fixed sample whose Gaussian fit is compared with many others (early stopping).

    Precomputes the reference mean, trace and covariance square root :math:`A^{1/2}`, so
    each ``distance(y)`` needs one covariance and one symmetric eigenvalue problem.
    Gives the same value as :func:`gaussian_w2` (tested).

    Parameters
    ----------
    x : DataFrame or ndarray of shape (n_rows, n_columns)
        The reference sample (at least 2 rows, numeric and finite).

    Attributes
    ----------
    mean : ndarray of shape (n_columns,)
        Column means of ``x``.
    sqrt : ndarray of shape (n_columns, n_columns)
        Symmetric square root of the unbiased covariance of ``x``.
    trace : float
        Trace of that covariance.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.metrics import GaussianReference, gaussian_w2
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(100, 3)), rng.normal(0.5, 1.0, size=(80, 3))
    >>> reference = GaussianReference(x)
    >>> round(reference.distance(y), 6) == round(gaussian_w2(x, y), 6)
    True
    """

    def __init__(self, x):
        (x,), _ = check_tables(x=x)
        self.mean, cov = _gaussian_fit(x)
        w, v = np.linalg.eigh(cov)
        self.sqrt = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
        self.trace = float(np.trace(cov))

    def distance(self, y) -> float:
        """W2 between the Gaussian fits of the reference and of ``y``, as :func:`gaussian_w2`.

        Parameters
        ----------
        y : DataFrame or ndarray of shape (n_rows, n_columns)
            A sample with the reference's number of columns (matched by position).

        Returns
        -------
        float
            W2 (not W2²), in the units of the data.
        """
        (y,), _ = check_tables(y=y)
        if y.shape[1] != len(self.mean):
            raise ValueError(f"y has {y.shape[1]} columns but the reference has {len(self.mean)}")
        mean, cov = _gaussian_fit(y)
        return _bures(self.mean, self.trace, self.sqrt, mean, np.trace(cov), self.sqrt @ cov @ self.sqrt)


def wasserstein(a, b) -> float:
    r"""Exact W2 between the empirical distributions of ``a`` and ``b`` (uniform weights).

    .. math:: W_2 = \Big(\min_{P \in U(1/n, 1/m)} \sum_{ij} P_{ij}\lVert a_i - b_j\rVert^2\Big)^{1/2}

    where U(1/n, 1/m) is the set of n × m couplings with uniform marginals, solved as a linear
    program by POT's ``ot.emd2`` on the squared-Euclidean cost (which returns W2²; the square
    root is taken here). Cost O(n m) memory and roughly cubic time: for thousands of rows
    prefer :func:`sliced_wasserstein` or :func:`gaussian_w2`.

    Parameters
    ----------
    a : DataFrame or ndarray of shape (n, n_columns)
        First sample (at least 1 row).
    b : DataFrame or ndarray of shape (m, n_columns)
        Second sample, with the same columns (by name for DataFrames, by position for arrays).

    Returns
    -------
    float
        W2 (not W2²), in the units of the data.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.metrics import wasserstein
    >>> a = np.array([[0.0, 0.0], [1.0, 0.0]])
    >>> round(wasserstein(a, a + [0.0, 2.0]), 3)  # every point moves by 2
    2.0
    >>> rng = np.random.default_rng(0)
    >>> round(wasserstein(rng.normal(size=(30, 2)), rng.normal(size=(40, 2))), 3)
    0.697
    """
    import ot  # imported here: POT's import takes seconds, and most users never call this

    (xa, xb), _ = check_tables(min_rows=1, a=a, b=b)
    cost = ot.dist(xa, xb, metric="sqeuclidean")
    weights_a, weights_b = np.full(len(xa), 1 / len(xa)), np.full(len(xb), 1 / len(xb))
    w2sq = ot.emd2(weights_a, weights_b, cost, numItermax=max(100_000, 50 * len(xa) * len(xb)))
    return float(np.sqrt(max(w2sq, 0.0)))


def sliced_wasserstein(a, b, n_projections: int = 200, random_state=None) -> float:
    r"""Sliced W2: the root mean W2² of the 1-D projections on random unit directions θ,

    .. math:: SW_2 = \Big(\frac{1}{K}\sum_{k=1}^{K} W_2^2(\theta_k^\top a, \theta_k^\top b)\Big)^{1/2}
              \le W_2(a, b),

    via POT's ``ot.sliced_wasserstein_distance`` (already a W2, p = 2). Each 1-D problem is
    solved exactly by sorting, so the cost is O(K (n + m) log(n + m)).

    Parameters
    ----------
    a : DataFrame or ndarray of shape (n, n_columns)
        First sample (at least 1 row).
    b : DataFrame or ndarray of shape (m, n_columns)
        Second sample, with the same columns.
    n_projections : int, default=200
        Number K of random directions.
    random_state : int, RandomState or None, default=None
        Seed of the directions, passed to POT as ``seed``.

    Returns
    -------
    float
        SW2, in the units of the data.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.metrics import sliced_wasserstein
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(100, 4))
    >>> round(sliced_wasserstein(a, a + 1.0, random_state=0), 3)
    1.03
    """
    import ot

    n_projections = check_count(n_projections, "n_projections")
    (xa, xb), _ = check_tables(min_rows=1, a=a, b=b)
    return float(ot.sliced_wasserstein_distance(xa, xb, n_projections=n_projections, p=2, seed=random_state))
