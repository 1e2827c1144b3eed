r"""Site harmonization of ROI volumes with ComBat-GAM (neuroHarmonize), invertible, saved without pickle.

ComBat's model for ROI :math:`g` of subject :math:`i` scanned at site :math:`j`, in its
standardized form, is

.. math:: x_{ig} = \alpha_g + f_g(c_i) + \sigma_g\,s_{ig}, \qquad
          s_{ig} = \gamma^*_{jg} + \sqrt{\delta^*_{jg}}\;s^h_{ig}

with :math:`\alpha_g` the size-weighted mean of the site intercepts (``stand_mean``),
:math:`f_g(c)` the covariate effects (``mod_mean``: linear terms plus a penalized cubic
B-spline in the smooth covariate, a GAM whose penalty is chosen by 5-fold cross-validation),
:math:`\sigma^2_g` the pooled residual variance (``var_pooled``) and :math:`\gamma^*,
\delta^*` the empirical-Bayes site shifts and scales. Harmonizing keeps everything but the
site effect, :math:`x^h = \alpha + f(c) + \sigma s^h`; the inverse puts a site's effect back,

.. math:: s^h = (x^h - \alpha - f(c))/\sigma,\quad x = \alpha + f(c) + \sigma(\gamma^*_j + \sqrt{\delta^*_j}\,s^h).

Fitting runs neuroHarmonize's ``harmonizationLearn`` with its per-ROI GAM step replaced by
an equivalent one that gives each ROI's penalty search its own seeded folds (so fits are
reproducible) and runs the independent per-ROI fits in parallel. Transforming evaluates the
formulas above row by row; neuroHarmonize 2.4.5's ``harmonizationApply`` gives the same on
tables holding every training site but re-codes the sites of a table that lacks some (wrong
site effects, or a shape error in linear ComBat), so it is not used; ``model_`` stays a
model it accepts.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import numbers
import threading
import warnings

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from neuroHarmonize import harmonizationLearn
from neuroHarmonize.harmonizationApply import applyStandardizationAcrossFeatures
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from statsmodels.gam.api import BSplines, GLMGam
from statsmodels.gam.gam_cross_validation.cross_validators import KFold
from threadpoolctl import threadpool_limits

from ..base import Persistent
from ..datasets import roi_columns
from ..utils import persistence
from ..utils._param_validation import validate_params
from ..utils.covariates import covariate_matrix
from ..utils.frames import replace_columns
from ..utils.validation import _rows, check_numeric_table

_K_FOLDS = 5  # neuroHarmonize's penalty search: statsmodels' default 5 folds
_LEARN_LOCK = threading.Lock()  # the GAM step is swapped in neuroHarmonize's module while fitting


def _names(value, param: str) -> list[str]:
    """A parameter naming columns, as a list (a single string names one column)."""
    if value is None:
        return []
    names = [value] if isinstance(value, str) else list(value)
    if len(set(names)) < len(names):
        raise ValueError(f"{param}={value!r} names a column twice")
    return names


class _SeededKFold(KFold):
    """statsmodels' shuffled k-fold split with a seeded generator (statsmodels shuffles with
    the global ``np.random`` (0.14) or fresh OS entropy (0.15), which makes ComBat-GAM irreproducible)."""

    def __init__(self, k_folds: int, seed: int):
        super().__init__(k_folds)
        self.generator = np.random.default_rng(seed)

    def split(self, X, y=None, label=None):
        nobs = X.shape[0]
        for fold in np.array_split(self.generator.permutation(nobs), self.k_folds):
            test = np.zeros(nobs, dtype=bool)
            test[fold] = True
            yield ~test, test


def _fit_gam(y: np.ndarray, formula: str, df_gam: pd.DataFrame, smoother, seed: int) -> np.ndarray:
    """One ROI's GAM coefficients, as neuroHarmonize fits them: penalty weight by 5-fold CV
    over statsmodels' default grid (10⁰..10⁷), then a refit at that weight."""
    with threadpool_limits(1):
        gam = GLMGam.from_formula(formula, data=df_gam.assign(y=y), smoother=smoother,
                                  alpha=np.ones(len(smoother.smoothers)))
        gam.alpha = gam.select_penweight_kfold(cv_iterator=_SeededKFold(_K_FOLDS, seed))[0]
        return np.asarray(gam.fit().params, dtype=np.float64)


def _standardizer(seeds: np.ndarray, n_jobs):
    """A drop-in for neuroHarmonize's ``standardizeAcrossFeatures`` (smooth case, no reference
    batch): per-ROI GAM fits with seeded folds, in parallel; the rest as in the library."""

    def standardize(X, design, info_dict, smooth_model):
        args = (smooth_model["formula"], smooth_model["df_gam"], smooth_model["bsplines_constructor"])
        fits = Parallel(n_jobs=n_jobs)(delayed(_fit_gam)(y, *args, int(seed)) for y, seed in zip(X, seeds))
        B_hat = np.column_stack(fits)
        n_batch, n_sample = info_dict["n_batch"], info_dict["n_sample"]
        grand_mean = np.dot((info_dict["sample_per_batch"] / float(n_sample)).T, B_hat[:n_batch, :])
        var_pooled = np.dot((X - np.dot(design, B_hat).T) ** 2, np.ones((n_sample, 1)) / float(n_sample))
        stand_mean = np.dot(grand_mean.T.reshape((len(grand_mean), 1)), np.ones((1, n_sample)))
        fitted = {"B_hat": B_hat, "stand_mean": stand_mean, "var_pooled": var_pooled}
        s_data, _, _, mod_mean = applyStandardizationAcrossFeatures(X, design, info_dict, fitted)
        return s_data, stand_mean, var_pooled, mod_mean, B_hat

    return standardize


@contextlib.contextmanager
def _gam_step(standardize):
    """Let ``harmonizationLearn`` use ``standardize`` for its GAM step, restoring it afterwards."""
    module = importlib.import_module("neuroHarmonize.harmonizationLearn")
    with _LEARN_LOCK:
        original = module.standardizeAcrossFeatures
        module.standardizeAcrossFeatures = standardize
        try:
            yield
        finally:
            module.standardizeAcrossFeatures = original


def _bsplines(knots: np.ndarray, df: int, degree: int) -> BSplines:
    """neuroHarmonize's B-spline basis (one smooth term) rebuilt from its knots."""
    return BSplines(knots[:, None], df=df, degree=degree, knot_kwds=[{"all_knots": knots}])


class Harmonizer(Persistent, TransformerMixin, BaseEstimator):
    """Remove scanner/site effects from ROI volumes with ComBat-GAM (neuroHarmonize), invertibly.

    Model and inverse: see the module docstring. Site labels are compared as text.

    Parameters
    ----------
    site : str, default="site"
        Column with the site (scanner) labels.
    covariates : sequence of str, default=("age", "sex")
        Covariate columns whose effects ComBat keeps (numeric; ``sex`` may be
        ``"M"``/``"F"``, ``"male"``/``"female"`` in any case, or 0/1).
    smooth : sequence of str, default=("age",)
        At most one covariate modelled as a penalized B-spline (ComBat-GAM); ``()`` for
        linear ComBat.
    rois : list of str, default=None
        ROI columns; None = the MUSE ROI columns found in the table, in table order.
    reference_site : str, default=None
        If set, ``transform`` maps to that site's scale instead of the pooled one
        (harmonize, then :meth:`inverse_transform` to the site; the site's own rows come
        back unchanged).
    smooth_bounds : tuple of two floats, default=(0, 120)
        Range of the smooth covariate: the outer spline knots, so any value in it can be
        transformed; values outside are an error.
    n_jobs : int or None, default=1
        Joblib workers for the per-ROI GAM fits (results do not depend on it).
    random_state : int, RandomState instance or None, default=0
        Seed for the folds of the per-ROI penalty search (int: identical refits).

    Attributes
    ----------
    feature_names_in_ : ndarray of shape (n_features_in_,)
        ROI columns.
    n_features_in_ : int
        Number of ROIs.
    sites_ : ndarray of shape (n_sites,)
        Training site labels (sorted).
    model_ : dict
        The neuroHarmonize model, reduced to what ``harmonizationApply`` reads.

    ``save(path)`` / ``Harmonizer.load(path)`` write and read it as tensors + JSON (no pickle).

    Examples
    --------
    >>> from roisynth import Harmonizer, datasets
    >>> cohort = datasets.load_example()
    >>> rois = datasets.roi_names()[:4]
    >>> harmonizer = Harmonizer(covariates=("age", "sex"), smooth=(), rois=rois).fit(cohort)
    >>> harmonized = harmonizer.transform(cohort)
    >>> list(harmonizer.sites_) == sorted(cohort.site.unique())
    True
    """

    _parameter_constraints = {
        "site": [str],
        "covariates": [str, "array-like", None],
        "smooth": [str, "array-like", None],
        "rois": [str, "array-like", None],
        "reference_site": [str, numbers.Integral, None],
        "smooth_bounds": ["array-like"],
        "n_jobs": [numbers.Integral, None],
        "random_state": ["random_state"],
    }

    def __init__(self, *, site="site", covariates=("age", "sex"), smooth=("age",), rois=None, reference_site=None,
                 smooth_bounds=(0, 120), n_jobs=1, random_state=0):
        self.site = site
        self.covariates = covariates
        self.smooth = smooth
        self.rois = rois
        self.reference_site = reference_site
        self.smooth_bounds = smooth_bounds
        self.n_jobs = n_jobs
        self.random_state = random_state

    # -- parameters ----------------------------------------------------------------------
    def _columns(self) -> tuple[list[str], list[str], tuple[float, float]]:
        """(covariates, smooth covariate(s), smooth bounds) as lists and floats, checked together."""
        covariates, smooth = _names(self.covariates, "covariates"), _names(self.smooth, "smooth")
        if self.site in covariates:
            raise ValueError(f"the site column {self.site!r} cannot also be a covariate")
        if len(smooth) > 1:
            raise ValueError(f"smooth={self.smooth!r}: at most one smooth covariate "
                             "(neuroHarmonize only supports smooth_bounds for one)")
        if smooth and smooth[0] not in covariates:
            raise ValueError(f"smooth covariate {smooth[0]!r} is not one of covariates={covariates}")
        try:
            lo, hi = (float(b) for b in self.smooth_bounds)
        except (TypeError, ValueError):
            raise ValueError(f"smooth_bounds must be a pair (low, high), got {self.smooth_bounds!r}") from None
        if not np.isfinite([lo, hi]).all() or lo >= hi:
            raise ValueError(f"smooth_bounds must be finite with low < high, got {self.smooth_bounds!r}")
        return covariates, smooth, (lo, hi)

    # -- input ---------------------------------------------------------------------------
    def _frame(self, X, name: str) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"{name} must be a DataFrame with the site, covariate and ROI columns, "
                            f"got {type(X).__name__}")
        return X

    def _find_rois(self, X: pd.DataFrame, covariates: list[str]) -> list[str]:
        if self.rois is not None:
            rois = _names(self.rois, "rois")
        else:
            rois = roi_columns(X)
        clash = [c for c in rois if c in (self.site, *covariates)]
        if clash:
            raise ValueError(f"column(s) {clash} cannot be both ROIs and site/covariates")
        return rois

    def _values(self, X: pd.DataFrame, name: str) -> np.ndarray:
        """The ROI columns as a float array (missing, non-numeric, NaN: errors naming them)."""
        rois = list(self.feature_names_in_)
        missing = [c for c in rois if c not in X.columns]
        if missing:
            raise ValueError(f"{name} lacks the ROI column(s) {missing[:5]}" + (" ..." if len(missing) > 5 else ""))
        text = [c for c in rois if not pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c])]
        if text:
            raise TypeError(f"{name} has non-numeric ROI column(s) {text[:5]}; ROI volumes must be numbers")
        return check_numeric_table(X[rois], name, min_rows=1, nonnegative=False)

    def _sites(self, X: pd.DataFrame, name: str) -> np.ndarray:
        if self.site not in X.columns:
            raise ValueError(f"{name} has no site column {self.site!r}")
        labels = X[self.site]
        if labels.isna().any():
            rows = _rows(X.index, labels.isna().to_numpy())
            raise ValueError(f"{name} column {self.site!r} has missing site labels in rows {rows}")
        return labels.astype(str).to_numpy(dtype=object)

    def _covars(self, X: pd.DataFrame, sites: np.ndarray, name: str) -> pd.DataFrame:
        """neuroHarmonize's covariate table: ``SITE`` then the numeric covariates."""
        covariates, smooth, (lo, hi) = self._columns()
        values = covariate_matrix(X, covariates, name)
        for column in smooth:
            v = values[:, covariates.index(column)]
            outside = (v < lo) | (v > hi)
            if outside.any():
                raise ValueError(
                    f"{name} column {column!r} is outside smooth_bounds=({lo:g}, {hi:g}) in rows "
                    f"{_rows(X.index, outside)} (values {sorted(set(v[outside]))[:5]}); refit with wider smooth_bounds"
                )
        return pd.DataFrame({"SITE": sites, **dict(zip(covariates, values.T))}, index=range(len(X)))

    def _site_index(self, sites: np.ndarray, name: str) -> np.ndarray:
        """Row -> index of its site in ``sites_``; unseen sites are an error naming them."""
        index = pd.Index(self.sites_).get_indexer(sites)
        if (index < 0).any():
            unseen = sorted(set(sites[index < 0]))
            raise ValueError(f"{name}: site(s) {unseen} were not seen in fit (training sites: {list(self.sites_)})")
        return index

    def _reference_index(self, sites) -> int | None:
        """Position of ``reference_site`` among ``sites`` (``None`` when not set)."""
        if self.reference_site is None:
            return None
        sites = [str(s) for s in sites]
        if str(self.reference_site) not in sites:
            raise ValueError(f"reference_site={self.reference_site!r} is not one of the training sites {sites}")
        return sites.index(str(self.reference_site))

    # -- fit -----------------------------------------------------------------------------
    def fit(self, X, y=None):
        """Learn the ComBat-GAM model from a table with site, covariate and ROI columns.

        Parameters
        ----------
        X : DataFrame
            Subjects with the site, covariate and ROI columns (at least two sites, two
            subjects each).
        y : None
            Ignored (scikit-learn convention).

        Returns
        -------
        self : Harmonizer
            The fitted transformer.
        """
        validate_params(self)
        X = self._frame(X, "X")
        covariates, smooth, bounds = self._columns()
        self.feature_names_in_ = np.asarray(self._find_rois(X, covariates), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        data = self._values(X, "X")
        sites = self._sites(X, "X")
        covars = self._covars(X, sites, "X")
        labels, counts = np.unique(sites, return_counts=True)
        if len(labels) < 2:
            raise ValueError(
                f"X has a single site {list(labels)} in column {self.site!r}; harmonization needs at least two"
            )
        if (counts < 2).any():
            raise ValueError(
                f"site(s) {list(labels[counts < 2])} have a single subject; ComBat needs at least two per site"
            )
        self._reference_index(labels)
        entropy = check_random_state(self.random_state).randint(2**31)
        seeds = np.random.SeedSequence(entropy).generate_state(data.shape[1])
        gam_step = _gam_step(_standardizer(seeds, self.n_jobs)) if smooth else contextlib.nullcontext()
        with threadpool_limits(1), contextlib.redirect_stdout(io.StringIO()), gam_step, warnings.catch_warnings():
            warnings.filterwarnings("ignore", "the matrix subclass", PendingDeprecationWarning)  # its np.matrix
            # seed: any non-None value; with seed=None neuroHarmonize calls np.random.seed(None)
            model, _ = harmonizationLearn(data, covars, smooth_terms=smooth, smooth_term_bounds=bounds, seed=0)
        self._set_model(labels, covariates, smooth, model)
        return self

    def _set_model(self, labels, covariates, smooth, model: dict) -> None:
        """Keep the fields ``harmonizationApply`` and the inverse read (the rest is per-subject)."""
        self.sites_ = np.asarray(labels, dtype=object)
        smooth_model = model["smooth_model"]
        self.model_ = {
            "SITE_labels": self.sites_,
            "B_hat": model["B_hat"],
            "stand_mean": model["stand_mean"][:, [0]],
            "var_pooled": model["var_pooled"],
            "gamma_star": np.asarray(model["gamma_star"], dtype=np.float64),
            "delta_star": np.asarray(model["delta_star"], dtype=np.float64),
            "info_dict": {"ref_level": None},
            "smooth_model": {
                "perform_smoothing": bool(smooth),
                "smooth_terms": smooth,
                "smooth_cols": [1 + covariates.index(c) for c in smooth],
                "bsplines_constructor": smooth_model["bsplines_constructor"],
            },
        }

    # -- the maps ------------------------------------------------------------------------
    def _covariate_mean(self, covars: pd.DataFrame) -> np.ndarray:
        r""":math:`\alpha + f(c)` [subject, ROI]: the fitted GAM without site terms, with the
        design neuroHarmonize builds (linear covariates; B-spline basis of the smooth one;
        covariates rounded to float32 in linear ComBat, as ``make_design_matrix`` does)."""
        smooth_model = self.model_["smooth_model"]
        smooth = smooth_model["smooth_terms"]
        linear = covars.drop(columns=["SITE", *smooth]).to_numpy(np.float64)
        if smooth:
            basis = smooth_model["bsplines_constructor"].transform(covars[smooth].to_numpy(np.float64))
            design = np.concatenate([linear, basis], axis=1)
        else:
            design = linear.astype(np.float32).astype(np.float64)
        return self.model_["stand_mean"].T + design @ self.model_["B_hat"][len(self.sites_):]

    def _site_map(self, values: np.ndarray, covars: pd.DataFrame, site_index: np.ndarray, to_site: bool) -> np.ndarray:
        r"""Site scale -> harmonized (ComBat's ``adjust_data_final``), or back (``to_site``).

        With :math:`m = \alpha + f(c)` and :math:`s = (x - m)/\sigma`: harmonizing gives
        :math:`m + \sigma(s - \gamma^*_j)/\sqrt{\delta^*_j}`, the way back
        :math:`m + \sigma(\gamma^*_j + \sqrt{\delta^*_j}\,s)`; :math:`j` is each row's site.
        """
        mean = self._covariate_mean(covars)
        sd = np.sqrt(self.model_["var_pooled"]).T
        gamma = self.model_["gamma_star"][site_index]
        scale = np.sqrt(self.model_["delta_star"][site_index])
        s = (values - mean) / sd
        return mean + sd * (gamma + scale * s if to_site else (s - gamma) / scale)

    def _output(self, X: pd.DataFrame, values: np.ndarray) -> pd.DataFrame:
        return replace_columns(X, self.feature_names_in_, values)

    def transform(self, X) -> pd.DataFrame:
        """``X`` with its ROI columns harmonized (on ``reference_site``'s scale if set).

        Parameters
        ----------
        X : DataFrame
            Subjects with the site, covariate and ROI columns (sites seen in ``fit``).

        Returns
        -------
        harmonized : DataFrame
            A copy of ``X`` with the ROI columns replaced by harmonized values.
        """
        check_is_fitted(self, "model_")
        X = self._frame(X, "X")
        data, sites = self._values(X, "X"), self._sites(X, "X")
        site_index = self._site_index(sites, "X")
        covars = self._covars(X, sites, "X")
        harmonized = self._site_map(data, covars, site_index, to_site=False)
        reference = self._reference_index(self.sites_)
        if reference is not None:
            harmonized = self._site_map(harmonized, covars, np.full(len(X), reference), to_site=True)
        return self._output(X, harmonized)

    def inverse_transform(self, X, site=None) -> pd.DataFrame:
        """Harmonized ROI values (as ``transform`` gives them) back to each row's own site.

        Parameters
        ----------
        X : DataFrame
            Harmonized subjects with the covariate and ROI columns, and the site column
            unless ``site`` is given.
        site : str, default=None
            None: each row goes back to its own site (column ``self.site``); a training
            site label: all rows go to that site (then the site column, if any, is set
            to it).

        Returns
        -------
        X_site : DataFrame
            A copy of ``X`` with the ROI columns on the site's scale.
        """
        check_is_fitted(self, "model_")
        X = self._frame(X, "X")
        data = self._values(X, "X")
        sites = self._sites(X, "X") if site is None else np.full(len(X), str(site), dtype=object)
        site_index = self._site_index(sites, "X" if site is None else "inverse_transform(site=...)")
        covars = self._covars(X, sites, "X")
        reference = self._reference_index(self.sites_)
        if reference is not None:
            data = self._site_map(data, covars, np.full(len(X), reference), to_site=False)
        out = self._output(X, self._site_map(data, covars, site_index, to_site=True))
        if site is not None and self.site in out.columns:
            out[self.site] = site
        return out

    # -- persistence ---------------------------------------------------------------------
    def _get_state(self) -> tuple[dict, dict]:
        """(JSON metadata, tensors) of the fitted model; the spline basis is kept as its knots."""
        check_is_fitted(self, "model_")
        params = self.get_params(deep=False)
        seed = params["random_state"]
        params["random_state"] = int(seed) if isinstance(seed, numbers.Integral) else None  # not a RandomState
        smooth_model = self.model_["smooth_model"]
        metadata = {
            "params": params,
            "feature_names": persistence.names_to_json(self.feature_names_in_),
            "sites": [str(s) for s in self.sites_],
            "covariates": _names(self.covariates, "covariates"),
            "smooth": smooth_model["smooth_terms"],
        }
        tensors = {
            k: persistence.to_tensor(self.model_[k])
            for k in ("B_hat", "stand_mean", "var_pooled", "gamma_star", "delta_star")
        }
        if smooth_model["perform_smoothing"]:
            spline = smooth_model["bsplines_constructor"].smoothers[0]
            metadata["spline"] = {"df": int(spline.df), "degree": int(spline.degree)}
            tensors["knots"] = persistence.to_tensor(spline.knots)
        return metadata, tensors

    def _set_state(self, metadata: dict, tensors: dict) -> None:
        self.feature_names_in_ = persistence.names_from_json(metadata["feature_names"])
        self.n_features_in_ = len(self.feature_names_in_)
        model = {k: v.numpy() for k, v in tensors.items() if k != "knots"}
        spline = metadata.get("spline")
        bs = _bsplines(tensors["knots"].numpy(), spline["df"], spline["degree"]) if spline else None
        model["smooth_model"] = {"bsplines_constructor": bs}
        self._set_model(metadata["sites"], metadata["covariates"], metadata["smooth"], model)
