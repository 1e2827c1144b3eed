"""GaussianMixtureSynthesizer: one Gaussian mixture per cohort, its size chosen by BIC."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from scipy.linalg import solve_triangular
from scipy.special import logsumexp
from sklearn.mixture import GaussianMixture
from sklearn.utils.validation import check_is_fitted

from ..utils import persistence
from ..utils._param_validation import Interval, Options, validate_params
from ..utils.validation import check_sample_size, seed_from
from ._cohort_densities import CohortDensitySynthesizer

COVARIANCE_TYPES = ("full", "diag", "tied", "spherical")
MIN_COMPONENT_ROWS = 5  # training rows (responsibility mass) below which a component would near-copy real subjects


def _full_covariances(covariances: np.ndarray, covariance_type: str, n_components: int, n_features: int) -> np.ndarray:
    """scikit-learn's covariance parameters of one ``covariance_type`` as (K, d, d) full matrices."""
    if covariance_type == "full":
        return covariances
    if covariance_type == "tied":
        return np.broadcast_to(covariances, (n_components, n_features, n_features))
    if covariance_type == "diag":
        return covariances[:, :, None] * np.eye(n_features)
    return covariances[:, None, None] * np.eye(n_features)  # spherical


class GaussianMixtureSynthesizer(CohortDensitySynthesizer):
    r"""Gaussian mixture per cohort: the classic density baseline.

    Each cohort c is modelled on background-standardized values z = (x − μ) / σ
    (μ, σ: background mean and SD per ROI) by

    .. math:: p_c(z) = \sum_{k=1}^{K_c} \pi_{ck}\, \mathcal N(z;\, m_{ck}, \Sigma_{ck}),

    fitted by EM (scikit-learn :class:`~sklearn.mixture.GaussianMixture`). With
    ``n_components="bic"``, K_c = argmin_K BIC(K) = −2 log L̂_K + p_K log n_c over
    K = 1..``max_components`` (p_K: free parameters). Sampling draws k ~ Categorical(π_c),
    z = m_ck + L_ck ε with ε ~ N(0, I) and L_ck L_ckᵀ = Σ_ck, and returns x = μ + σ ⊙ z.
    The two cohorts are independent: nothing pairs a synthetic control with a patient.

    No component may rest on fewer than 5 training rows (n_c π_ck < 5): EM gives a component
    that holds one row a mean equal to that row, which the model file would then store. With
    ``"bic"`` such mixture sizes are not chosen (their BIC is still reported); a fixed
    ``n_components`` that leads to one is a ``ValueError``.

    Parameters
    ----------
    n_components : "bic" or int, default="bic"
        ``"bic"`` (choose K per cohort by lowest BIC) or a positive int (fixed K).
    max_components : int, default=10
        Largest K tried with ``"bic"`` (capped at the cohort's number of rows).
    covariance_type : {"full", "diag", "tied", "spherical"}, default="full"
        ``"full"`` (Σ_k dense), ``"diag"`` (per-ROI variances), ``"tied"`` (one dense Σ
        shared by all components) or ``"spherical"`` (Σ_k = s_k I).
    reg_covar : float, default=1e-6
        Added to covariance diagonals (standardized units) for stability.
    n_init : int, default=1
        EM restarts per fit.
    max_iter : int, default=200
        EM iterations per fit.
    nonnegative : bool, default=True
        Inputs are volumes, so negative values are rejected; a
        :class:`~roisynth.pipeline.SynthesisPipeline` sets False for its transformed values.
    random_state : int, RandomState instance or None, default=None
        Seeds EM initialisation and, when ``sample`` gets no ``random_state``, sampling.

    Attributes
    ----------
    weights_ : dict of str to ndarray of shape (K,)
        Cohort → mixture weights π.
    means_ : dict of str to ndarray of shape (K, n_features_in_)
        Cohort → component means m, in standardized units.
    covariances_ : dict of str to ndarray
        Cohort → covariance parameters in scikit-learn's shape for ``covariance_type``, in
        standardized units.
    n_components_ : dict of str to int
        Cohort → K.
    bic_ : DataFrame
        BIC, rows K, columns cohorts.
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
    >>> from roisynth import GaussianMixtureSynthesizer
    >>> model = GaussianMixtureSynthesizer(max_components=3, random_state=0).fit(cn, ad)
    >>> model.sample(5, cohort="target").shape, model.can_pair
    ((5, 6), False)
    """

    _parameter_constraints = {
        "n_components": [Options({"bic"}), Interval(numbers.Integral, 1, None, closed="left")],
        "max_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "covariance_type": [Options(COVARIANCE_TYPES)],
        "reg_covar": [Interval(numbers.Real, 0, None, closed="left")],
        "n_init": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "nonnegative": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        n_components="bic",
        max_components: int = 10,
        covariance_type: str = "full",
        reg_covar: float = 1e-6,
        n_init: int = 1,
        max_iter: int = 200,
        nonnegative: bool = True,
        random_state=None,
    ):
        self.n_components = n_components
        self.max_components = max_components
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.n_init = n_init
        self.max_iter = max_iter
        self.nonnegative = nonnegative
        self.random_state = random_state

    def fit(self, background, target=None):
        """Fit one mixture per cohort on ROI tables in raw units (``target`` optional).

        Parameters
        ----------
        background : DataFrame or ndarray of shape (n_background, n_rois)
            ROI volumes of healthy subjects in raw units.
        target : DataFrame or ndarray of shape (n_target, n_rois), default=None
            ROI volumes of patients, same columns; None fits the background only.

        Returns
        -------
        self : GaussianMixtureSynthesizer
            The fitted estimator.
        """
        validate_params(self)
        cohorts = self._standardized_cohorts(background, target)
        seed = seed_from(self.random_state)
        sizes = range(1, self.max_components + 1) if self.n_components == "bic" else [self.n_components]
        self.weights_, self.means_, self.covariances_, bic = {}, {}, {}, {}
        for cohort, Z in cohorts.items():
            if sizes[0] > len(Z):
                raise ValueError(f"n_components={sizes[0]} exceeds the {len(Z)} rows of the {cohort} cohort")
            bic[cohort], best, smallest = {}, None, {}
            for k in sizes[: len(Z)]:  # at most one component per row
                gmm = GaussianMixture(
                    k,
                    covariance_type=self.covariance_type,
                    reg_covar=self.reg_covar,
                    n_init=self.n_init,
                    max_iter=self.max_iter,
                    random_state=seed,
                ).fit(Z)
                bic[cohort][k], smallest[k] = gmm.bic(Z), gmm.weights_.min() * len(Z)
                eligible = smallest[k] >= MIN_COMPONENT_ROWS
                if eligible and (best is None or bic[cohort][k] < bic[cohort][best.n_components]):
                    best = gmm
            if best is None:
                tried = ", ".join(f"{rows:.1f} with n_components={k}" for k, rows in smallest.items())
                raise ValueError(
                    f"the {cohort} cohort ({len(Z)} rows) leaves a mixture component with fewer than "
                    f"{MIN_COMPONENT_ROWS} training rows ({tried}): its mean would be a near copy of real subjects; "
                    "lower n_components or add subjects"
                )
            self.weights_[cohort] = best.weights_
            self.means_[cohort] = best.means_
            self.covariances_[cohort] = best.covariances_
        self.bic_ = pd.DataFrame(bic).rename_axis("n_components")
        self.n_components_ = {cohort: len(w) for cohort, w in self.weights_.items()}
        return self

    def _factors(self, cohort: str) -> np.ndarray:
        """Cholesky factors L_k (K, d, d) of the cohort's component covariances."""
        covariances = _full_covariances(self.covariances_[cohort], self.covariance_type, *self.means_[cohort].shape)
        return np.linalg.cholesky(covariances)

    def sample(self, n: int, cohort: str = "target", random_state=None) -> pd.DataFrame:
        """Draw ``n`` synthetic subjects of one cohort, in raw units.

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
        cohort = self._check_cohort(cohort)
        n = check_sample_size(n, self.n_features_in_)
        check_is_fitted(self, "weights_")
        rng = self._rng(random_state)
        weights, means, factors = self.weights_[cohort], self.means_[cohort], self._factors(cohort)
        component = rng.choice(len(weights), size=n, p=weights)
        z = rng.standard_normal((n, self.n_features_in_))
        for k in range(len(weights)):
            rows = component == k
            z[rows] = means[k] + z[rows] @ factors[k].T
        return self._frame(z)

    def score_samples(self, X, cohort: str = "target") -> pd.Series:
        r"""Log density of each row of ``X`` (raw units) under the cohort's mixture.

        log p(x) = log p_c(z) − Σ_j log σ_j with z = (x − μ) / σ (change of variables), and
        log N(z; m, LLᵀ) = −½‖L⁻¹(z − m)‖² − Σ_j log L_jj − (d/2) log 2π.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_samples, n_features_in_)
            ROI volumes in raw units.
        cohort : {"target", "background"}, default="target"
            The cohort whose mixture scores the rows.

        Returns
        -------
        log_density : Series of shape (n_samples,)
            log p(x) of every row, named ``"log_density"``, the index of ``X``.
        """
        cohort = self._check_cohort(cohort)
        check_is_fitted(self, "weights_")
        df, values = self._validate_X(X)
        z = self._standardize(values)
        weights, means, factors = self.weights_[cohort], self.means_[cohort], self._factors(cohort)
        log_terms = np.empty((len(z), len(weights)))
        for k, (w, m, L) in enumerate(zip(weights, means, factors)):
            y = solve_triangular(L, (z - m).T, lower=True)
            log_terms[:, k] = np.log(w) - 0.5 * (y**2).sum(0) - np.log(np.diag(L)).sum()
        log_density = logsumexp(log_terms, axis=1) - 0.5 * z.shape[1] * np.log(2 * np.pi) - np.log(self.scale_).sum()
        return pd.Series(log_density, index=df.index, name="log_density")

    # -- persistence ---------------------------------------------------------------------
    def _get_state(self):
        check_is_fitted(self, "weights_")
        metadata, tensors = super()._get_state()
        metadata["bic"] = self.bic_.reset_index().to_dict(orient="list")
        for cohort in self.cohorts_:
            for name in ("weights_", "means_", "covariances_"):
                tensors[f"{cohort}.{name}"] = persistence.to_tensor(getattr(self, name)[cohort])
        return metadata, tensors

    def _set_state(self, metadata, tensors):
        super()._set_state(metadata, tensors)
        for name in ("weights_", "means_", "covariances_"):
            setattr(self, name, {cohort: tensors[f"{cohort}.{name}"].numpy() for cohort in self.cohorts_})
        self.bic_ = pd.DataFrame(metadata["bic"]).set_index("n_components")
        self.n_components_ = {cohort: len(w) for cohort, w in self.weights_.items()}

    def _check_state(self) -> None:
        """The base invariants, and per cohort: weights ≥ 0 summing to 1, means (K, d), and
        positive-definite covariances (their Cholesky factors exist)."""
        super()._check_state()
        p = self.n_features_in_
        for cohort in self.cohorts_:
            weights, means = self.weights_[cohort], self.means_[cohort]
            if weights.ndim != 1 or (weights < 0).any() or not np.isclose(weights.sum(), 1.0):
                raise ValueError(f"{cohort}.weights_ must be non-negative and sum to 1")
            if means.shape != (len(weights), p):
                raise ValueError(f"{cohort}.means_ has shape {means.shape}, expected ({len(weights)}, {p})")
            try:
                self._factors(cohort)
            except (np.linalg.LinAlgError, ValueError) as exc:
                raise ValueError(f"{cohort}.covariances_ are not valid positive-definite covariances ({exc})") from exc
