r"""Site harmonization of ROI volumes with ComBat-GAM, all ROIs at once, invertible, saved without pickle.

ComBat's model for ROI :math:`g` of subject :math:`i` scanned at site :math:`j`, in its
standardized form, is

.. math:: x_{ig} = \alpha_g + f_g(c_i) + \sigma_g\,s_{ig}, \qquad
          s_{ig} = \gamma^*_{jg} + \sqrt{\delta^*_{jg}}\;s^h_{ig}

with :math:`\alpha_g` the size-weighted mean of the site intercepts (``stand_mean``),
:math:`f_g(c)` the covariate effects (``mod_mean``: linear terms plus a penalized cubic
B-spline in each smooth covariate, a GAM), :math:`\sigma^2_g` the pooled residual variance
(``var_pooled``) and :math:`\gamma^*, \delta^*` the empirical-Bayes site shifts and scales.
Harmonizing keeps everything but the site effect, :math:`x^h = \alpha + f(c) + \sigma s^h`;
the inverse puts a site's effect back,

.. math:: s^h = (x^h - \alpha - f(c))/\sigma,\quad x = \alpha + f(c) + \sigma(\gamma^*_j + \sqrt{\delta^*_j}\,s^h).

The GAM is fitted as neuroHarmonize fits it (statsmodels' ``GLMGam``: the same basis,
penalty, candidate penalties and cross-validation cost), but for every ROI, penalty and fold
in one batched solve (:mod:`roisynth.preprocessing._combat`) with one seeded fold assignment
shared by all ROIs and penalties, and the empirical Bayes is neuroCombat's. ``model_`` is a
model neuroHarmonize's ``harmonizationApply`` accepts; it is not used to transform, since
neuroHarmonize 2.4.5 re-codes the sites of a table that lacks some of them.

Private fit
-----------
A :class:`~roisynth.SynthesisPipeline` whose synthesizer has ``privacy=`` fits linear ComBat
(``smooth=()``; a GAM smooth, whose knots sit at data quantiles and whose penalty is chosen by
cross-validation, is refused) from released sufficient statistics: per site :math:`j`, the
moments :math:`\sum_{i\in j} x_i x_i^\top` and :math:`\sum_{i\in j} x_i u_i^\top` of
:math:`x = (1, \tilde c)` (covariates clipped to public ranges, scaled to [-1, 1]) and the
ROIs :math:`u` in their public standardization (rows clipped to norm :math:`R = 1.5\sqrt p`):
two Gaussian releases, of L2 sensitivity :math:`1 + k` and :math:`\sqrt{1 + k}\,R` for one
subject added or removed (a subject is at one site, so all sites together are one release;
:mod:`roisynth.privacy._sufficient_stats`). The normal equations of the site indicators and
covariates are assembled from them and solved (:math:`\hat\alpha_j`, slopes); the
covariate slopes and the site shifts :math:`\hat\alpha_j - \alpha` are shrunk across ROIs
with the known noise variance (ComBat's empirical-Bayes prior for :math:`\gamma`, with the
noise as the measurement error: :func:`~roisynth.privacy._sufficient_stats.shrink`). The fit
is *mean-only* ComBat (neuroCombat's ``mean_only=True``): :math:`\delta^* = 1`, and
:math:`\sigma_g` is the public scale of ROI :math:`g` rather than the pooled residual SD; a
per-site variance would need released sums of squares whose sensitivity (:math:`R^2` per
subject) drowns the site scales of cohorts of a few hundred per site.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..base import Persistent
from ..datasets import roi_columns
from ..utils import persistence
from ..utils._param_validation import validate_params
from ..utils.covariates import covariate_matrix
from ..utils.frames import replace_columns
from ..utils.validation import _rows, check_numeric_table
from . import _combat

_WIDEN = 0.1  # a smooth term without bounds: its training range widened by this fraction of the width on each side
_FORMAT = 2  # model file layout: 2 = knots [term, knot] and per-ROI penalties; 1 (no "format") = one term, no penalties


def _names(value, param: str) -> list[str]:
    """A parameter naming columns, as a list (a single string names one column)."""
    if value is None:
        return []
    names = [value] if isinstance(value, str) else list(value)
    if len(set(names)) < len(names):
        raise ValueError(f"{param}={value!r} names a column twice")
    return names


def _pair(value, param: str) -> tuple[float, float]:
    """``(low, high)`` as finite floats with low < high."""
    try:
        lo, hi = (float(b) for b in value)
    except (TypeError, ValueError):
        raise ValueError(f"{param} must be a pair (low, high), got {value!r}") from None
    if not np.isfinite([lo, hi]).all() or lo >= hi:
        raise ValueError(f"{param} must be finite with low < high, got {value!r}")
    return lo, hi


class Harmonizer(Persistent, TransformerMixin, BaseEstimator):
    r"""Remove scanner/site effects from ROI volumes with ComBat-GAM, invertibly.

    The model and its inverse are in the module docstring; fitting, for all ROIs at once:

    1. **GAM.** Every ROI :math:`y_g` is regressed on one shared design
       :math:`X = [\text{site indicators}, \text{linear covariates}, B_1(c_1), \dots]`, with
       :math:`B_t` the cubic B-spline basis (9 columns, statsmodels' ``BSplines``, df 10) of
       smooth covariate :math:`t`: :math:`\hat\beta_g = (X^\top X + 2\sum_t\lambda_{gt}S_t)^{-1}
       X^\top y_g`, with :math:`S_t` the integrated squared second derivative of :math:`B_t`.
       Each ROI's penalties :math:`\lambda_g` are the combination of the grid
       :math:`10^0, 10^{0.7}, \dots, 10^7` (11 values per smooth term) with the smallest
       5-fold cross-validation cost (mean over folds of :math:`\lVert y - \hat y\rVert/n` on the
       held-out fold); the folds are one random partition of the subjects drawn from
       ``random_state``, shared by every ROI and penalty. This is statsmodels' ``GLMGam``
       with ``select_penweight_kfold``, as neuroHarmonize runs it per ROI.
    2. **Standardization.** :math:`\alpha_g = \sum_j (n_j/n)\hat\beta_{gj}` over the site
       coefficients, :math:`f_g(c)` the rest of the fit, :math:`\sigma^2_g` the mean squared
       residual of the full fit, :math:`s = (y - \alpha - f(c))/\sigma`.
    3. **Empirical Bayes** per site over the ROIs (neuroCombat's parametric priors; see
       :func:`~roisynth.preprocessing._combat.site_estimates`), giving :math:`\gamma^*_j,
       \delta^*_j`; with a single ROI the plain per-site mean and variance of :math:`s`.

    Site labels are compared as text.

    Parameters
    ----------
    site : str, default="site"
        Column with the site (scanner) labels.
    covariates : sequence of str, default=("age", "sex")
        Covariate columns whose effects ComBat keeps (numeric; ``sex`` may be
        ``"M"``/``"F"``, ``"male"``/``"female"`` in any case, or 0/1).
    smooth : sequence of str, default=("age",)
        Covariates modelled as penalized B-splines (ComBat-GAM), each with its own penalty;
        ``()`` for linear ComBat. Several terms (e.g. ``("age", "icv")``) search the product
        of the penalty grids (121 combinations for two).
    rois : list of str, default=None
        ROI columns; None = the MUSE ROI columns found in the table, in table order.
    reference_site : str, default=None
        If set, ``transform`` maps to that site's scale instead of the pooled one
        (harmonize, then :meth:`inverse_transform` to the site; the site's own rows come
        back unchanged).
    smooth_bounds : pair of floats, dict or None, default=(0, 120)
        Range of each smooth covariate, its outer spline knots: any value in it can be
        transformed, values outside are an error. A pair ``(low, high)`` when ``smooth``
        names one term; a dict ``{column: (low, high) or None}`` for several; None (or a
        column the dict leaves out or maps to None) = the training range widened by 10 % of
        its width on each side.
    random_state : int, RandomState instance or None, default=0
        Seed of the cross-validation folds of the penalty search (int: identical refits).

    Attributes
    ----------
    feature_names_in_ : ndarray of shape (n_features_in_,)
        ROI columns.
    n_features_in_ : int
        Number of ROIs.
    sites_ : ndarray of shape (n_sites,)
        Site labels: the training sites (sorted), then those added by :meth:`add_site`.
    penalty_ : ndarray of shape (n_features_in_, n_smooth)
        The penalty weight :math:`\lambda` chosen for each ROI and smooth term (in
        ``covariates`` order).
    model_ : dict
        The model in neuroHarmonize's layout (``B_hat``: site rows, linear covariates,
        spline columns; ``stand_mean``, ``var_pooled``, ``gamma_star``, ``delta_star``,
        ``smooth_model``), reduced to what ``harmonizationApply`` reads.

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
        "smooth_bounds": ["array-like", dict, None],
        "random_state": ["random_state"],
    }

    def __init__(self, *, site="site", covariates=("age", "sex"), smooth=("age",), rois=None, reference_site=None,
                 smooth_bounds=(0, 120), random_state=0):
        self.site = site
        self.covariates = covariates
        self.smooth = smooth
        self.rois = rois
        self.reference_site = reference_site
        self.smooth_bounds = smooth_bounds
        self.random_state = random_state

    # -- parameters ----------------------------------------------------------------------
    def _columns(self) -> tuple[list[str], list[str], dict]:
        """(covariates, smooth covariates in covariate order, {smooth column: (low, high) or None})."""
        covariates, smooth = _names(self.covariates, "covariates"), _names(self.smooth, "smooth")
        if self.site in covariates:
            raise ValueError(f"the site column {self.site!r} cannot also be a covariate")
        unknown = [c for c in smooth if c not in covariates]
        if unknown:
            raise ValueError(f"smooth covariate(s) {unknown} are not among covariates={covariates}")
        smooth = [c for c in covariates if c in smooth]
        bounds = self.smooth_bounds
        if bounds is None:
            bounds = {}
        elif not isinstance(bounds, dict):
            if len(smooth) > 1:
                raise ValueError(f"smooth_bounds={bounds!r} is one pair but smooth names {len(smooth)} terms "
                                 f"{smooth}; give a dict {{column: (low, high) or None}}")
            bounds = dict.fromkeys(smooth, bounds)
        stray = [c for c in bounds if c not in smooth]
        if stray:
            raise ValueError(f"smooth_bounds names {stray}, which are not smooth terms (smooth={smooth})")
        return covariates, smooth, {
            c: None if bounds.get(c) is None else _pair(bounds[c], f"smooth_bounds[{c!r}]") for c in smooth
        }

    # -- input ---------------------------------------------------------------------------
    def _frame(self, X, name: str) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"{name} must be a DataFrame with the site, covariate and ROI columns, "
                            f"got {type(X).__name__}")
        return X

    def _find_rois(self, X: pd.DataFrame, covariates: list[str]) -> list[str]:
        rois = _names(self.rois, "rois") if self.rois is not None else roi_columns(X)
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

    def _covariate_values(self, X: pd.DataFrame, name: str) -> np.ndarray:
        """The covariates [subject, covariate]; a smooth one outside its spline's range is an error."""
        covariates, smooth, _ = self._columns()
        values = covariate_matrix(X, covariates, name)
        if hasattr(self, "model_"):
            for column, knots in zip(smooth, self._knots()):
                v = values[:, covariates.index(column)]
                outside = (v < knots[0]) | (v > knots[-1])
                if outside.any():
                    raise ValueError(
                        f"{name} column {column!r} is outside the range ({knots[0]:g}, {knots[-1]:g}) of its spline "
                        f"in rows {_rows(X.index, outside)} (values {sorted(set(v[outside]))[:5]}); refit with wider "
                        "smooth_bounds"
                    )
        return values

    def _site_index(self, sites: np.ndarray, name: str) -> np.ndarray:
        """Row -> index of its site in ``sites_``; unseen sites are an error naming them."""
        index = pd.Index(self.sites_).get_indexer(sites)
        if (index < 0).any():
            unseen = sorted(set(sites[index < 0]))
            raise ValueError(f"{name}: site(s) {unseen} were not seen in fit (sites: {list(self.sites_)}); "
                             "add_site learns a new site from a few of its subjects")
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
        X, covariates, smooth, bounds, data, (labels, codes, counts) = self._start_fit(X)
        values = self._covariate_values(X, "X")
        if (counts < 2).any():
            raise ValueError(
                f"site(s) {list(labels[counts < 2])} have a single subject; ComBat needs at least two per site"
            )
        self._reference_index(labels)
        knots = []
        for column in smooth:
            v = values[:, covariates.index(column)]
            lo, hi = bounds[column] or (v.min() - _WIDEN * np.ptp(v), v.max() + _WIDEN * np.ptp(v))
            outside = (v < lo) | (v > hi)
            if outside.any():
                raise ValueError(
                    f"X column {column!r} is outside smooth_bounds=({lo:g}, {hi:g}) in rows {_rows(X.index, outside)} "
                    f"(values {sorted(set(v[outside]))[:5]}); refit with wider smooth_bounds"
                )
            if np.ptp(v) == 0:
                raise ValueError(f"smooth covariate {column!r} takes a single value in X; a spline needs a range")
            knots.append(_combat.spline_knots(v, (lo, hi)))
        self._set_model(labels, covariates, smooth, np.array(knots))
        onehot = np.eye(len(labels))[codes]
        design = np.concatenate([onehot, self._covariate_design(values)], axis=1)
        basis = self.model_["smooth_model"]["bsplines_constructor"]
        penalties = [s.cov_der2 for s in basis.smoothers] if smooth else []
        constant = np.r_[np.ones(len(labels)), np.zeros(design.shape[1] - len(labels))]
        folds = _combat.fold_of_rows(len(X), check_random_state(self.random_state))
        B_hat, self.penalty_ = _combat.fit_penalized(design, data, penalties, constant, folds)
        stand_mean = counts / len(X) @ B_hat[:len(labels)]
        var_pooled = np.mean(np.square(data - design @ B_hat), axis=0)
        s = (data - design[:, len(labels):] @ B_hat[len(labels):] - stand_mean) / np.sqrt(var_pooled)
        estimates = [_combat.site_estimates(s[codes == j], eb=data.shape[1] > 1) for j in range(len(labels))]
        self.model_.update(B_hat=B_hat, stand_mean=stand_mean[:, None], var_pooled=var_pooled[:, None],
                           gamma_star=np.array([g for g, _ in estimates]),
                           delta_star=np.array([d for _, d in estimates]))
        return self

    def _start_fit(self, X, private: bool = False):
        """What both fits begin with: the parameters and ``X`` checked (under ``private`` a GAM smooth
        refused), the last fit's state dropped, the ROI columns found (``feature_names_in_``), the site
        labels read (at least two). Returns ``(X, covariates, smooth, bounds, data, (labels, codes,
        counts))``, ``data`` the ROI values and ``codes`` each row's index into ``labels``."""
        validate_params(self)
        X = self._frame(X, "X")
        covariates, smooth, bounds = self._columns()
        if private and smooth:
            raise ValueError(
                f"Harmonizer(smooth={smooth}) fits a GAM smooth, which has no private fit (its knots sit at data "
                "quantiles and its penalty is chosen by cross-validation on the subjects); under privacy use "
                "linear ComBat, Harmonizer(smooth=()), whose covariate effects are linear")
        for attribute in ("model_", "sites_", "penalty_"):  # a refit starts from nothing
            self.__dict__.pop(attribute, None)
        self.feature_names_in_ = np.asarray(self._find_rois(X, covariates), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        data, sites = self._values(X, "X"), self._sites(X, "X")
        sites = np.unique(sites, return_inverse=True, return_counts=True)
        if len(sites[0]) < 2:
            raise ValueError(
                f"X has a single site {list(sites[0])} in column {self.site!r}; harmonization needs at least two"
            )
        return X, covariates, smooth, bounds, data, sites

    #: Gaussian releases of :meth:`_fit_private` (the per-site moments X'X and X'U).
    _private_releases = 2

    def _fit_private(self, X, releases):
        """Linear, mean-only ComBat from released sufficient statistics (module docstring, "Private fit").

        Parameters
        ----------
        X : DataFrame
            Subjects with the site, covariate and ROI columns.
        releases : GaussianReleases
            The Gaussian mechanism and its tally (:class:`~roisynth.privacy._sufficient_stats.GaussianReleases`).

        Returns
        -------
        self : Harmonizer
            The fitted transformer.
        """
        from ..privacy._sufficient_stats import shrink, solve_moments

        X, covariates, _, _, data, (labels, codes, _) = self._start_fit(X, private=True)
        rois = list(self.feature_names_in_)
        self._reference_index(labels)
        x, middle, half = releases.design(X, covariates, "X")
        u, center, scale = releases.roi_rows(data, rois)
        gram, cross, gram_sd, cross_sd = releases.moments(x, u, codes, len(labels))
        n_sites, k = len(labels), len(covariates)
        system = np.zeros((n_sites + k, n_sites + k))     # normal equations of u on [site indicators, c~]
        system[:n_sites, :n_sites] = np.diag(gram[:, 0, 0])
        system[:n_sites, n_sites:] = gram[:, 0, 1:]
        system[n_sites:, :n_sites] = gram[:, 1:, 0].T
        system[n_sites:, n_sites:] = gram[:, 1:, 1:].sum(axis=0)
        rhs = np.concatenate([cross[:, 0], cross[:, 1:].sum(axis=0)])
        row_sd = np.r_[np.full(n_sites, cross_sd), np.full(k, cross_sd * np.sqrt(n_sites))]
        beta, beta_sd = solve_moments(system, rhs, gram_sd * np.sqrt(n_sites), row_sd)
        weights = np.maximum(gram[:, 0, 0], 1.0) / np.maximum(gram[:, 0, 0], 1.0).sum()
        slopes = shrink(beta[n_sites:], beta_sd[n_sites:])
        intercepts = center + scale * (beta[:n_sites] - (middle / half) @ slopes)   # raw units, raw covariates
        self._set_model(labels, covariates, [], np.empty((0, 0)))
        self.penalty_ = np.empty((len(rois), 0))
        self.model_.update(B_hat=np.concatenate([intercepts, slopes * scale / half[:, None]]),
                           stand_mean=(weights @ intercepts)[:, None], var_pooled=np.square(scale)[:, None],
                           gamma_star=shrink(beta[:n_sites] - weights @ beta[:n_sites], beta_sd[:n_sites]),
                           delta_star=np.ones((n_sites, len(rois))))
        return self

    def _set_model(self, labels, covariates, smooth, knots: np.ndarray, **fitted) -> None:
        """``sites_`` and ``model_`` (neuroHarmonize's layout) from the sites, columns, knots and estimates."""
        self.sites_ = np.asarray(labels, dtype=object)
        self.model_ = {
            "SITE_labels": self.sites_,
            **fitted,
            "info_dict": {"ref_level": None},
            "smooth_model": {
                "perform_smoothing": bool(smooth),
                "smooth_terms": list(smooth),
                "smooth_cols": [1 + covariates.index(c) for c in smooth],
                "bsplines_constructor": _combat.spline_basis(knots) if smooth else None,
            },
        }

    def _knots(self) -> list[np.ndarray]:
        """All knots of each smooth term's spline."""
        basis = self.model_["smooth_model"]["bsplines_constructor"]
        return [s.knots for s in basis.smoothers] if basis is not None else []

    def add_site(self, X, site=None):
        r"""Learn the site effect of a site not seen in ``fit`` from a few of its subjects.

        Out-of-sample ComBat: the fitted model (intercepts :math:`\alpha`, covariate effects
        :math:`f`, pooled scale :math:`\sigma`, every known site's :math:`\gamma^*,
        \delta^*`) is kept as it is; the new site's subjects are standardized against it,
        :math:`s = (x - \alpha - f(c))/\sigma`, and the site's :math:`\gamma^*, \delta^*` are
        estimated from their :math:`s` by the same empirical Bayes as in ``fit`` (priors
        across ROIs, so a few subjects suffice: about 20 give shifts within a fraction of
        the residual SD). Afterwards :meth:`transform` and :meth:`inverse_transform` accept
        the site, and ``save`` keeps it. Its row of ``B_hat`` is the mean of :math:`x - f(c)`
        (as neuroHarmonize stores a new site).

        Parameters
        ----------
        X : DataFrame
            Subjects of the new site(s) (at least two per site), with the covariate and ROI
            columns, and the site column unless ``site`` is given.
        site : str, default=None
            None: the sites named in the site column, none of them a known site; a label:
            every row belongs to that one new site.

        Returns
        -------
        self : Harmonizer
            The model, now covering the new site(s).
        """
        check_is_fitted(self, "model_")
        X = self._frame(X, "X")
        name = "X" if site is None else "add_site(site=...)"
        data = self._values(X, "X")
        sites = self._sites(X, "X") if site is None else np.full(len(X), str(site), dtype=object)
        labels, codes, counts = np.unique(sites, return_inverse=True, return_counts=True)
        known = [s for s in labels if s in set(self.sites_)]
        if known:
            raise ValueError(f"{name}: site(s) {known} are already in the model (sites: {list(self.sites_)})")
        if (counts < 2).any():
            raise ValueError(f"{name}: site(s) {list(labels[counts < 2])} have a single subject; a site's "
                             "location and scale need at least two")
        effects = self._covariate_design(self._covariate_values(X, "X")) @ self.model_["B_hat"][len(self.sites_):]
        s = (data - effects - self.model_["stand_mean"].T) / np.sqrt(self.model_["var_pooled"]).T
        estimates = [_combat.site_estimates(s[codes == j], eb=data.shape[1] > 1) for j in range(len(labels))]
        intercepts = np.array([(data - effects)[codes == j].mean(axis=0) for j in range(len(labels))])
        model = self.model_
        n_sites = len(self.sites_)
        self.sites_ = np.concatenate([self.sites_, labels]).astype(object)
        model.update(SITE_labels=self.sites_,
                     B_hat=np.concatenate([model["B_hat"][:n_sites], intercepts, model["B_hat"][n_sites:]]),
                     gamma_star=np.concatenate([model["gamma_star"], [g for g, _ in estimates]]),
                     delta_star=np.concatenate([model["delta_star"], [d for _, d in estimates]]))
        return self

    # -- the maps ------------------------------------------------------------------------
    def _covariate_design(self, values: np.ndarray) -> np.ndarray:
        """The design without its site columns: linear covariates, then each smooth term's basis."""
        covariates, smooth, _ = self._columns()
        linear = values[:, [covariates.index(c) for c in covariates if c not in smooth]]
        if not smooth:
            return linear
        basis = self.model_["smooth_model"]["bsplines_constructor"]
        return np.concatenate([linear, basis.transform(values[:, [covariates.index(c) for c in smooth]])], axis=1)

    def _site_map(self, values: np.ndarray, mean: np.ndarray, site_index: np.ndarray, to_site: bool) -> np.ndarray:
        r"""Site scale -> harmonized (ComBat's ``adjust_data_final``), or back (``to_site``).

        With :math:`m = \alpha + f(c)` (``mean``) and :math:`s = (x - m)/\sigma`: harmonizing
        gives :math:`m + \sigma(s - \gamma^*_j)/\sqrt{\delta^*_j}`, the way back
        :math:`m + \sigma(\gamma^*_j + \sqrt{\delta^*_j}\,s)`; :math:`j` is each row's site.
        """
        sd = np.sqrt(self.model_["var_pooled"]).T
        gamma = self.model_["gamma_star"][site_index]
        scale = np.sqrt(self.model_["delta_star"][site_index])
        s = (values - mean) / sd
        return mean + sd * (gamma + scale * s if to_site else (s - gamma) / scale)

    def _mean(self, X: pd.DataFrame) -> np.ndarray:
        r""":math:`\alpha + f(c)` [subject, ROI]: the fitted GAM without its site terms."""
        design = self._covariate_design(self._covariate_values(X, "X"))
        return self.model_["stand_mean"].T + design @ self.model_["B_hat"][len(self.sites_):]

    def _output(self, X: pd.DataFrame, values: np.ndarray) -> pd.DataFrame:
        return replace_columns(X, self.feature_names_in_, values)

    def transform(self, X) -> pd.DataFrame:
        """``X`` with its ROI columns harmonized (on ``reference_site``'s scale if set).

        Parameters
        ----------
        X : DataFrame
            Subjects with the site, covariate and ROI columns (sites of ``sites_``).

        Returns
        -------
        harmonized : DataFrame
            A copy of ``X`` with the ROI columns replaced by harmonized values.
        """
        check_is_fitted(self, "model_")
        X = self._frame(X, "X")
        data, sites = self._values(X, "X"), self._sites(X, "X")
        site_index = self._site_index(sites, "X")
        mean = self._mean(X)
        harmonized = self._site_map(data, mean, site_index, to_site=False)
        reference = self._reference_index(self.sites_)
        if reference is not None:
            harmonized = self._site_map(harmonized, mean, np.full(len(X), reference), to_site=True)
        return self._output(X, harmonized)

    def inverse_transform(self, X, site=None) -> pd.DataFrame:
        """Harmonized ROI values (as ``transform`` gives them) back to each row's own site.

        Parameters
        ----------
        X : DataFrame
            Harmonized subjects with the covariate and ROI columns, and the site column
            unless ``site`` is given.
        site : str, default=None
            None: each row goes back to its own site (column ``self.site``); a label of
            ``sites_``: all rows go to that site (then the site column, if any, is set to it).

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
        mean = self._mean(X)
        reference = self._reference_index(self.sites_)
        if reference is not None:
            data = self._site_map(data, mean, np.full(len(X), reference), to_site=False)
        out = self._output(X, self._site_map(data, mean, site_index, to_site=True))
        if site is not None and self.site in out.columns:
            out[self.site] = site
        return out

    # -- persistence ---------------------------------------------------------------------
    _TENSORS = ("B_hat", "stand_mean", "var_pooled", "gamma_star", "delta_star")

    def _get_state(self) -> tuple[dict, dict]:
        """(JSON metadata, tensors) of the fitted model; the spline bases are kept as their knots."""
        check_is_fitted(self, "model_")
        params = self.get_params(deep=False)
        seed = params["random_state"]
        params["random_state"] = int(seed) if isinstance(seed, numbers.Integral) else None  # not a RandomState
        if isinstance(params["smooth_bounds"], dict):
            params["smooth_bounds"] = {c: None if b is None else [float(v) for v in b]
                                       for c, b in params["smooth_bounds"].items()}
        covariates, smooth, _ = self._columns()
        metadata = {
            "format": _FORMAT,
            "params": params,
            "feature_names": persistence.names_to_json(self.feature_names_in_),
            "sites": [str(s) for s in self.sites_],
            "covariates": covariates,
            "smooth": smooth,
        }
        tensors = {k: persistence.to_tensor(self.model_[k]) for k in self._TENSORS}
        tensors["penalty"] = persistence.to_tensor(self.penalty_)
        if smooth:
            tensors["knots"] = persistence.to_tensor(np.stack(self._knots()))
        return metadata, tensors

    @classmethod
    def _from_state(cls, metadata: dict, tensors: dict):
        # files written before the vectorized fit carry the n_jobs it no longer has
        params = {k: v for k, v in metadata["params"].items() if k != "n_jobs"}
        return super()._from_state({**metadata, "params": params}, tensors)

    def _set_state(self, metadata: dict, tensors: dict) -> None:
        version = metadata.get("format", 1)
        if version not in (1, _FORMAT):
            raise ValueError(f"this Harmonizer file has format {version}; this roisynth reads formats 1 and {_FORMAT}")
        self.feature_names_in_ = persistence.names_from_json(metadata["feature_names"])
        self.n_features_in_ = len(self.feature_names_in_)
        smooth = metadata["smooth"]
        knots = tensors["knots"].numpy().reshape(len(smooth), -1) if smooth else np.empty((0, 0))
        self._set_model(metadata["sites"], metadata["covariates"], smooth, knots,
                        **{k: tensors[k].numpy() for k in self._TENSORS})
        # format 1 (neuroHarmonize-based fits) did not record the penalties
        self.penalty_ = tensors["penalty"].numpy() if "penalty" in tensors else np.full((self.n_features_in_,
                                                                                          len(smooth)), np.nan)
