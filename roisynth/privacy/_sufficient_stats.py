r"""Private sufficient statistics: the Gaussian releases a private pipeline's preprocessing learns from.

A linear model's least-squares fit needs only the moments :math:`X^\top X` and
:math:`X^\top U` of its design :math:`X` and responses :math:`U`; a Gaussian's parameters need
only the counts, sums and sums of products of its variables. Each is a sum over subjects
:math:`S = \sum_i f(r_i)`, so adding or removing one subject moves it by :math:`f(r)` alone,
and bounding every row bounds the move (the L2 sensitivity :math:`\Delta = \sup_r \lVert
f(r)\rVert_2`). :class:`GaussianReleases` adds :math:`N(0, \sigma^2\Delta^2)` to every entry
(the Gaussian mechanism, Rényi DP :math:`\alpha / (2\sigma^2)`; a symmetric matrix gets the
noise on its upper triangle, mirrored) and counts what it released, so that the pipeline can
hand the noise multipliers to the synthesizer's accountant
(:attr:`DifferentialPrivacy.composed_with <roisynth.privacy.DifferentialPrivacy.composed_with>`).

The rows are bounded before anything is summed, with ranges known without the data:

- a covariate :math:`c_k` is clipped to its public range :math:`[l_k, h_k]`
  (:func:`covariate_ranges`) and mapped to :math:`\tilde c_k = (c_k - m_k)/w_k \in [-1, 1]`
  (:math:`m_k, w_k` the range's midpoint and half-width); the design row
  :math:`x = (1, \tilde c_1, \dots, \tilde c_k)` has :math:`\lVert x\rVert_2^2 \le 1 + k`;
- the ROI values are put in the public standardization of
  :meth:`DifferentialPrivacy.standardization <roisynth.privacy.DifferentialPrivacy.standardization>`
  and the row :math:`u` of the p ROIs is clipped to norm :math:`R = 1.5\sqrt p`, as
  :func:`~roisynth.privacy._mechanisms.private_mean` does.

Several groups of subjects (sites, cohorts, covariate cells) released at once are one
mechanism: each subject belongs to one group, so one subject moves one group's statistic
(parallel composition), and :math:`\Delta` is the same as for a single group. The group
labels themselves (site names, sex codes, the two cohorts) are treated as public, like the
column names; their sizes are not (they are the released counts :math:`(X^\top X)_{00}`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..utils.covariates import covariate_matrix

#: Clipping norm of a row of p standardized ROI values, over √p: R = 1.5√p, here and in
#: :func:`~roisynth.privacy._mechanisms.private_mean`.
ROW_NORM = 1.5
#: Standard deviations of the shipped log-ICV norms each side of their means in the default public ICV range.
ICV_SDS = 3.5


def covariate_ranges(columns: Sequence[str], bounds=None) -> np.ndarray:
    """Public (low, high) range of each covariate, for clipping before a private release.

    ``bounds`` (``DifferentialPrivacy.covariate_bounds``) comes first; otherwise ``age`` is
    0-120 years, ``sex`` is 0-1 (as :func:`~roisynth.utils.covariates.covariate_matrix` codes
    F/M) and ``icv`` spans the shipped log-normal ICV norms of both sexes ± 3.5 SD (about
    0.96-1.98 million mm³, ``simulator_params.npz``, from published norms, no user's data).
    Column names are matched case-insensitively for the defaults.

    Parameters
    ----------
    columns : sequence of str
        Covariate columns.
    bounds : mapping of str to (float, float) or None, default=None
        Ranges given by the user.

    Returns
    -------
    ndarray of shape (len(columns), 2)

    Raises
    ------
    ValueError
        Naming the columns without a public range.

    Examples
    --------
    >>> from roisynth.privacy._sufficient_stats import covariate_ranges
    >>> covariate_ranges(["age", "sex"], {"age": (55, 90)}).tolist()
    [[55.0, 90.0], [0.0, 1.0]]
    """
    from ..datasets.simulator import _params

    params = _params()
    low = np.exp(params["icv_log_mean"] - ICV_SDS * params["icv_log_sd"]).min()
    high = np.exp(params["icv_log_mean"] + ICV_SDS * params["icv_log_sd"]).max()
    defaults = {"age": (0.0, 120.0), "sex": (0.0, 1.0), "icv": (float(low), float(high))}
    bounds = dict(bounds or {})
    missing = [c for c in columns if c not in bounds and str(c).lower() not in defaults]
    if missing:
        raise ValueError(f"covariate(s) {missing} have no public range: a private pipeline clips every covariate "
                         "to a range known without the data; pass DifferentialPrivacy(covariate_bounds={column: "
                         "(low, high)}) (a study's inclusion criteria, published norms)")
    return np.array([bounds[c] if c in bounds else defaults[str(c).lower()] for c in columns], dtype=np.float64)


def _psd_inverse(gram: np.ndarray, floor: float) -> np.ndarray:
    """Inverse of a noisy symmetric matrix with its eigenvalues raised to at least ``floor``."""
    values, vectors = np.linalg.eigh((gram + gram.T) / 2)
    return (vectors / np.maximum(values, floor)) @ vectors.T


def shrink(estimates: np.ndarray, noise_sd: np.ndarray) -> np.ndarray:
    r"""Shrink each row of noisy estimates towards its mean across the columns (ROIs), knowing the noise.

    Row :math:`r` holds :math:`\hat b_{rg} = b_{rg} + e_{rg}` with :math:`e_{rg}\sim N(0, v_r)`
    released noise of known variance :math:`v_r` = ``noise_sd[r]²``. With the prior
    :math:`b_{rg}\sim N(\bar b_r, \tau_r^2)` across ROIs, :math:`\bar b_r` and
    :math:`\tau_r^2 = \max(\operatorname{var}_g\hat b_{rg} - v_r, 0)` by the method of moments
    (ComBat's empirical Bayes, with the noise variance known), the posterior mean is

    .. math:: \bar b_r + \frac{\tau_r^2}{\tau_r^2 + v_r}(\hat b_{rg} - \bar b_r).

    A function of released values only (post-processing: no privacy spent).

    Parameters
    ----------
    estimates : ndarray of shape (n_rows, n_rois)
    noise_sd : ndarray of shape (n_rows,)

    Returns
    -------
    ndarray of shape (n_rows, n_rois)
    """
    if estimates.shape[1] < 2:
        return estimates
    mean = estimates.mean(axis=1, keepdims=True)
    noise_var = np.square(noise_sd)[:, None]
    tau2 = np.maximum(estimates.var(axis=1, ddof=1, keepdims=True) - noise_var, 0.0)
    weight = np.divide(tau2, tau2 + noise_var, out=np.ones_like(tau2), where=tau2 + noise_var > 0)
    return mean + weight * (estimates - mean)


class GaussianReleases:
    r"""The Gaussian mechanism for a private pipeline's sufficient statistics, with a tally.

    Every :meth:`release` adds :math:`N(0, \sigma^2\Delta^2)` to each entry of a statistic of
    L2 sensitivity :math:`\Delta` (see the module docstring) and appends σ to
    :attr:`released`, the noise multipliers the accountant composes.

    Parameters
    ----------
    noise_multiplier : float
        σ of every release.
    privacy : DifferentialPrivacy
        The budget: its public ROI ranges (``bounds``) and covariate ranges
        (``covariate_bounds``).
    seed : int
        Seed of the noise (NumPy's ``default_rng``).

    Attributes
    ----------
    released : list of float
        σ of each release so far.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.privacy import DifferentialPrivacy
    >>> from roisynth.privacy._sufficient_stats import GaussianReleases
    >>> releases = GaussianReleases(2.0, DifferentialPrivacy(epsilon=1.0), seed=0)
    >>> counts = releases.release(np.array([120.0, 80.0]), sensitivity=1.0)
    >>> releases.released
    [2.0]
    """

    def __init__(self, noise_multiplier: float, privacy, seed: int):
        self.noise_multiplier = float(noise_multiplier)
        self.privacy = privacy
        self.released: list[float] = []
        self._rng = np.random.default_rng(seed)

    def release(self, statistic: np.ndarray, sensitivity: float, symmetric: bool = False) -> np.ndarray:
        """``statistic`` + N(0, (σ·``sensitivity``)²) per entry; ``symmetric``: the noise of the last
        two axes is mirrored from their upper triangle."""
        noise = self._rng.standard_normal(statistic.shape) * (self.noise_multiplier * sensitivity)
        if symmetric:
            noise = np.triu(noise) + np.swapaxes(np.triu(noise, 1), -1, -2)
        self.released.append(self.noise_multiplier)
        return statistic + noise

    def design(self, table, columns: Sequence[str], name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        r"""Rows :math:`x = (1, \tilde c)` of the covariates clipped to their public ranges.

        Returns
        -------
        x : ndarray of shape (n, 1 + k)
        middle, half : ndarray of shape (k,)
            :math:`m_k` and :math:`w_k`, so that :math:`c = m + w\tilde c`.
        """
        ranges = covariate_ranges(columns, self.privacy.covariate_bounds)
        middle, half = ranges.mean(axis=1), (ranges[:, 1] - ranges[:, 0]) / 2
        values = np.clip(covariate_matrix(table, list(columns), name), ranges[:, 0], ranges[:, 1])
        return np.column_stack([np.ones(len(values)), (values - middle) / half]), middle, half

    def roi_rows(self, values: np.ndarray, rois: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """ROI values in the public standardization, each row clipped to norm R = 1.5√p.

        Returns
        -------
        u : ndarray of shape (n, p)
        center, scale : ndarray of shape (p,)
            ``values ≈ center + scale * u`` (equal for rows within the norm).
        """
        center, scale = self.privacy.standardization(list(rois))
        u = (values - center) / scale
        norms = np.linalg.norm(u, axis=1, keepdims=True)
        bound = ROW_NORM * math.sqrt(u.shape[1])
        return u * np.minimum(1.0, bound / np.maximum(norms, 1e-12)), center, scale

    def moments(self, x: np.ndarray, u: np.ndarray, groups: np.ndarray, n_groups: int):
        r"""Noisy :math:`\sum_{i\in j} x_i x_i^\top` and :math:`\sum_{i\in j} x_i u_i^\top` of every group j.

        Two releases. One subject moves one group's Gram matrix by :math:`x x^\top`, of
        Frobenius norm :math:`\lVert x\rVert^2 \le 1 + k`, and its cross-products by
        :math:`x u^\top`, of norm :math:`\lVert x\rVert\,\lVert u\rVert \le \sqrt{1 + k}\,R`:
        those are the sensitivities.

        Returns
        -------
        gram : ndarray of shape (n_groups, 1 + k, 1 + k)
        cross : ndarray of shape (n_groups, 1 + k, p)
        gram_sd, cross_sd : float
            The noise standard deviation of their entries.
        """
        m, p = x.shape[1], u.shape[1]
        onehot = np.eye(n_groups)[groups]
        gram = np.einsum("ig,ia,ib->gab", onehot, x, x)
        cross = np.einsum("ig,ia,ir->gar", onehot, x, u)
        gram_sensitivity, cross_sensitivity = float(m), math.sqrt(m) * ROW_NORM * math.sqrt(p)
        gram = self.release(gram, gram_sensitivity, symmetric=True)
        cross = self.release(cross, cross_sensitivity)
        return gram, cross, self.noise_multiplier * gram_sensitivity, self.noise_multiplier * cross_sensitivity


def solve_moments(gram: np.ndarray, cross: np.ndarray, gram_sd: float, cross_sd):
    r"""Least squares from noisy moments: :math:`\hat\beta = \tilde G^{-1}\tilde C`, and the noise SD of each row.

    :math:`\tilde G` is made positive definite by raising its eigenvalues to at least
    :math:`\sqrt m` times ``gram_sd`` (about the spectral norm of the noise of an m × m
    symmetric matrix: a ridge where the data say less than the noise). With row :math:`b` of
    :math:`\tilde C` carrying noise of SD :math:`s_b` (``cross_sd``), row :math:`a` of
    :math:`\hat\beta` carries noise of SD :math:`\sqrt{\sum_b (\tilde G^{-1})_{ab}^2 s_b^2}`
    (the noise of :math:`\tilde G` left out).

    Parameters
    ----------
    gram : ndarray of shape (m, m)
    cross : ndarray of shape (m, p)
    gram_sd : float
        Noise SD of the entries of ``gram``.
    cross_sd : float or ndarray of shape (m,)
        Noise SD of the entries of ``cross`` (per row).

    Returns
    -------
    beta : ndarray of shape (m, p)
    beta_sd : ndarray of shape (m,)
    """
    inverse = _psd_inverse(gram, math.sqrt(len(gram)) * gram_sd)
    return inverse @ cross, np.sqrt(np.square(inverse) @ np.broadcast_to(np.square(cross_sd), len(gram)))
