r"""The numerical core of ComBat-GAM, for every ROI at once.

Every ROI shares one design matrix :math:`X` (site indicators, linear covariates, a cubic
B-spline basis per smooth covariate); only the response and the smoothing penalty differ.
:func:`fit_penalized` solves the penalized least-squares problems of all ROIs, all candidate
penalties and all cross-validation folds from the Gram matrices of the folds, so its cost
after one pass over the rows does not grow with the number of subjects.
:func:`site_estimates` is ComBat's empirical-Bayes location/scale step of one site, over all
ROIs. The facts (penalty scale, grid, cost, priors, iteration) are those of statsmodels'
``GLMGam`` and neuroCombat, which neuroHarmonize combines; the code is independent.
"""

from __future__ import annotations

import itertools

import numpy as np
from statsmodels.gam.api import BSplines

SPLINE_DF, SPLINE_DEGREE = 10, 3  # neuroHarmonize's basis: 10 cubic B-splines, the first dropped (9 columns)
PENALTY_GRID = np.logspace(0, 7, 11)  # statsmodels' default grid of select_penweight_kfold, per smooth term
K_FOLDS = 5
_EB_TOLERANCE, _EB_MAX_ITER = 1e-4, 1000  # neuroCombat's convergence tolerance (relative change)


def spline_knots(x: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    """All knots of a cubic B-spline basis in ``x``: the bounds (4 times each) and 6 inner knots.

    The inner knots sit at the quantiles ``1/7 .. 6/7`` of ``x`` (statsmodels' ``BSplines``),
    except that a quantile equal to a value of ``x`` moves halfway to the next distinct value,
    so that no knot is a training value (a model file must not hold one).
    """
    order = SPLINE_DEGREE + 1
    inner = np.quantile(x, np.linspace(0, 1, SPLINE_DF - order + 2)[1:-1])
    values = np.unique(x)
    at = np.searchsorted(values, inner)
    hit = values[np.minimum(at, len(values) - 1)] == inner
    neighbour = values[np.where(at + 1 < len(values), at + 1, at - 1)]
    inner = np.where(hit, (inner + neighbour) / 2, inner)
    return np.sort(np.concatenate([np.repeat(bounds, order), inner]))


def spline_basis(knots: np.ndarray) -> BSplines:
    """statsmodels' B-spline smoother of several covariates (one row of ``knots`` each).

    ``.transform(x)`` evaluates the basis at ``x`` [subject, covariate] and
    ``.smoothers[i].cov_der2`` is term ``i``'s penalty matrix, the integral of the products of
    the basis' second derivatives; neither depends on the training values.
    """
    knots = np.atleast_2d(knots)
    return BSplines(knots.T, df=[SPLINE_DF] * len(knots), degree=[SPLINE_DEGREE] * len(knots),
                    knot_kwds=[{"all_knots": k} for k in knots])


def fold_of_rows(n: int, random_state: np.random.RandomState) -> np.ndarray:
    """Fold (0..4) of each of ``n`` rows: a random permutation split in 5 near-equal parts."""
    folds = np.empty(n, dtype=np.intp)
    for k, rows in enumerate(np.array_split(random_state.permutation(n), K_FOLDS)):
        folds[rows] = k
    return folds


def _solve(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``gram⁻¹ rhs`` for a stack of symmetric positive-definite systems (Jacobi-scaled for accuracy)."""
    d = 1 / np.sqrt(np.diagonal(gram, axis1=-2, axis2=-1))[..., :, None]
    return d * np.linalg.solve(d * gram * np.swapaxes(d, -1, -2), d * rhs)


def fit_penalized(design: np.ndarray, Y: np.ndarray, penalties: list[np.ndarray], constant: np.ndarray,
                  folds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Penalized least squares of every column of ``Y`` on ``design``, penalty chosen by k-fold CV.

    For ROI :math:`r` and penalty weights :math:`\lambda` (one per smooth term) the
    coefficients minimize :math:`\lVert y_r - X\beta\rVert^2 + 2\sum_t \lambda_t\,\beta^\top
    S_t\beta` (statsmodels' ``GLMGam`` with a Gaussian family, whose penalty carries that
    factor 2), so :math:`\hat\beta = (X^\top X + 2\sum_t\lambda_t S_t)^{-1}X^\top y_r`. Each ROI
    gets the :math:`\lambda` of the grid (:data:`PENALTY_GRID` per term, all combinations)
    with the smallest cross-validation cost, statsmodels' default: the mean over folds of
    :math:`\lVert y_{\text{test}} - \hat y_{\text{test}}\rVert / n_{\text{test}}`, the fit on
    the other folds. Fold fits use :math:`X_{-f}^\top X_{-f} = X^\top X - X_f^\top X_f` (and the
    same for :math:`X^\top Y` and the test sums of squares), so every ROI, penalty and fold
    is one batched solve; the first smallest cost wins ties (statsmodels' ``argmin``).

    Parameters
    ----------
    design : ndarray of shape (n, p)
        The shared design matrix, the penalized columns last.
    Y : ndarray of shape (n, n_rois)
        Responses, one column per ROI.
    penalties : list of ndarray of shape (k_t, k_t)
        Penalty matrix :math:`S_t` of each smooth term, over the last columns of ``design``
        in order.
    constant : ndarray of shape (p,)
        Coefficients whose fit is the constant 1 (ComBat: ones on the site indicators),
        used to centre ``Y`` for accuracy (the fit is equivariant).
    folds : ndarray of shape (n,)
        Fold index (0..K-1) of each row.

    Returns
    -------
    coef : ndarray of shape (p, n_rois)
        :math:`\hat\beta` of every ROI at its chosen penalty.
    penalty : ndarray of shape (n_rois, n_terms)
        The chosen :math:`\lambda` of every ROI.
    """
    n, p = design.shape
    center, scale = Y.mean(axis=0), Y.std(axis=0)
    scale[scale == 0] = 1
    Z = (Y - center) / scale
    sizes = np.bincount(folds, minlength=K_FOLDS)
    # per-fold sufficient statistics: X_f'X_f, X_f'Z_f, Z_f'Z_f (diagonal)
    gram_f = np.stack([design[folds == k].T @ design[folds == k] for k in range(K_FOLDS)])
    cross_f = np.stack([design[folds == k].T @ Z[folds == k] for k in range(K_FOLDS)])
    sq_f = np.stack([np.square(Z[folds == k]).sum(axis=0) for k in range(K_FOLDS)])
    gram, cross = gram_f.sum(axis=0), cross_f.sum(axis=0)
    grid = np.array(list(itertools.product(PENALTY_GRID, repeat=len(penalties))))
    cost = np.empty((len(grid), Z.shape[1]))
    for i, weights in enumerate(grid):
        beta = _solve(gram - gram_f + _penalty(weights, penalties, p), cross - cross_f)  # [fold, p, ROI]
        sse = sq_f - 2 * np.einsum("fpr,fpr->fr", beta, cross_f) + np.einsum("fpr,fpq,fqr->fr", beta, gram_f, beta)
        cost[i] = (np.sqrt(np.maximum(sse, 0)) / sizes[:, None]).mean(axis=0)
    best = np.argmin(cost, axis=0)
    coef = np.empty((p, Z.shape[1]))
    for i in np.unique(best):
        coef[:, best == i] = _solve(gram + _penalty(grid[i], penalties, p), cross[:, best == i])
    return coef * scale + np.outer(constant, center), grid[best]


def _penalty(weights, penalties: list[np.ndarray], p: int) -> np.ndarray:
    r""":math:`2\sum_t\lambda_t S_t`, placed on the last columns of a ``p``-column design."""
    out = np.zeros((p, p))
    start = p - sum(len(s) for s in penalties)
    for weight, s in zip(weights, penalties):
        out[start:start + len(s), start:start + len(s)] = 2 * weight * s
        start += len(s)
    return out


def site_estimates(s: np.ndarray, eb: bool = True) -> tuple[np.ndarray, np.ndarray]:
    r"""ComBat's location and scale of one site, for every ROI, from its standardized data.

    With :math:`\hat\gamma_g, \hat\delta_g` the mean and variance (ddof 1) of ROI :math:`g`
    over the site's :math:`n` subjects, the parametric empirical-Bayes priors (across ROIs)
    are :math:`\gamma_g\sim N(\bar\gamma, \tau^2)` and :math:`\delta_g\sim\text{InvGamma}(a, b)`
    with :math:`\bar\gamma, \tau^2` the mean and variance of the :math:`\hat\gamma_g` and
    :math:`a = (2v + m^2)/v`, :math:`b = (mv + m^3)/v` from the mean :math:`m` and variance
    :math:`v` of the :math:`\hat\delta_g` (method of moments). The posterior estimates solve

    .. math:: \gamma^*_g = \frac{n\tau^2\hat\gamma_g + \delta^*_g\bar\gamma}{n\tau^2 + \delta^*_g},
              \qquad \delta^*_g = \frac{b + \tfrac12\sum_i (s_{ig} - \gamma^*_g)^2}{n/2 + a - 1},

    iterated from :math:`(\hat\gamma, \hat\delta)` until no estimate changes by more than
    1e-4 relative (neuroCombat's ``it_sol``, with the relative change taken in absolute value).

    Parameters
    ----------
    s : ndarray of shape (n, n_rois)
        The site's standardized data (n ≥ 2).
    eb : bool, default=True
        False: the plain estimates :math:`(\hat\gamma, \hat\delta)` (needed with a single ROI,
        where the priors across ROIs do not exist).

    Returns
    -------
    gamma_star, delta_star : ndarray of shape (n_rois,)
    """
    n = len(s)
    gamma_hat, delta_hat = s.mean(axis=0), s.var(axis=0, ddof=1)
    if not eb:
        return gamma_hat, delta_hat
    gamma_bar, tau2 = gamma_hat.mean(), gamma_hat.var(ddof=1)
    m, v = delta_hat.mean(), delta_hat.var(ddof=1)
    a, b = (2 * v + m**2) / v, (m * v + m**3) / v
    gamma, delta = gamma_hat, delta_hat
    for _ in range(_EB_MAX_ITER):
        new_gamma = (n * tau2 * gamma_hat + delta * gamma_bar) / (n * tau2 + delta)
        new_delta = (b + 0.5 * np.square(s - new_gamma).sum(axis=0)) / (n / 2 + a - 1)
        change = max(np.max(np.abs(new_gamma - gamma) / np.abs(gamma)), np.max(np.abs(new_delta - delta) / delta))
        gamma, delta = new_gamma, new_delta
        if not change > _EB_TOLERANCE:
            break
    return gamma, delta
