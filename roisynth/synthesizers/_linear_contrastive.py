"""LinearContrastive: probabilistic linear contrastive model, a fast paired baseline (EM, NumPy)."""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from ..base import BaseSynthesizer
from ..utils import persistence
from ..utils._param_validation import Interval, Options, validate_params
from ..utils.validation import check_choice, check_codes, check_random_state, check_sample_size

_NOISE_FLOOR = 1e-6  # smallest noise variance, in background-SD² units
_INIT_FLOOR = 1e-2  # smallest initial variance per loading column (0 is a fixed point of EM)
_LOG_2PI = math.log(2 * math.pi)


def _posterior(L: np.ndarray, psi: np.ndarray):
    r"""Posterior of u in y = L u + ε, u ~ N(0, I_q), ε ~ N(0, diag ψ), in precision form.

    With M = I + LᵀΨ⁻¹L (q × q): Cov[u|y] = M⁻¹, E[u|y] = Gᵀy with G = Ψ⁻¹L M⁻¹, and by the
    matrix determinant lemma log det(LLᵀ + Ψ) = log det M + Σ log ψ. Nothing p × p is
    inverted. Returns (Ψ⁻¹L, G, M⁻¹, log det(LLᵀ + Ψ)).
    """
    PL = L / psi[:, None]
    M = np.eye(L.shape[1]) + L.T @ PL
    cov = np.linalg.inv(M)
    return PL, PL @ cov, cov, np.linalg.slogdet(M)[1] + np.log(psi).sum()


def _expected_statistics(scatter: np.ndarray, n: int, L: np.ndarray, psi: np.ndarray):
    r"""E-step of one cohort from its scatter matrix C = Σ y yᵀ (centred rows).

    Returns Σ y E[u|y]ᵀ = C G, Σ E[uuᵀ|y] = n M⁻¹ + GᵀCG and the log-likelihood
    −½ [n p log 2π + n log det(LLᵀ+Ψ) + tr((LLᵀ+Ψ)⁻¹C)], where by Woodbury
    tr((LLᵀ+Ψ)⁻¹C) = tr(Ψ⁻¹C) − tr((Ψ⁻¹L)ᵀ C G).
    """
    PL, G, cov, logdet = _posterior(L, psi)
    CG = scatter @ G
    quad = (np.diag(scatter) / psi).sum() - (PL * CG).sum()
    return CG, n * cov + G.T @ CG, -0.5 * (n * len(psi) * _LOG_2PI + n * logdet + quad)


def _top_directions(cov: np.ndarray, r: int, shift: float) -> np.ndarray:
    """Top-``r`` eigenvectors of ``cov`` scaled by √max(λ − shift, floor), largest first."""
    eigenvalues, eigenvectors = np.linalg.eigh(cov)
    top = slice(None, -r - 1, -1)
    return eigenvectors[:, top] * np.sqrt(np.maximum(eigenvalues[top] - shift, _INIT_FLOOR))


def _canonical(L: np.ndarray) -> np.ndarray:
    """L V from the SVD L = U D Vᵀ (the same LLᵀ, so the same model under u ~ N(0, I)):
    orthogonal columns by decreasing variance explained, each with its largest |entry| positive."""
    U, d, _ = np.linalg.svd(L, full_matrices=False)
    R = U * d
    return R * np.sign(R[np.abs(R).argmax(0), np.arange(R.shape[1])])


class LinearContrastive(BaseSynthesizer):
    r"""Probabilistic linear contrastive model (Severson, Ghosh & Ng 2019), a fast paired baseline.

    The linear analogue of :class:`~roisynth.ContrastiveVAE` (contrastive PCA of Abid et
    al. 2018 is its zero-noise limit). On data standardized on the background,

    .. math::

        x_b = μ_b + S z + ε, \qquad x_t = μ_t + S z + W t + ε, \qquad
        z \sim N(0, I_k),\ t \sim N(0, I_m),\ ε \sim N(0, Ψ),

    with common loadings S (p × k) shared by both cohorts, salient loadings W (p × m) for
    patients only, and Ψ diagonal (``noise="diagonal"``, factor analysis) or σ²I
    (``noise="isotropic"``, probabilistic PCA). So x_b ~ N(μ_b, SSᵀ + Ψ) and
    x_t ~ N(μ_t, SSᵀ + WWᵀ + Ψ). A synthetic person is one draw of (z, t, ε): healthy
    μ_b + Sz + ε, diseased μ_t + Sz + Wt + ε; the disease effect is the displacement
    (μ_t − μ_b) + Wt.

    Fitting is maximum likelihood: μ_b, μ_t are the cohort means; S, W, Ψ come from EM on
    the centred data, started from the top-k PCA of the background (probabilistic-PCA
    scaling) for S, the top-m eigenvectors of C_t − C_b (contrastive PCA with α = 1) for W,
    and Ψ = σ²I, σ² the mean discarded background eigenvalue. With L = [S W] and background
    rows carrying u = (z, 0), one iteration is

    .. math::

        [S\ W] ← \Big(\sum_i y_i E[u_i]^⊤\Big)\Big(\sum_i E[u_i u_i^⊤]\Big)^{-1}, \qquad
        Ψ ← \max\Big(\mathrm{diag}\Big(\frac1N \sum_i E[(y_i − L u_i)(y_i − L u_i)^⊤]\Big), 10^{-6}\Big)

    (its mean for isotropic noise), the posteriors of z (background) and (z, t) (target)
    taken in precision form from the cohorts' scatter matrices, so an iteration costs
    O(p² (k + m)) after a one-off O(n p²), never O(p³). EM stops when the relative change of
    the log-likelihood is below ``tol``. Finally S and W are rotated to orthogonal columns
    ordered by variance explained, each signed so that its largest loading is positive,
    which leaves the model unchanged and makes latents reproducible. BLAS runs on one
    thread during fitting and sampling: the matrices are small, and threads only add
    overhead (up to 10× slower on a busy 2-core machine).

    Parameters
    ----------
    n_common : int, default=5
        k, the size of z (k + m < number of ROIs).
    n_salient : int, default=5
        m, the size of t (k + m < number of ROIs).
    noise : {"diagonal", "isotropic"}, default="diagonal"
        ``"diagonal"`` (one variance per ROI) or ``"isotropic"`` (one σ² for all).
    max_iter : int, default=1000
        Most EM iterations (a ``ConvergenceWarning`` if reached).
    tol : float, default=1e-9
        Stop when |ℓ_i − ℓ_{i−1}| ≤ tol · |ℓ_{i−1}|, ℓ the total log-likelihood. The
        likelihood is flat along weak salient directions, where EM is slow, so the default
        is tight (on 2000 × 139: ~450 iterations, 0.2 s; WWᵀ within 8 % of the converged
        value, against 39 % at tol = 1e-6 with the same held-out likelihood).
    nonnegative : bool, default=True
        Inputs are volumes, so negative values are rejected; a
        :class:`~roisynth.pipeline.SynthesisPipeline` sets False for its transformed values.
    random_state : int, RandomState instance or None, default=None
        Seed of sampling and of drawn salient codes (fitting is deterministic).

    Attributes
    ----------
    common_loadings_ : DataFrame of shape (n_features_in_, n_common)
        S (ROIs × z1..zk), in background-SD units.
    salient_loadings_ : DataFrame of shape (n_features_in_, n_salient)
        W (ROIs × s1..sm), in background-SD units.
    noise_variance_ : Series of shape (n_features_in_,)
        Diagonal of Ψ in background-SD² units.
    target_shift_ : Series of shape (n_features_in_,)
        μ_t − μ_b in raw units.
    log_likelihood_ : list of float
        Total training log-likelihood (raw units) at the start and after each iteration;
        non-decreasing.
    n_iter_ : int
        EM iterations run.
    converged_ : bool
        Whether ``tol`` was met.
    mean_, scale_ : ndarray of shape (n_features_in_,)
        Mean and SD of every ROI in the background (the standardization).
    feature_names_in_ : ndarray of shape (n_features_in_,)
        The ROI columns.

    Examples
    --------
    >>> from roisynth import datasets
    >>> cohort = datasets.load_example()
    >>> rois = datasets.roi_names()[:6]
    >>> cn, ad = (cohort.loc[cohort.diagnosis == d, rois] for d in ("CN", "AD"))
    >>> from roisynth import LinearContrastive
    >>> model = LinearContrastive(n_common=2, n_salient=2, random_state=0).fit(cn, ad)
    >>> model.salient_loadings_.shape
    (6, 2)
    """

    can_pair = True
    _parameter_constraints = {
        "n_common": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_salient": [Interval(numbers.Integral, 1, None, closed="left")],
        "noise": [Options({"diagonal", "isotropic"})],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "nonnegative": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        n_common: int = 5,
        n_salient: int = 5,
        noise: str = "diagonal",
        max_iter: int = 1000,
        tol: float = 1e-9,
        nonnegative: bool = True,
        random_state=None,
    ):
        self.n_common = n_common
        self.n_salient = n_salient
        self.noise = noise
        self.max_iter = max_iter
        self.tol = tol
        self.nonnegative = nonnegative
        self.random_state = random_state

    # -- fitting -------------------------------------------------------------------------
    def fit(self, background, target=None):
        """Fit on unpaired healthy (``background``) and patient (``target``) tables of ROI
        volumes in raw units with the same columns (DataFrames or arrays).

        Parameters
        ----------
        background : DataFrame or ndarray of shape (n_background, n_rois)
            ROI volumes of healthy subjects in raw units.
        target : DataFrame or ndarray of shape (n_target, n_rois), default=None
            ROI volumes of patients, same columns; required (None raises a ``ValueError``).

        Returns
        -------
        self : LinearContrastive
            The fitted estimator.
        """
        validate_params(self)
        if target is None:
            raise ValueError("LinearContrastive needs both cohorts: fit(background, target)")
        Xb, Xt = self._validate_fit_tables(background, target, nonnegative=self.nonnegative)
        k, m, p = self.n_common, self.n_salient, self.n_features_in_
        if k + m >= p:
            raise ValueError(f"n_common + n_salient = {k + m} must be smaller than the number of ROIs ({p})")
        Zb, Zt = self._standardize(Xb), self._standardize(Xt)
        with threadpool_limits(limits=1, user_api="blas"):
            L, psi, history = self._em(Zb - Zb.mean(0), Zt - Zt.mean(0))
        self._set_fitted(_canonical(L[:, :k]), _canonical(L[:, k:]), psi, (Zt.mean(0) - Zb.mean(0)) * self.scale_)
        self.log_likelihood_ = history
        self.n_iter_ = len(history) - 1
        self.converged_ = self._converged(history)
        if not self.converged_:
            warnings.warn(
                f"LinearContrastive EM did not converge in max_iter={self.max_iter} iterations "
                f"(tol={self.tol}); raise max_iter or tol",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def _converged(self, history: list[float]) -> bool:
        return abs(history[-1] - history[-2]) <= self.tol * abs(history[-2])

    def _em(self, Yb: np.ndarray, Yt: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[float]]:
        """EM on centred standardized cohorts: L = [S W], ψ and the log-likelihood history."""
        k, m, p = self.n_common, self.n_salient, self.n_features_in_
        Cb, Ct = Yb.T @ Yb, Yt.T @ Yt
        nb, nt = len(Yb), len(Yt)
        sigma2 = np.linalg.eigvalsh(Cb / nb)[:-k].mean()
        L = np.hstack([_top_directions(Cb / nb, k, sigma2), _top_directions(Ct / nt - Cb / nb, m, 0.0)])
        psi = np.full(p, max(sigma2, _NOISE_FLOOR))
        total_diag = np.diag(Cb) + np.diag(Ct)
        log_jacobian = (nb + nt) * np.log(self.scale_).sum()

        def e_step(L, psi):
            """Σ y E[u]ᵀ and Σ E[uuᵀ] over both cohorts (background u = (z, 0)), and ℓ."""
            Bb, Ab, llb = _expected_statistics(Cb, nb, L[:, :k], psi)
            B, A, llt = _expected_statistics(Ct, nt, L, psi)
            B[:, :k] += Bb
            A[:k, :k] += Ab
            return B, A, float(llb + llt - log_jacobian)

        B, A, ll = e_step(L, psi)
        history = [ll]
        for _ in range(self.max_iter):
            L = np.linalg.solve(A, B.T).T
            residual = (total_diag - (L * B).sum(1)) / (nb + nt)
            if self.noise == "isotropic":
                residual = np.full(p, residual.mean())
            psi = np.maximum(residual, _NOISE_FLOOR)
            B, A, ll = e_step(L, psi)
            history.append(ll)
            if self._converged(history):
                break
        return L, psi, history

    def _set_fitted(self, S: np.ndarray, W: np.ndarray, psi: np.ndarray, shift: np.ndarray) -> None:
        rois = pd.Index(self.feature_names_in_)
        self.common_loadings_ = pd.DataFrame(S, index=rois, columns=[f"z{i + 1}" for i in range(S.shape[1])])
        self.salient_loadings_ = pd.DataFrame(W, index=rois, columns=[f"s{i + 1}" for i in range(W.shape[1])])
        self.noise_variance_ = pd.Series(psi, index=rois, name="noise_variance")
        self.target_shift_ = pd.Series(shift, index=rois, name="target_shift")

    def _params(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """S, W, ψ and μ_t − μ_b in background-SD units (μ_b = 0 there by construction)."""
        check_is_fitted(self, "salient_loadings_")
        return (self.common_loadings_.to_numpy(), self.salient_loadings_.to_numpy(),
                self.noise_variance_.to_numpy(), self.target_shift_.to_numpy() / self.scale_)

    def _cohort_model(self, cohort: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(L, ψ, mean) with x = mean + L u + ε in ``cohort``: L = S (background) or [S W]."""
        S, W, psi, shift = self._params()
        if cohort == "background":
            return S, psi, np.zeros_like(shift)
        return np.hstack([S, W]), psi, shift

    def _posterior_means(self, Z: np.ndarray, cohort: str) -> np.ndarray:
        """E[z|x] (background) or E[(z, t)|x] (target) of standardized rows ``Z``."""
        L, psi, mean = self._cohort_model(cohort)
        return (Z - mean) @ _posterior(L, psi)[1]

    # -- generation ----------------------------------------------------------------------
    def _generate(self, n: int, random_state, which: tuple[str, ...]) -> list[pd.DataFrame]:
        """Raw-unit tables: healthy = Sz + ε, diseased = healthy + (μ_t − μ_b) + Wt (z, ε, then t drawn)."""
        S, W, psi, shift = self._params()
        n = check_sample_size(n, self.n_features_in_)
        rng = check_random_state(self.random_state if random_state is None else random_state)
        with threadpool_limits(limits=1, user_api="blas"):
            z = rng.standard_normal((n, S.shape[1]))
            healthy = rng.standard_normal((n, len(psi)))
            healthy *= np.sqrt(psi)
            healthy += z @ S.T
            tables = {"background": healthy}
            if "target" in which:
                tables["target"] = healthy + shift + rng.standard_normal((n, W.shape[1])) @ W.T
        return [self._frame(tables[c]) for c in which]

    def sample(self, n: int, cohort: str = "target", random_state=None) -> pd.DataFrame:
        """Draw ``n`` synthetic subjects of one cohort, in raw units.

        With the same seed, the target sample is the diseased half of :meth:`sample_paired`
        and the background sample its healthy half (healthy twins are exact draws of the
        background model, z ~ N(0, I) in both cohorts).

        Parameters
        ----------
        n : int
            Number of synthetic subjects.
        cohort : {"target", "background"}, default="target"
            The cohort to sample.
        random_state : int, RandomState instance or None, default=None
            Seed of this call; None uses the model's own ``random_state`` (so an int there
            gives the same sample on every call, as in scikit-learn's ``GaussianMixture.sample``).

        Returns
        -------
        samples : DataFrame of shape (n, n_features_in_)
            Synthetic ROI volumes with the fitted column names.
        """
        return self._generate(n, random_state, (self._check_cohort(cohort),))[0]

    def sample_paired(self, n: int, random_state=None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``n`` synthetic people, healthy and diseased: row i of both frames is one person,
        healthy = μ_b + Sz + ε and diseased = μ_t + Sz + Wt + ε with the same (z, ε).

        Parameters
        ----------
        n : int
            Number of synthetic people.
        random_state : int, RandomState instance or None, default=None
            Seed of this call; None uses the model's own ``random_state``.

        Returns
        -------
        healthy, diseased : tuple of two DataFrames of shape (n, n_features_in_)
            The two versions of each person, in raw units.
        """
        healthy, diseased = self._generate(n, random_state, ("background", "target"))
        return healthy, diseased

    # -- inference on real subjects -------------------------------------------------------
    def transform(self, X) -> pd.DataFrame:
        """Posterior means E[(z, t) | x] under the target model, for any row: columns
        z1..z{n_common}, s1..s{n_salient}.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_samples, n_features_in_)
            ROI volumes in raw units.

        Returns
        -------
        latents : DataFrame of shape (n_samples, n_common + n_salient)
            The posterior means, the index of ``X``.
        """
        check_is_fitted(self, "salient_loadings_")
        df, values = self._validate_X(X)
        U = self._posterior_means(self._standardize(values), "target")
        columns = list(self.common_loadings_.columns) + list(self.salient_loadings_.columns)
        return pd.DataFrame(U, index=df.index, columns=columns)

    def _salient_for(self, salient, n: int, random_state) -> np.ndarray:
        m = self.n_salient
        if salient is None:
            rng = check_random_state(self.random_state if random_state is None else random_state)
            return rng.standard_normal((n, m))
        return check_codes(salient, n, m)

    def counterfactual(
        self, X, to: str = "background", mode: str = "residual", salient=None, random_state=None
    ) -> pd.DataFrame:
        """Twin of each row of ``X`` in the other cohort, in raw units.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_samples, n_features_in_)
            Real subjects' ROI volumes in raw units.
        to : {"background", "target"}, default="background"
            ``"background"``: healthy twin of patients; with (ẑ, t̂) = E[(z, t) | x] under
            the target model, the displacement (μ_t − μ_b) + W t̂ is removed.
            ``"target"``: diseased twin of healthy people; with ẑ = E[z | x] under the
            background model, (μ_t − μ_b) + W t is added, t = ``salient``.
        mode : {"residual", "decode"}, default="residual"
            ``"residual"`` keeps each person's own residual (x ± displacement);
            ``"decode"`` returns the mean reconstruction μ_b + S ẑ (+ displacement).
        salient : array-like of shape (n_salient,) or (n_samples, n_salient), default=None
            t of the diseased twins, one vector for all rows or one per row; None draws it
            from N(0, I) with ``random_state``.
        random_state : int, RandomState instance or None, default=None
            Seed of the drawn t; None uses the model's own ``random_state``.

        Returns
        -------
        twins : DataFrame of shape (n_samples, n_features_in_)
            The twins in raw units, the index and columns of ``X``.
        """
        check_is_fitted(self, "salient_loadings_")
        check_choice(to, "to", ("background", "target"))
        check_choice(mode, "mode", ("residual", "decode"))
        df, values = self._validate_X(X)
        S, W, _, shift = self._params()
        Z = self._standardize(values)
        k = self.n_common
        if to == "background":
            U = self._posterior_means(Z, "target")
            step = -(shift + U[:, k:] @ W.T)
            decoded = U[:, :k] @ S.T
        else:
            step = shift + self._salient_for(salient, len(df), random_state) @ W.T
            decoded = self._posterior_means(Z, "background") @ S.T + step
        if mode == "decode":
            return self._frame(decoded, index=df.index)
        return pd.DataFrame(values + step * self.scale_, index=df.index, columns=df.columns)

    def severity(self, X) -> pd.Series:
        """Distance to the healthy twin, in background-SD units: mean over ROIs of
        |(μ_t − μ_b) + W t̂|, t̂ = E[t | x] under the target model.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_samples, n_features_in_)
            ROI volumes in raw units.

        Returns
        -------
        severity : Series of shape (n_samples,)
            Named ``"severity"``, the index of ``X``.
        """
        check_is_fitted(self, "salient_loadings_")
        df, values = self._validate_X(X)
        _, W, _, shift = self._params()
        t = self._posterior_means(self._standardize(values), "target")[:, self.n_common:]
        return pd.Series(np.abs(shift + t @ W.T).mean(1), index=df.index, name="severity")

    def score_samples(self, X, cohort: str = "target") -> pd.Series:
        r"""Log-density of each row under ``cohort``'s model, in raw units:
        log N(x̃; μ, LLᵀ + Ψ) − Σ_j log scale_j, x̃ the standardized row, L = S or [S W].

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_samples, n_features_in_)
            ROI volumes in raw units.
        cohort : {"target", "background"}, default="target"
            The cohort whose model scores the rows.

        Returns
        -------
        log_likelihood : Series of shape (n_samples,)
            Named ``"log_likelihood"``, the index of ``X``.
        """
        df, values = self._validate_X(X)
        L, psi, mean = self._cohort_model(self._check_cohort(cohort))
        PL, _, cov, logdet = _posterior(L, psi)
        Y = self._standardize(values) - mean
        P = Y @ PL
        quad = (Y**2 / psi).sum(1) - ((P @ cov) * P).sum(1)
        ll = -0.5 * (len(psi) * _LOG_2PI + logdet + quad) - np.log(self.scale_).sum()
        return pd.Series(ll, index=df.index, name="log_likelihood")

    # -- persistence ---------------------------------------------------------------------
    _FITTED = ("common_loadings_", "salient_loadings_", "noise_variance_", "target_shift_")

    def _get_state(self):
        check_is_fitted(self, "salient_loadings_")
        metadata, tensors = super()._get_state()
        metadata |= {"log_likelihood": self.log_likelihood_, "n_iter": self.n_iter_, "converged": self.converged_}
        tensors |= {name: persistence.to_tensor(getattr(self, name).to_numpy(copy=True)) for name in self._FITTED}
        return metadata, tensors

    def _set_state(self, metadata, tensors):
        super()._set_state(metadata, tensors)
        self._set_fitted(*(tensors[name].numpy() for name in self._FITTED))
        self.log_likelihood_ = list(metadata["log_likelihood"])
        self.n_iter_ = metadata["n_iter"]
        self.converged_ = metadata["converged"]
