r"""Covariate correction of ROI volumes (age, sex, ICV), fitted on healthy subjects and invertible.

Per ROI j an OLS model (statsmodels) is fitted on the reference cohort,
:math:`x_j = b_{0j} + \sum_k b_{kj} c_k + e_j`. With :math:`\bar c` the reference
covariate means,

.. math:: \tilde x_j = x_j - \sum_k b_{kj}(c_k - \bar c_k)
          \qquad\text{(transform: the volume of the same person at average covariates)}

.. math:: x_j = \tilde x_j + \sum_k b_{kj}(c_k - \bar c_k)
          \qquad\text{(inverse\_transform, for any covariate table)}

so adjusted values keep the intercept (a 10 % loss stays a 10 % loss) and the effects of
the covariates can be added back for synthetic subjects with any covariates.

Private fit
-----------
A :class:`~roisynth.SynthesisPipeline` whose synthesizer has ``privacy=`` fits this step from
released sufficient statistics instead (:func:`fit_private`): the moments
:math:`\tilde G = X^\top X + N` and :math:`\tilde C = X^\top U + N` of the design
:math:`x = (1, \tilde c)` (covariates clipped to public ranges, scaled to [-1, 1]) and the
ROIs in their public standardization (rows clipped to norm :math:`R = 1.5\sqrt p`), two
Gaussian releases of L2 sensitivity :math:`1 + k` and :math:`\sqrt{1 + k}\,R` (one subject
added or removed; see :mod:`roisynth.privacy._sufficient_stats`). Then
:math:`\hat\beta = \tilde G^{-1}\tilde C` (eigenvalues of :math:`\tilde G` floored at the
noise level), each covariate's slopes shrunk across ROIs towards their mean by the
empirical-Bayes weight the known noise variance gives
(:func:`~roisynth.privacy._sufficient_stats.shrink`), and :math:`\bar c` is the released
sums over the released count. Everything after the releases is post-processing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..base import Persistent
from ..datasets import roi_columns
from ..utils._param_validation import Options, validate_params
from ..utils.covariates import covariate_matrix
from ..utils.frames import replace_columns
from ..utils.persistence import names_from_json, names_to_json, to_tensor
from ..utils.validation import check_numeric_table


def find_rois(table: pd.DataFrame, rois, include_ventricles: bool = True) -> list[str]:
    """``rois`` if given (checked), else the MUSE ROI columns present in ``table``."""
    if rois is not None:
        missing = [r for r in rois if r not in table.columns]
        if missing:
            raise ValueError(f"ROI columns {missing[:5]} are not in the table")
        return list(rois)
    return roi_columns(table, include_ventricles)


class CovariateResidualizer(Persistent, TransformerMixin, BaseEstimator):
    """Remove (and add back) linear covariate effects on ROI volumes.

    Parameters
    ----------
    covariates : sequence of str, default=("age", "sex", "icv")
        Covariate columns; text columns are read as sex (F/M).
    rois : list of str, default=None
        ROI columns; None: the MUSE ROI columns of the table passed to ``fit``.
    fit_on : {"background", "all"}, default="background"
        Which cohort a :class:`~roisynth.pipeline.SynthesisPipeline` fits this step on:
        ``"background"`` (healthy subjects, as in the seed paper, so that disease effects
        are not regressed away) or ``"all"``. ``fit`` itself uses the table it gets.

    Attributes
    ----------
    coef_ : ndarray of shape (n_covariates, n_rois)
        Effect of each covariate on each ROI (ordinary least squares).
    intercept_ : ndarray of shape (n_rois,)
        ROI values at the mean covariates.
    covariate_mean_ : ndarray of shape (n_covariates,)
        Mean of the covariates in the fitting table (they are centred on it).
    coef_noise_sd_ : ndarray of shape (n_covariates, n_rois) or None
        After a private fit (module docstring), the SD of the noise each coefficient got from
        the releases, before shrinkage (raw units); None after an ordinary fit.
    feature_names_in_ : ndarray of shape (n_rois,)
        The ROI columns.

    Examples
    --------
    >>> from roisynth import CovariateResidualizer, datasets
    >>> cohort = datasets.load_example()
    >>> rois = datasets.roi_names()[:4]
    >>> residualizer = CovariateResidualizer(rois=rois).fit(cohort)
    >>> residualizer.coef_.shape
    (3, 4)
    """

    _parameter_constraints = {
        "covariates": ["array-like"],
        "rois": ["array-like", None],
        "fit_on": [Options({"background", "all"})],
    }

    def __init__(self, *, covariates=("age", "sex", "icv"), rois=None, fit_on="background"):
        self.covariates = covariates
        self.rois = rois
        self.fit_on = fit_on

    def fit(self, X: pd.DataFrame, y=None):
        """Estimate the linear covariate effects on every ROI by least squares.

        Parameters
        ----------
        X : DataFrame
            Subjects with the covariate and ROI columns.
        y : None
            Ignored (scikit-learn convention).

        Returns
        -------
        self : CovariateResidualizer
            The fitted transformer.
        """
        validate_params(self)
        if not isinstance(X, pd.DataFrame):
            raise TypeError("CovariateResidualizer.fit needs a DataFrame with covariate and ROI columns")
        rois = find_rois(X, self.rois)
        values = check_numeric_table(X[rois], "ROI table", nonnegative=False)
        design = covariate_matrix(X, list(self.covariates), "covariate table")
        if design.shape[1] and (design.std(0) == 0).any():
            flat = [c for c, sd in zip(self.covariates, design.std(0)) if sd == 0]
            raise ValueError(f"covariate(s) {flat} are constant in the fitting table: their effect cannot be estimated")
        self.covariate_mean_ = design.mean(0)
        fit = sm.OLS(values, sm.add_constant(design - self.covariate_mean_, has_constant="add")).fit()
        self.coef_ = np.asarray(fit.params)[1:].reshape(len(self.covariates), len(rois))  # covariates x ROIs
        self.intercept_ = np.asarray(fit.params)[0]
        self.coef_noise_sd_ = None
        self.feature_names_in_ = np.asarray(rois, dtype=object)
        return self

    #: Gaussian releases of :meth:`_fit_private` (the moments X'X and X'U).
    _private_releases = 2

    def _fit_private(self, X: pd.DataFrame, releases) -> CovariateResidualizer:
        """``fit`` from released sufficient statistics (module docstring, :func:`fit_private`)."""
        if not isinstance(X, pd.DataFrame):
            raise TypeError("CovariateResidualizer.fit needs a DataFrame with covariate and ROI columns")
        return fit_private([self], X, np.zeros(len(X), dtype=np.intp), releases)[0]

    def _effects(self, X: pd.DataFrame, name: str) -> tuple[list[str], np.ndarray]:
        check_is_fitted(self, "coef_")
        rois = list(self.feature_names_in_)
        missing = [r for r in rois if r not in X.columns]
        if missing:
            raise ValueError(f"{name} lacks the ROI columns {missing[:5]}")
        centred = covariate_matrix(X, list(self.covariates), name) - self.covariate_mean_
        return rois, centred @ self.coef_

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """Covariate-adjusted ROI values (other columns unchanged).

        Parameters
        ----------
        X : DataFrame
            Subjects with the covariate and ROI columns.

        Returns
        -------
        residuals : DataFrame
            A copy of ``X`` with the covariate effects removed from the ROI columns.
        """
        rois, effects = self._effects(X, "X")
        values = check_numeric_table(X[rois], "X", min_rows=1, nonnegative=False)
        return replace_columns(X, rois, values - effects)

    def inverse_transform(self, X: pd.DataFrame, covariates: pd.DataFrame | None = None) -> pd.DataFrame:
        """Add the covariate effects back.

        Parameters
        ----------
        X : DataFrame
            Covariate-adjusted ROI values (and the covariates, unless ``covariates`` is given).
        covariates : DataFrame, default=None
            The covariates of the same rows; None reads them from ``X``.

        Returns
        -------
        X_raw : DataFrame
            A copy of ``X`` with the covariate effects added to the ROI columns.
        """
        source = X if covariates is None else covariates
        if len(source) != len(X):
            raise ValueError(f"covariates has {len(source)} rows for {len(X)} rows of values")
        rois, effects = self._effects(source.set_axis(X.index) if covariates is not None else X, "covariates")
        values = check_numeric_table(X[rois], "X", min_rows=1, nonnegative=False)
        return replace_columns(X, rois, values + effects)

    def _get_state(self) -> tuple[dict, dict]:
        check_is_fitted(self, "coef_")
        metadata = {"params": self.get_params(), "feature_names": names_to_json(self.feature_names_in_)}
        tensors = {"coef_": to_tensor(self.coef_), "intercept_": to_tensor(self.intercept_),
                   "covariate_mean_": to_tensor(self.covariate_mean_)}
        if getattr(self, "coef_noise_sd_", None) is not None:
            tensors["coef_noise_sd_"] = to_tensor(self.coef_noise_sd_)
        return metadata, tensors

    def _set_state(self, metadata: dict, tensors: dict) -> None:
        self.feature_names_in_ = names_from_json(metadata["feature_names"])
        for name in ("coef_", "intercept_", "covariate_mean_"):
            setattr(self, name, tensors[name].numpy())
        self.coef_noise_sd_ = tensors["coef_noise_sd_"].numpy() if "coef_noise_sd_" in tensors else None
        k, p = len(self.covariates), len(self.feature_names_in_)
        for name, shape in (("coef_", (k, p)), ("intercept_", (p,)), ("covariate_mean_", (k,))):
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} has shape {getattr(self, name).shape}, expected {shape}")


def fit_private(residualizers: list[CovariateResidualizer], X: pd.DataFrame, groups: np.ndarray,
                releases) -> list[CovariateResidualizer]:
    """Fit one residualizer per group of subjects from released sufficient statistics (module docstring).

    The groups (e.g. the two cohorts of a pipeline) are disjoint, so their moments are released
    together as one pair of Gaussian mechanisms (parallel composition): two entries in
    ``releases.released`` whatever the number of groups.

    Parameters
    ----------
    residualizers : list of CovariateResidualizer
        One unfitted residualizer per group, all with the same ``covariates``.
    X : DataFrame
        The subjects of all groups, with the covariate and ROI columns.
    groups : ndarray of shape (len(X),)
        Each row's group, 0 .. len(residualizers) - 1.
    releases : GaussianReleases
        The Gaussian mechanism and its tally (:class:`~roisynth.privacy._sufficient_stats.GaussianReleases`).

    Returns
    -------
    list of CovariateResidualizer
        ``residualizers``, fitted.
    """
    from ..privacy._sufficient_stats import shrink, solve_moments

    for residualizer in residualizers:
        validate_params(residualizer)
    covariates = list(residualizers[0].covariates)
    rois = find_rois(X, residualizers[0].rois)
    values = check_numeric_table(X[rois], "ROI table", nonnegative=False)
    x, middle, half = releases.design(X, covariates, "covariate table")
    u, center, scale = releases.roi_rows(values, rois)
    gram, cross, gram_sd, cross_sd = releases.moments(x, u, groups, len(residualizers))
    for residualizer, g, c in zip(residualizers, gram, cross):
        beta, beta_sd = solve_moments(g, c, gram_sd, cross_sd)
        slopes = shrink(beta[1:], beta_sd[1:])
        mean = g[0, 1:] / max(g[0, 0], 1.0)          # released sums over the released count, in [-1, 1] units
        residualizer.coef_ = slopes * scale / half[:, None]
        residualizer.coef_noise_sd_ = np.outer(beta_sd[1:] / half, scale)
        residualizer.covariate_mean_ = middle + half * np.clip(mean, -1, 1)
        residualizer.intercept_ = center + scale * (beta[0] + mean @ beta[1:])  # the released mean ROI values
        residualizer.feature_names_in_ = np.asarray(rois, dtype=object)
    return residualizers
