"""KDESynthesizer: Gaussian kernel density per cohort and stratum (NeuroSynth-style)."""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.utils.validation import check_is_fitted

from ..utils import persistence
from ..utils._param_validation import Interval, Options, validate_params
from ..utils.validation import check_sample_size, seed_from
from ._cohort_densities import CohortDensitySynthesizer

DEFAULT_GRID = np.logspace(-1, 0.5, 16)  # multiples of Scott's bandwidth tried by cross-validation
_BLOCK = 4_000_000  # squared distances held in memory at once by log_kde


def log_kde(points: np.ndarray, queries: np.ndarray, bandwidths) -> np.ndarray:
    r"""Log-densities (len(bandwidths), len(queries)) of the Gaussian KDE on ``points``.

    log p_h(q) = log Σ_i exp(−‖q − x_i‖² / 2h²) − log n − (d/2) log(2πh²), evaluated exactly in
    log space (shifted by the nearest point), so that far-away queries and small h do not
    underflow; the squared distances are computed once for all bandwidths.

    Parameters
    ----------
    points : ndarray of shape (n, d)
        The kernel centres (training points).
    queries : ndarray of shape (n_queries, d)
        Where the density is evaluated.
    bandwidths : array-like of shape (n_bandwidths,)
        Kernel standard deviations h.

    Returns
    -------
    log_density : ndarray of shape (n_bandwidths, n_queries)
        log p_h(q) for every bandwidth (rows) and query (columns).

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.synthesizers import log_kde
    >>> points = np.array([[0.0, 0.0], [1.0, 0.0]])
    >>> queries = np.array([[0.0, 0.0], [6.0, 0.0]])  # the second is far from both points
    >>> log_kde(points, queries, [0.5, 1.0]).round(2)
    array([[ -1.02, -51.14],
           [ -2.06, -15.03]])
    """
    n, d = points.shape
    h2 = np.asarray(bandwidths, dtype=np.float64) ** 2
    out = np.empty((len(h2), len(queries)))
    squared_norms = (points**2).sum(1)
    step = max(1, _BLOCK // n)
    for start in range(0, len(queries), step):
        q = queries[start : start + step]
        dist = np.maximum((q**2).sum(1)[:, None] + squared_norms - 2 * q @ points.T, 0.0)
        nearest = dist.min(1)
        excess = dist - nearest[:, None]
        for i, v in enumerate(h2):
            out[i, start : start + step] = np.log(np.exp(excess / (-2 * v)).sum(1)) - nearest / (2 * v)
    return out - np.log(n) - 0.5 * d * np.log(2 * np.pi * h2)[:, None]


@dataclass(frozen=True)
class Kernel:
    """The KDE of one (cohort, stratum): its training points and bandwidth h."""

    cohort: str
    stratum: tuple
    points: np.ndarray
    bandwidth: float

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """u = u_i + h ε with i uniform over the training points and ε ~ N(0, I)."""
        rows = rng.integers(len(self.points), size=n)
        return self.points[rows] + self.bandwidth * rng.standard_normal((n, self.points.shape[1]))


def _describe(cohort: str, columns: list, stratum: tuple) -> str:
    if not columns:
        return f"the {cohort} cohort"
    return f"{cohort} stratum " + ", ".join(f"{c}={v!r}" for c, v in zip(columns, stratum))


def _split_strata(table, columns: list, name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ROI columns, strata columns) of a fit table; strata must be present and complete."""
    if not isinstance(table, pd.DataFrame):
        raise TypeError(
            f"{name} must be a DataFrame holding the strata column(s) {columns}, got {type(table).__name__}"
        )
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{name} lacks the strata column(s) {missing}")
    labels = table[columns]
    for column in columns:
        if labels[column].isna().any():
            rows = list(labels.index[labels[column].isna()][:5])
            raise ValueError(f"{name} strata column {column!r} has missing values (rows {rows})")
    return table.drop(columns=columns), labels


def _groups(labels: pd.DataFrame | None, n: int) -> list[tuple[tuple, np.ndarray]]:
    """(stratum values as Python scalars, row positions) of each stratum; one group without strata."""
    if labels is None:
        return [((), np.arange(n))]
    groups = []
    for key, rows in labels.groupby(list(labels.columns), sort=True).indices.items():
        key = tuple(v.item() if isinstance(v, np.generic) else v for v in (key if isinstance(key, tuple) else (key,)))
        for column, value in zip(labels.columns, key):
            if not isinstance(value, (str, numbers.Integral, float)):
                raise TypeError(
                    f"strata column {column!r} holds {type(value).__name__} values; "
                    "use str, int, bool or float categories"
                )
        groups.append((key, rows))
    return groups


class KDESynthesizer(CohortDensitySynthesizer):
    r"""Gaussian kernel density estimate per cohort (and per stratum), after NeuroSynth
    (Chintapalli et al. 2024).

    Each cohort c (and stratum s of the ``strata`` columns) is modelled on
    background-standardized values z = (x − μ) / σ, or on their principal-component scores
    u = C z when ``n_components`` is set, by

    .. math:: p_{cs}(u) = \frac{1}{n_{cs}} \sum_{i=1}^{n_{cs}} \mathcal N(u;\, u_i,\, h_{cs}^2 I).

    Sampling picks a training point u_i uniformly and adds N(0, h² I) noise; PCA scores are
    mapped back by z = Cᵀ u and every sample returns to raw units x = μ + σ ⊙ z. With strata,
    the n rows are split across the strata of the cohort by a Multinomial(n, n_cs / n_c) draw.

    ``bandwidth="cv"`` chooses h_cs by ``cv``-fold cross-validated held-out log-likelihood,
    h = argmax_h Σ_folds Σ_{i ∈ fold} log p_h^(other folds)(u_i), over the grid ``bandwidths``
    or by default σ̄ n^(−1/(d+4)) · logspace(−1, 0.5, 16), i.e. 0.1 to 3.2 times Scott's rule
    (σ̄² the mean per-dimension variance of the group, d its dimension). Log-likelihoods
    are computed exactly in log space (:func:`log_kde`).

    **Privacy: a KDE is its training data.** It stores its training rows and samples perturbed
    copies of them; with a small bandwidth synthetic subjects nearly reproduce real ones (the
    privacy metrics of :mod:`roisynth.metrics` measure this), and a saved model file contains
    the (standardized) training rows themselves, from which the raw rows follow exactly
    (x = μ + σ ⊙ z). The class declares it (``stores_training_data = True``), :meth:`save`
    warns with :class:`~roisynth.exceptions.TrainingDataWarning`, and a release refuses the
    model unless asked explicitly. Do not share a KDE's file.

    Parameters
    ----------
    bandwidth : "cv" or float, default="cv"
        ``"cv"`` (cross-validated, see above) or a positive h in standardized
        (background-SD) units.
    bandwidths : array-like of shape (n_bandwidths,), default=None
        Grid of h values (standardized units) searched by ``"cv"``; None for the default
        grid above.
    cv : int, default=5
        Number of cross-validation folds, shuffled with ``random_state``.
    strata : str or list of str, default=None
        A column name or a list of names (e.g. ``"sex"`` or ``["sex", "site"]``) of
        categorical columns that the fit tables carry besides the ROIs; one KDE is fitted
        per (cohort, stratum). Bin numeric covariates such as age first (``pd.cut``).
    n_components : int or float, default=None
        None (KDE on all standardized ROIs), an int (number of principal components) or a
        float in (0, 1) (fraction of variance to keep). The PCA is fitted on the
        standardized background and shared by both cohorts. Dropped components are not
        generated, so the total variance of the samples shrinks to the kept fraction.
    min_stratum_size : int, default=10
        Smallest (cohort, stratum) group accepted with ``strata``.
    nonnegative : bool, default=True
        Inputs are volumes, so negative values are rejected; a
        :class:`~roisynth.pipeline.SynthesisPipeline` sets False for its transformed values.
    random_state : int, RandomState instance or None, default=None
        Seeds the cross-validation folds and, when ``sample`` gets no ``random_state``,
        sampling.

    Attributes
    ----------
    kernels_ : list of Kernel
        One :class:`Kernel` per (cohort, stratum).
    bandwidth_ : Series
        h of every kernel, indexed by cohort (and the strata columns).
    stratum_sizes_ : Series
        Training rows of every kernel, same index.
    cv_results_ : DataFrame or None
        The cross-validation curves (mean and SD over folds of the held-out log-likelihood
        per subject); None for a fixed bandwidth.
    pca_components_ : ndarray of shape (k, n_features_in_) or None
        The principal axes C; None without ``n_components``.
    pca_explained_variance_ratio_ : ndarray of shape (k,) or None
        Share of the background variance of each kept component.
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
    >>> from roisynth import KDESynthesizer
    >>> model = KDESynthesizer(bandwidth=0.5, random_state=0).fit(cn, ad)
    >>> model.sample(4, cohort="background").shape
    (4, 6)
    """

    stores_training_data = True

    _parameter_constraints = {
        "bandwidth": [Options({"cv"}), Interval(numbers.Real, 0, None, closed="neither")],
        "bandwidths": ["array-like", None],
        "cv": [Interval(numbers.Integral, 2, None, closed="left")],
        "strata": [str, "array-like", None],
        "n_components": [
            Interval(numbers.Integral, 1, None, closed="left"),
            Interval(numbers.Real, 0, 1, closed="neither"),
            None,
        ],
        "min_stratum_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "nonnegative": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        bandwidth="cv",
        bandwidths=None,
        cv: int = 5,
        strata=None,
        n_components=None,
        min_stratum_size: int = 10,
        nonnegative: bool = True,
        random_state=None,
    ):
        self.bandwidth = bandwidth
        self.bandwidths = bandwidths
        self.cv = cv
        self.strata = strata
        self.n_components = n_components
        self.min_stratum_size = min_stratum_size
        self.nonnegative = nonnegative
        self.random_state = random_state

    # -- parameters ----------------------------------------------------------------------
    def _strata_columns(self) -> list:
        if self.strata is None:
            return []
        if isinstance(self.strata, str):
            return [self.strata]
        if not isinstance(self.strata, (list, tuple)) or not self.strata:
            raise TypeError(f"strata must be None, a column name or a non-empty list of names, got {self.strata!r}")
        if len(set(self.strata)) < len(self.strata):
            raise ValueError(f"strata has duplicated columns: {self.strata!r}")
        return list(self.strata)

    def _grid(self) -> np.ndarray | None:
        if self.bandwidths is None:
            return None
        try:
            grid = np.asarray(self.bandwidths, dtype=np.float64)
        except (TypeError, ValueError):
            grid = None
        if grid is None or grid.ndim != 1 or not len(grid) or not (np.isfinite(grid) & (grid > 0)).all():
            raise ValueError(
                f"bandwidths must be a non-empty 1-D sequence of positive numbers, got {self.bandwidths!r}"
            )
        return grid

    # -- fitting -------------------------------------------------------------------------
    def fit(self, background, target=None):
        """Fit one KDE per cohort (and stratum) on raw-unit tables (``target`` optional).

        Parameters
        ----------
        background : DataFrame or ndarray of shape (n_background, n_rois)
            ROI volumes of healthy subjects in raw units; with ``strata``, a DataFrame that
            also holds the strata columns.
        target : DataFrame or ndarray of shape (n_target, n_rois), default=None
            ROI volumes of patients, same columns; None fits the background only.

        Returns
        -------
        self : KDESynthesizer
            The fitted estimator.
        """
        validate_params(self)
        strata, grid = self._strata_columns(), self._grid()
        tables, labels = {"background": background, "target": target}, {}
        if strata:
            for cohort, table in tables.items():
                if table is not None:
                    tables[cohort], labels[cohort] = _split_strata(table, strata, cohort)
        cohorts = self._standardized_cohorts(tables["background"], tables["target"])
        self._fit_pca(cohorts["background"])
        rng = np.random.default_rng(seed_from(self.random_state))
        kernels, curves = [], []
        for cohort, Z in cohorts.items():
            scores = Z if self.pca_components_ is None else Z @ self.pca_components_.T
            for stratum, rows in _groups(labels.get(cohort), len(Z)):
                where = _describe(cohort, strata, stratum)
                if strata and len(rows) < self.min_stratum_size:
                    raise ValueError(
                        f"{where} has {len(rows)} rows, fewer than min_stratum_size={self.min_stratum_size}; "
                        "merge small strata (numeric covariates: bin them, e.g. with pd.cut)"
                    )
                h, curve = self._bandwidth(scores[rows], rng, where, grid)
                kernels.append(Kernel(cohort, stratum, scores[rows], h))
                if curve is not None:
                    for i, (column, value) in enumerate(zip(["cohort", *strata], [cohort, *stratum])):
                        curve.insert(i, column, value)
                    curves.append(curve)
        self._set_kernels(kernels)
        self.cv_results_ = pd.concat(curves, ignore_index=True) if curves else None
        return self

    def _fit_pca(self, Z: np.ndarray) -> None:
        """Principal axes of the standardized background (centred, so scores are C z)."""
        self.pca_components_ = self.pca_explained_variance_ratio_ = None
        if self.n_components is None:
            return
        if isinstance(self.n_components, numbers.Integral) and self.n_components > min(Z.shape):
            raise ValueError(
                f"n_components={self.n_components} exceeds min(rows, ROIs) = {min(Z.shape)} of the background"
            )
        pca = PCA(n_components=self.n_components, svd_solver="full").fit(Z)
        self.pca_components_, self.pca_explained_variance_ratio_ = pca.components_, pca.explained_variance_ratio_

    def _bandwidth(self, points: np.ndarray, rng: np.random.Generator, where: str,
                   grid: np.ndarray | None) -> tuple[float, pd.DataFrame | None]:
        """h of one group: the fixed ``bandwidth``, or the one cross-validated over ``grid``
        (None: the default grid around Scott's rule) and its curve."""
        if self.bandwidth != "cv":
            return float(self.bandwidth), None
        n, d = points.shape
        if n < self.cv:
            raise ValueError(f"{where} has {n} rows, fewer than cv={self.cv} folds")
        if grid is None:
            spread = np.sqrt(points.var(0, ddof=1).mean())
            if not spread > 0:
                raise ValueError(f"{where} has identical rows: a KDE needs spread")
            grid = spread * n ** (-1 / (d + 4)) * DEFAULT_GRID
        folds = np.array_split(rng.permutation(n), self.cv)
        totals = np.empty((self.cv, len(grid)))
        for f, test in enumerate(folds):
            train = np.setdiff1d(np.arange(n), test, assume_unique=True)
            totals[f] = log_kde(points[train], points[test], grid).sum(1)
        per_fold = totals / np.array([len(test) for test in folds])[:, None]
        best = int(np.argmax(totals.sum(0)))
        if self.bandwidths is None and best in (0, len(grid) - 1):
            warnings.warn(
                f"{where}: the cross-validated bandwidth {grid[best]:.3g} is at the "
                f"{'lower' if best == 0 else 'upper'} end of the grid; pass a wider bandwidths=",
                stacklevel=3,
            )
        curve = pd.DataFrame(
            {
                "bandwidth": grid,
                "mean_log_likelihood": totals.sum(0) / n,
                "std_log_likelihood": per_fold.std(0, ddof=1),
                "selected": np.arange(len(grid)) == best,
            }
        )
        return float(grid[best]), curve

    def _set_kernels(self, kernels: list[Kernel]) -> None:
        self.kernels_ = kernels
        strata = self._strata_columns()
        if strata:
            index = pd.MultiIndex.from_tuples([(k.cohort, *k.stratum) for k in kernels], names=["cohort", *strata])
        else:
            index = pd.Index([k.cohort for k in kernels], name="cohort")
        self.bandwidth_ = pd.Series([k.bandwidth for k in kernels], index=index, name="bandwidth")
        self.stratum_sizes_ = pd.Series([len(k.points) for k in kernels], index=index, name="n")

    # -- generation ----------------------------------------------------------------------
    def _select(self, cohort: str, stratum) -> list[Kernel]:
        """The cohort's kernels matching ``stratum`` (a dict column → value, or None for all)."""
        kernels = [k for k in self.kernels_ if k.cohort == cohort]
        if stratum is None:
            return kernels
        strata = self._strata_columns()
        if not strata:
            raise ValueError("stratum= needs a model fitted with strata=...")
        if not isinstance(stratum, dict) or not stratum:
            raise TypeError(f"stratum must be a non-empty dict of strata column -> value, e.g. {{{strata[0]!r}: ...}}")
        unknown = [c for c in stratum if c not in strata]
        if unknown:
            raise ValueError(f"stratum names unknown column(s) {unknown}; the strata are {strata}")
        for column, value in stratum.items():
            known = list(dict.fromkeys(k.stratum[strata.index(column)] for k in kernels))
            if value not in known:
                raise ValueError(f"{column}={value!r} is not a {cohort} stratum; known values: {known}")
        kernels = [k for k in kernels if all(k.stratum[strata.index(c)] == v for c, v in stratum.items())]
        if not kernels:
            raise ValueError(f"no {cohort} training subjects have {stratum}")
        return kernels

    def sample(self, n: int, cohort: str = "target", random_state=None, stratum=None) -> pd.DataFrame:
        """Draw ``n`` synthetic subjects of one cohort, in raw units.

        With ``strata``, the strata columns come first and rows are split across strata in
        the training proportions of the cohort.

        Parameters
        ----------
        n : int
            Number of synthetic subjects.
        cohort : {"target", "background"}, default="target"
            The cohort to sample.
        random_state : int, RandomState instance or None, default=None
            Seed of this call; None uses the model's own ``random_state`` (so an int there
            gives the same sample on every call).
        stratum : dict, default=None
            ``{"sex": "F"}`` samples only the matching strata; None samples them all.

        Returns
        -------
        samples : DataFrame of shape (n, n_strata + n_features_in_)
            The strata columns (with ``strata``), then the ROI volumes.
        """
        cohort = self._check_cohort(cohort)
        n = check_sample_size(n, self.n_features_in_)
        check_is_fitted(self, "kernels_")
        kernels = self._select(cohort, stratum)
        rng = self._rng(random_state)
        sizes = np.array([len(k.points) for k in kernels], dtype=np.float64)
        counts = rng.multinomial(n, sizes / sizes.sum())
        order = rng.permutation(n)
        scores = np.concatenate([k.sample(m, rng) for k, m in zip(kernels, counts)])[order]
        out = self._frame(scores if self.pca_components_ is None else scores @ self.pca_components_)
        strata = self._strata_columns()
        if not strata:
            return out
        labels = pd.DataFrame([k.stratum for k in kernels], columns=strata)
        labels = labels.iloc[np.repeat(np.arange(len(kernels)), counts)[order]].reset_index(drop=True)
        return pd.concat([labels, out], axis=1)

    # -- persistence ---------------------------------------------------------------------
    def _training_data_note(self) -> str:
        check_is_fitted(self, "kernels_")
        return (f"the {int(self.stratum_sizes_.sum())} training rows of this KDESynthesizer (its kernels, "
                "standardized: the raw rows follow exactly from the stored mean_ and scale_)")

    def _get_state(self):
        check_is_fitted(self, "kernels_")
        metadata, tensors = super()._get_state()
        metadata["kernels"] = [
            {"cohort": k.cohort, "stratum": list(k.stratum), "bandwidth": k.bandwidth} for k in self.kernels_
        ]
        metadata["cv_results"] = None if self.cv_results_ is None else self.cv_results_.to_dict(orient="list")
        tensors |= {f"kernel{i}.points": persistence.to_tensor(k.points) for i, k in enumerate(self.kernels_)}
        if self.pca_components_ is not None:
            tensors["pca_components_"] = persistence.to_tensor(self.pca_components_)
            tensors["pca_explained_variance_ratio_"] = persistence.to_tensor(self.pca_explained_variance_ratio_)
        return metadata, tensors

    def _set_state(self, metadata, tensors):
        super()._set_state(metadata, tensors)
        self._set_kernels(
            [
                Kernel(k["cohort"], tuple(k["stratum"]), tensors[f"kernel{i}.points"].numpy(), k["bandwidth"])
                for i, k in enumerate(metadata["kernels"])
            ]
        )
        self.cv_results_ = None if metadata["cv_results"] is None else pd.DataFrame(metadata["cv_results"])
        pca = "pca_components_" in tensors
        self.pca_components_ = tensors["pca_components_"].numpy() if pca else None
        self.pca_explained_variance_ratio_ = tensors["pca_explained_variance_ratio_"].numpy() if pca else None

    def _check_state(self) -> None:
        """The base invariants, and kernels of 2-D points (one column per feature, or per PCA
        component) with positive bandwidths."""
        super()._check_state()
        width = self.n_features_in_ if self.pca_components_ is None else len(self.pca_components_)
        if self.pca_components_ is not None and self.pca_components_.shape != (width, self.n_features_in_):
            raise ValueError(f"pca_components_ has shape {self.pca_components_.shape}, expected "
                             f"(n_components, {self.n_features_in_})")
        for i, kernel in enumerate(self.kernels_):
            if kernel.points.ndim != 2 or kernel.points.shape[1] != width or not len(kernel.points):
                raise ValueError(f"kernel{i}.points has shape {kernel.points.shape}, expected (n, {width})")
            if not kernel.bandwidth > 0:
                raise ValueError(f"kernel {i} has bandwidth {kernel.bandwidth!r}; it must be positive")
