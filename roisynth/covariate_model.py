r"""CovariateModel: a generative model of a cohort's covariates (site, age, sex, ICV, ...).

Synthetic subjects need covariates, and copying real subjects' (site, age, sex, ICV) would
attach a quasi-identifier of a real person to every synthetic row. :class:`CovariateModel`
learns their joint distribution instead and keeps only parameters.

The model
---------
Columns are *categorical* (text, booleans, or numbers with at most ``max_levels`` integer
values, such as sex coded 0/1) or *continuous*. The categorical columns form cells
:math:`c` (the combinations seen in training, e.g. site × sex) with probabilities
:math:`P(c) = n_c / n`; the continuous columns, standardized to :math:`x`, follow a Gaussian
mixture whose components are shared by all cells and whose weights depend on the cell:

.. math:: p(c, x) = P(c) \sum_{k=1}^{K} w_{ck}\, \mathcal N(x;\, \mu_k, \Sigma_k).

So continuous covariates may differ between cells (older subjects at one site, larger ICV in
men) without a separate mixture per small cell. The parameters are fitted by EM with weak
priors — a Dirichlet(:math:`1 + \alpha`) prior on each cell's weights, :math:`\kappa_0`
pseudo-observations pulling the means towards the overall mean, and a ridge on the
covariances — so no component mean can equal a training subject's values, and :math:`K` is
chosen by BIC. Draws outside the support (the training range of each continuous column,
widened by 2.5 % of its width on either side) are redrawn; columns whose training values are
all whole numbers (age in whole years) are rounded to whole numbers.

Conditional sampling
--------------------
``sample(n, conditions=...)`` fixes categorical values or sets of values (``sex="F"``,
``site=["site1", "site2"]``), continuous values (``age=75``) or ranges (``age=(70, 80)``:
:math:`70 \le` age :math:`< 80`), or takes a DataFrame of per-row conditions. Fixed
continuous values are conditioned on exactly: for component :math:`k` with the fixed block
:math:`A` and the free block :math:`B`,

.. math:: p(c, k \mid x_A) \propto P(c)\, w_{ck}\, \mathcal N(x_A;\, \mu_{kA}, \Sigma_{kAA}),\qquad
          x_B \mid x_A, k \sim \mathcal N\big(\mu_{kB} + \Sigma_{kBA}\Sigma_{kAA}^{-1}(x_A - \mu_{kA}),\;
          \Sigma_{kBB} - \Sigma_{kBA}\Sigma_{kAA}^{-1}\Sigma_{kAB}\big);

ranges are met by redrawing. Conditions outside the training support (an unseen category, a
value outside the support, a range the model gives almost no probability) are a
``ValueError`` naming the column, never a silent extrapolation.

Private fit
-----------
Under a private :class:`~roisynth.SynthesisPipeline`, :func:`fit_private` fits one model per
cohort from a single Gaussian release: for every cohort and every cell (all combinations of
the categorical levels, which are treated as public like the column names) the Gram matrix
:math:`\sum_i x_i x_i^\top` of :math:`x = (1, \tilde z)`, the continuous covariates clipped
to their public ranges and scaled to [-1, 1]: the cell's count, sums and sums of products. A
subject is in one cohort and one cell and moves its Gram matrix by :math:`x x^\top`, of
Frobenius norm :math:`\lVert x\rVert^2 \le 1 + d`: the L2 sensitivity
(:mod:`roisynth.privacy._sufficient_stats`). From the released matrices (post-processing):
:math:`P(c)` is the cell's count over the cohort's (cells with a count ≤ 0 are dropped); each
cell is a single Gaussian (its own mixture component, ``weights_`` the identity) whose moments
are the cell's plus :math:`\kappa` pseudo-subjects of the cohort's pooled moments
(:math:`\kappa` = the noise SD of a count, so that small cells lean on the cohort); its
covariance's eigenvalues are floored at ``RIDGE``. The support is the public ranges, and draws
are not rounded (whether all training ages are whole numbers is a fact about the data).
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .utils._param_validation import Interval, validate_params
from .utils.validation import check_random_state, seed_from

#: Prior strengths of the EM fit: Dirichlet pseudo-count per cell weight, pseudo-observations
#: of each mean at the overall mean, and the ridge added to covariances (standardized units).
ALPHA, KAPPA, RIDGE = 1.0, 0.01, 1e-3
#: Fraction of a continuous column's training width added on either side of its support.
SUPPORT_MARGIN = 0.025
_MAX_REDRAWS = 200


def is_categorical(values: pd.Series, max_levels: int = 10) -> bool:
    """Whether a covariate column is read as categorical: text, booleans, or numbers with at most
    ``max_levels`` distinct whole-number values (sex coded 0/1, a few scanner codes).

    Parameters
    ----------
    values : Series
        The column.
    max_levels : int, default=10
        Most distinct whole numbers of a categorical numeric column.

    Returns
    -------
    bool

    Examples
    --------
    >>> import pandas as pd
    >>> from roisynth.covariate_model import is_categorical
    >>> [is_categorical(pd.Series(values)) for values in (["F", "M"], [0, 1, 1], [71.5, 64.2])]
    [True, True, False]
    """
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return True
    unique = pd.unique(values.dropna())
    return len(unique) <= max_levels and bool(np.all(np.mod(unique.astype(float), 1) == 0))


def _json_value(value):
    """A categorical level as a JSON value (numpy scalars to Python ones)."""
    return value.item() if isinstance(value, np.generic) else value


class CovariateModel(BaseEstimator):
    """Generative model of a table of covariates: categorical cells × a Gaussian mixture.

    See the module docstring for the model, its priors and conditional sampling.

    Parameters
    ----------
    categorical : list of str, default=None
        The categorical columns; None: text and boolean columns, and numeric columns with at
        most ``max_levels`` distinct whole-number values.
    max_components : int, default=4
        Most mixture components; the number is chosen by BIC from 1 to this.
    max_levels : int, default=10
        Numeric columns with at most this many whole-number values are categorical.
    random_state : int, RandomState instance or None, default=None
        Seed of the EM initialization and of :meth:`sample` when it gets none.

    Attributes
    ----------
    columns_ : list of str
        The modelled columns, in the order of the training table.
    categorical_ : list of str
        The categorical columns.
    continuous_ : list of str
        The continuous columns.
    cells_ : list of tuple
        The combinations of categorical values seen in training.
    cell_probabilities_ : ndarray of shape (n_cells,)
        Their frequencies.
    weights_ : ndarray of shape (n_cells, n_components)
        Mixture weights per cell.
    means_, covariances_ : ndarray
        Component means (standardized units) and covariances.
    bounds_ : ndarray of shape (n_continuous, 2)
        Support of each continuous column (raw units).

    Examples
    --------
    >>> import pandas as pd
    >>> from roisynth import datasets
    >>> from roisynth.covariate_model import CovariateModel
    >>> table = datasets.load_example()[["site", "age", "sex", "icv"]]
    >>> model = CovariateModel(random_state=0).fit(table)
    >>> model.categorical_, model.continuous_
    (['site', 'sex'], ['age', 'icv'])
    >>> women = model.sample(4, conditions={"sex": "F", "age": (70, 80)}, random_state=0)
    >>> set(women.sex), bool(women.age.between(70, 80).all())
    ({'F'}, True)
    """

    _parameter_constraints = {
        "categorical": ["array-like", None],
        "max_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_levels": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, *, categorical=None, max_components=4, max_levels=10, random_state=None):
        self.categorical = categorical
        self.max_components = max_components
        self.max_levels = max_levels
        self.random_state = random_state

    # -- fitting --------------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y=None):
        """Fit the cells' frequencies and the mixture (EM, components chosen by BIC).

        Parameters
        ----------
        X : DataFrame
            One row per subject, the covariate columns (no missing values).
        y : None
            Ignored (scikit-learn convention).

        Returns
        -------
        self : CovariateModel
            The fitted model.
        """
        validate_params(self)
        if not isinstance(X, pd.DataFrame) or X.shape[1] == 0 or len(X) < 2:
            raise ValueError("CovariateModel.fit needs a DataFrame with covariate columns and at least 2 rows")
        missing = X.columns[X.isna().any()].tolist()
        if missing:
            raise ValueError(f"covariate column(s) {missing} have missing values")
        unknown = [c for c in (self.categorical or ()) if c not in X.columns]
        if unknown:
            raise ValueError(f"categorical: column(s) {unknown} are not in the table")
        self.columns_ = list(X.columns)
        chosen = self.categorical
        self.categorical_ = [c for c in self.columns_
                             if (c in chosen if chosen is not None else is_categorical(X[c], self.max_levels))]
        self.continuous_ = [c for c in self.columns_ if c not in self.categorical_]
        self.dtypes_ = {c: str(X[c].dtype) for c in self.columns_}
        cells, codes, counts = self._cells(X)
        self.cells_ = cells
        self.cell_probabilities_ = counts / counts.sum()
        values = X[self.continuous_].to_numpy(dtype=np.float64)
        self.whole_ = [bool(np.all(np.mod(v, 1) == 0)) for v in values.T]
        low, high = values.min(0), values.max(0)
        margin = SUPPORT_MARGIN * np.where(high > low, high - low, np.maximum(np.abs(high), 1.0))
        self.bounds_ = np.stack([low - margin, high + margin], axis=1)
        self.center_ = values.mean(0)
        self.scale_ = np.where(values.std(0) > 0, values.std(0), 1.0)
        self._fit_mixture((values - self.center_) / self.scale_, codes, len(cells))
        return self

    def _cells(self, X: pd.DataFrame):
        if not self.categorical_:
            return [()], np.zeros(len(X), dtype=int), np.array([float(len(X))])
        keys = list(X[self.categorical_].itertuples(index=False, name=None))
        cells = sorted(set(keys), key=repr)
        index = {cell: i for i, cell in enumerate(cells)}
        codes = np.array([index[k] for k in keys])
        counts = np.bincount(codes, minlength=len(cells)).astype(float)
        return [tuple(map(_json_value, c)) for c in cells], codes, counts

    def _fit_mixture(self, z: np.ndarray, codes: np.ndarray, n_cells: int) -> None:
        d = z.shape[1]
        if d == 0:
            self.weights_, self.means_, self.covariances_ = np.ones((n_cells, 1)), np.zeros((1, 0)), np.zeros((1, 0, 0))
            return
        rng = check_random_state(self.random_state)
        best = None
        for k in range(1, min(self.max_components, max(1, len(z) // (2 * (d + 1)))) + 1):
            fit = _mixture_em(z, codes, n_cells, k, seed_from(rng))
            n_params = n_cells * (k - 1) + k * d + k * d * (d + 1) / 2
            bic = -2 * fit[-1] + n_params * np.log(len(z))
            if best is None or bic < best[0]:
                best = (bic, fit)
        self.weights_, self.means_, self.covariances_, self.log_likelihood_ = best[1]

    # -- sampling -------------------------------------------------------------------------
    def sample(self, n=None, conditions=None, random_state=None) -> pd.DataFrame:
        """Draw synthetic covariates, optionally under conditions.

        Parameters
        ----------
        n : int, default=None
            Number of rows; with a DataFrame of ``conditions``, its length (``n`` must then be
            None or equal).
        conditions : dict or DataFrame, default=None
            A dict of column → a fixed value, a list of allowed categorical values, or a
            ``(low, high)`` range of a continuous column (low ≤ value < high; None for an open
            end); or a DataFrame with one row of fixed values per synthetic subject (missing
            cells are drawn).
        random_state : int, RandomState instance or None, default=None
            Seed of this call; None uses the model's ``random_state``.

        Returns
        -------
        covariates : DataFrame
            The modelled columns, in their training order and types.

        Raises
        ------
        ValueError
            For an unknown column, a value or range outside the training support, or a
            combination of conditions that no training subject came near.
        """
        check_is_fitted(self, "weights_")
        rng = check_random_state(self.random_state if random_state is None else random_state)
        fixed, allowed, ranges, n = self._parse_conditions(conditions, n)
        cont = np.full((n, len(self.continuous_)), np.nan)
        for j, column in enumerate(self.continuous_):
            if column in fixed:
                cont[:, j] = fixed[column]
        z_fixed = (cont - self.center_) / self.scale_
        cell_ok = self._allowed_cells(fixed, allowed, n)
        out_cells = np.zeros(n, dtype=int)
        out = cont.copy()
        todo = np.arange(n)
        for _ in range(_MAX_REDRAWS):
            cells, drawn = self._draw(z_fixed[todo], cell_ok[todo], rng)
            values = drawn * self.scale_ + self.center_
            values[:, self.whole_] = np.round(values[:, self.whole_])
            values = np.where(np.isnan(cont[todo]), values, cont[todo])
            ok = self._inside(values, ranges)
            out[todo[ok]], out_cells[todo[ok]] = values[ok], cells[ok]
            todo = todo[~ok]
            if not len(todo):
                break
        else:
            raise ValueError(f"the conditions {conditions!r} lie outside the training support: fewer than 1 in "
                             f"{_MAX_REDRAWS} draws of the fitted covariate model meets them")
        return self._frame(out_cells, out)

    def _parse_conditions(self, conditions, n):
        fixed, allowed, ranges = {}, {}, {}
        if conditions is None:
            conditions = {}
        if isinstance(conditions, pd.DataFrame):
            if n is not None and n != len(conditions):
                raise ValueError(f"n={n} differs from the {len(conditions)} rows of conditions")
            n = len(conditions)
            self._check_columns(conditions.columns)
            for column in conditions.columns:
                values = conditions[column]
                if values.notna().any():
                    fixed[column] = values.to_numpy(dtype=object if column in self.categorical_ else float)
        elif isinstance(conditions, dict):
            self._check_columns(conditions)
            for column, value in conditions.items():
                if isinstance(value, tuple):
                    if column in self.categorical_ or len(value) != 2:
                        raise ValueError(f"conditions[{column!r}]: a (low, high) range is for continuous columns")
                    ranges[column] = (-np.inf if value[0] is None else float(value[0]),
                                      np.inf if value[1] is None else float(value[1]))
                elif isinstance(value, (list, set, frozenset, np.ndarray, pd.Index)):
                    if column not in self.categorical_:
                        raise ValueError(f"conditions[{column!r}]: give a continuous column a value or a "
                                         "(low, high) range")
                    allowed[column] = list(value)
                else:
                    fixed[column] = value
        else:
            raise TypeError("conditions must be a dict of column -> value/range/list or a DataFrame")
        if n is None:
            raise ValueError("n is required unless conditions is a DataFrame")
        if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        n = int(n)
        for column, value in list(fixed.items()):
            value = np.broadcast_to(np.asarray(value, dtype=object if column in self.categorical_ else float), (n,))
            fixed[column] = value
            if column in self.continuous_:
                low, high = self.bounds_[self.continuous_.index(column)]
                given = value[~np.isnan(value)]
                if ((given < low) | (given > high)).any():
                    raise ValueError(f"conditions[{column!r}] = {given[(given < low) | (given > high)][0]:g} lies "
                                     f"outside the training support [{low:.4g}, {high:.4g}]")
        for column, (low, high) in ranges.items():
            support = self.bounds_[self.continuous_.index(column)]
            if low >= high or high <= support[0] or low > support[1]:
                raise ValueError(f"conditions[{column!r}] = [{low:g}, {high:g}) does not meet the training support "
                                 f"[{support[0]:.4g}, {support[1]:.4g}]")
        return fixed, allowed, ranges, n

    def _check_columns(self, columns) -> None:
        unknown = [c for c in columns if c not in self.columns_]
        if unknown:
            raise ValueError(f"conditions name column(s) {unknown} that the covariate model does not have "
                             f"(it models {self.columns_})")

    def _allowed_cells(self, fixed, allowed, n) -> np.ndarray:
        """(n, n_cells) booleans: the cells each row may be drawn in."""
        ok = np.ones((n, len(self.cells_)), dtype=bool)
        for j, column in enumerate(self.categorical_):
            levels = np.array([cell[j] for cell in self.cells_], dtype=object)
            if column in allowed:
                ok &= np.isin(levels, np.array(allowed[column], dtype=object))[None, :]
                if not ok.any():
                    raise ValueError(f"conditions[{column!r}] = {allowed[column]!r}: none of these values is among "
                                     f"the training values {sorted(map(str, set(levels)))}")
            if column in fixed:
                values = fixed[column]
                given = pd.notna(values)
                match = values[:, None] == levels[None, :]
                ok &= np.where(given[:, None], match, True)
                unseen = given & ~match.any(axis=1)
                if unseen.any():
                    raise ValueError(f"conditions[{column!r}] = {values[unseen][0]!r} is not among the training "
                                     f"values {sorted(map(str, set(levels)))}")
        empty = ~ok.any(axis=1)
        if empty.any():
            raise ValueError("the categorical conditions of row(s) "
                             f"{np.flatnonzero(empty)[:5].tolist()} combine values no training subject has")
        return ok

    def _draw(self, z_fixed: np.ndarray, cell_ok: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
        """One draw per row of (cell, standardized continuous values), given the fixed values."""
        n, d = z_fixed.shape
        n_components = self.means_.shape[0]
        with np.errstate(divide="ignore"):  # a weight of 0 (a private fit's one component per cell) is log 0
            logits = np.log(self.cell_probabilities_)[None, :, None] + np.log(self.weights_)[None]
        logits = np.where(cell_ok[:, :, None], logits, -np.inf)
        out = np.empty((n, d))
        keys = [tuple(p) for p in ~np.isnan(z_fixed)]
        groups = []  # rows sharing which values are fixed, conditioned once
        for pattern in set(keys):
            rows = np.flatnonzero([k == pattern for k in keys])
            given = np.array(pattern, dtype=bool)
            mean, chol, log_density = _conditional(self.means_, self.covariances_, given, z_fixed[rows][:, given])
            logits[rows] += log_density[:, None, :]
            groups.append((rows, given, mean, chol))
        flat = logits.reshape(n, -1) + rng.gumbel(size=(n, logits.shape[1] * n_components))
        cells, components = np.divmod(flat.argmax(1), n_components)
        for rows, given, mean, chol in groups:
            k = components[rows]
            noise = rng.standard_normal((len(rows), int((~given).sum())))
            out[np.ix_(rows, ~given)] = mean[np.arange(len(rows)), k] + np.einsum("nij,nj->ni", chol[k], noise)
            out[np.ix_(rows, given)] = z_fixed[np.ix_(rows, given)]
        return cells, out

    def _inside(self, values: np.ndarray, ranges: dict) -> np.ndarray:
        ok = ((values >= self.bounds_[:, 0]) & (values <= self.bounds_[:, 1])).all(axis=1)
        for column, (low, high) in ranges.items():
            j = self.continuous_.index(column)
            ok &= (values[:, j] >= low) & (values[:, j] < high)
        return ok

    def _frame(self, cells: np.ndarray, values: np.ndarray) -> pd.DataFrame:
        columns = {}
        for j, column in enumerate(self.categorical_):
            columns[column] = pd.Series([self.cells_[c][j] for c in cells]).astype(self.dtypes_[column])
        for j, column in enumerate(self.continuous_):
            series = pd.Series(values[:, j])
            columns[column] = series.astype(self.dtypes_[column]) if self.whole_[j] else series
        return pd.DataFrame(columns)[self.columns_]

    # -- persistence ----------------------------------------------------------------------
    def to_json(self) -> dict:
        """The fitted parameters as a JSON-able dict (no training row, no training value).

        Returns
        -------
        dict
            Everything :meth:`from_json` needs.
        """
        check_is_fitted(self, "weights_")
        arrays = ("cell_probabilities_", "weights_", "means_", "covariances_", "bounds_", "center_", "scale_")
        return {
            "params": self.get_params(),
            "columns": self.columns_, "categorical": self.categorical_, "continuous": self.continuous_,
            "dtypes": self.dtypes_, "whole": self.whole_, "cells": [list(c) for c in self.cells_],
            **{name: getattr(self, name).tolist() for name in arrays},
        }

    @classmethod
    def from_json(cls, state: dict) -> CovariateModel:
        """A fitted model from :meth:`to_json`'s dict, its shapes checked.

        Parameters
        ----------
        state : dict
            The output of :meth:`to_json`.

        Returns
        -------
        CovariateModel
            The fitted model.
        """
        model = cls(**state["params"])
        model.columns_, model.categorical_, model.continuous_ = state["columns"], state["categorical"], \
            state["continuous"]
        model.dtypes_, model.whole_ = state["dtypes"], state["whole"]
        model.cells_ = [tuple(c) for c in state["cells"]]
        for name in ("cell_probabilities_", "weights_", "means_", "covariances_", "bounds_", "center_", "scale_"):
            setattr(model, name, np.asarray(state[name], dtype=np.float64))
        n_cells, d, k = len(model.cells_), len(model.continuous_), np.size(model.weights_) // max(len(model.cells_), 1)
        shapes = {"cell_probabilities_": (n_cells,), "weights_": (n_cells, k), "means_": (k, d),
                  "covariances_": (k, d, d), "bounds_": (d, 2), "center_": (d,), "scale_": (d,)}
        for name, shape in shapes.items():
            array = getattr(model, name)
            if array.size != int(np.prod(shape)):
                raise ValueError(f"covariate model: {name} has {array.size} values, expected shape {shape}")
            setattr(model, name, array.reshape(shape))
        return model


def fit_private(models: list[CovariateModel], tables: list[pd.DataFrame], releases) -> list[CovariateModel]:
    """Fit one covariate model per cohort from one release of per-cell Gram matrices (module docstring).

    Parameters
    ----------
    models : list of CovariateModel
        One unfitted model per cohort, with ``categorical`` given.
    tables : list of DataFrame
        The cohorts' covariate tables (same columns, disjoint subjects).
    releases : GaussianReleases
        The Gaussian mechanism and its tally (:class:`~roisynth.privacy._sufficient_stats.GaussianReleases`);
        one release, whatever the number of cohorts and cells (each subject is in one).

    Returns
    -------
    list of CovariateModel
        ``models``, fitted.
    """
    import itertools

    from .privacy._sufficient_stats import covariate_ranges

    for model in models:
        validate_params(model)
        if model.categorical is None:
            raise ValueError("a private covariate model needs its categorical columns named (categorical=[...])")
    columns = list(tables[0].columns)
    categorical = [c for c in columns if c in models[0].categorical]
    continuous = [c for c in columns if c not in categorical]
    pooled = pd.concat(tables, ignore_index=True)
    missing = pooled.columns[pooled.isna().any()].tolist()
    if missing:
        raise ValueError(f"covariate column(s) {missing} have missing values")
    levels = [sorted(pd.unique(pooled[c]), key=repr) for c in categorical]
    cells = list(itertools.product(*levels))
    index = {cell: i for i, cell in enumerate(cells)}
    groups = np.concatenate([g * len(cells) + np.array([index[k] for k in t[categorical].itertuples(index=False,
                                                                                                   name=None)],
                                                       dtype=np.intp)
                             for g, t in enumerate(tables)])
    x, middle, half = releases.design(pooled, continuous, "covariate table")
    sensitivity = float(x.shape[1])             # ||x||² <= 1 + d
    gram = releases.release(np.einsum("ig,ia,ib->gab", np.eye(len(tables) * len(cells))[groups], x, x),
                            sensitivity, symmetric=True).reshape(len(tables), len(cells), x.shape[1], x.shape[1])
    kappa = releases.noise_multiplier * sensitivity
    ranges = covariate_ranges(continuous, releases.privacy.covariate_bounds)
    for model, table, cohort in zip(models, tables, gram):
        counts = cohort[:, 0, 0]
        kept = np.flatnonzero(counts > 0)
        if not len(kept):
            raise ValueError("the released cell counts of a cohort are all <= 0: the budget is too small for its "
                             "covariate model; raise epsilon or preprocessing_share")
        total = cohort.sum(axis=0)
        smoothed = cohort[kept] + kappa * total / max(total[0, 0], 1.0)
        mean = smoothed[:, 0, 1:] / smoothed[:, :1, 0]
        covariances = smoothed[:, 1:, 1:] / smoothed[:, :1, :1] - np.einsum("ca,cb->cab", mean, mean)
        values, vectors = np.linalg.eigh(covariances)
        covariances = np.einsum("cab,cb,cdb->cad", vectors, np.maximum(values, RIDGE), vectors)
        model.columns_, model.categorical_, model.continuous_ = columns, categorical, continuous
        model.dtypes_ = {c: str(table[c].dtype) for c in columns}
        model.cells_ = [tuple(map(_json_value, cells[c])) for c in kept]
        model.cell_probabilities_ = counts[kept] / counts[kept].sum()
        model.whole_ = [False] * len(continuous)
        model.bounds_, model.center_, model.scale_ = ranges, middle, half
        if continuous:
            model.weights_, model.means_, model.covariances_ = np.eye(len(kept)), mean, covariances
        else:
            model.weights_, model.means_, model.covariances_ = np.ones((len(kept), 1)), np.zeros((1, 0)), \
                np.zeros((1, 0, 0))
    return models


def _log_gaussian(z: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """log N(z; mean, cov) per row for each component: (n, K)."""
    chol = np.linalg.cholesky(cov)
    diff = z[:, None, :] - mean[None]
    solved = np.linalg.solve(chol[None], diff[..., None])[..., 0]
    log_det = 2 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(1)
    return -0.5 * ((solved**2).sum(-1) + log_det + z.shape[1] * np.log(2 * np.pi))


def _conditional(means, covs, given, z_given):
    """Per-row conditional means (n, K, d_free), Cholesky factors (K, d_free, d_free) and
    log N(z_given; component marginals) (n, K) of the free block given the fixed one."""
    free = ~given
    if not given.any():
        return (np.broadcast_to(means[None][..., free], (len(z_given), *means[..., free].shape)),
                np.linalg.cholesky(covs[:, free][:, :, free]), np.zeros((len(z_given), len(means))))
    s_aa = covs[:, given][:, :, given]
    s_ba = covs[:, free][:, :, given]
    gain = np.linalg.solve(s_aa, np.transpose(s_ba, (0, 2, 1))).transpose(0, 2, 1)     # (K, d_b, d_a)
    diff = z_given[:, None, :] - means[None][..., given]                               # (n, K, d_a)
    mean = means[None][..., free] + np.einsum("kba,nka->nkb", gain, diff)
    cov = covs[:, free][:, :, free] - gain @ np.transpose(s_ba, (0, 2, 1))
    cov = 0.5 * (cov + np.transpose(cov, (0, 2, 1))) + 1e-12 * np.eye(int(free.sum()))
    chol = np.linalg.cholesky(cov) if free.any() else np.zeros((len(means), 0, 0))
    return mean, chol, _log_gaussian(z_given, means[..., given], s_aa)


def _mixture_em(z: np.ndarray, codes: np.ndarray, n_cells: int, k: int, seed: int, max_iter: int = 300,
                tol: float = 1e-7):
    """EM of the cell-weighted Gaussian mixture (priors in ``ALPHA``, ``KAPPA``, ``RIDGE``).

    Returns (weights (n_cells, k), means (k, d), covariances (k, d, d), log-likelihood).
    """
    from sklearn.cluster import KMeans

    n, d = z.shape
    labels = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(z) if k > 1 else np.zeros(n, int)
    resp = np.eye(k)[labels]
    previous = -np.inf
    for _ in range(max_iter):
        counts = np.zeros((n_cells, k))
        np.add.at(counts, codes, resp)
        weights = (counts + ALPHA) / (counts.sum(1, keepdims=True) + k * ALPHA)
        nk = resp.sum(0)
        means = resp.T @ z / (nk + KAPPA)[:, None]
        diff = z[:, None, :] - means[None]
        covs = np.einsum("nk,nki,nkj->kij", resp, diff, diff) / (nk + KAPPA)[:, None, None] + RIDGE * np.eye(d)
        log_joint = np.log(weights[codes]) + _log_gaussian(z, means, covs)
        top = log_joint.max(1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(log_joint - top).sum(1))
        resp = np.exp(log_joint - log_norm[:, None])
        total = log_norm.sum()
        if total - previous < tol * n:
            break
        previous = total
    return weights, means, covs, float(total)
