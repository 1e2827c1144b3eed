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
        self.feature_names_in_ = np.asarray(rois, dtype=object)
        return self

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
        return metadata, tensors

    def _set_state(self, metadata: dict, tensors: dict) -> None:
        self.feature_names_in_ = names_from_json(metadata["feature_names"])
        for name in ("coef_", "intercept_", "covariate_mean_"):
            setattr(self, name, tensors[name].numpy())
        k, p = len(self.covariates), len(self.feature_names_in_)
        for name, shape in (("coef_", (k, p)), ("intercept_", (p,)), ("covariate_mean_", (k,))):
            if getattr(self, name).shape != shape:
                raise ValueError(f"{name} has shape {getattr(self, name).shape}, expected {shape}")
