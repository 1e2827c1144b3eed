r"""CausalROIModel: a structural causal model of metadata → ROI volumes with conditional flows.

The probabilistic graph module of PCGM (*Integrating Anatomical Priors into a Causal
Diffusion Model*, §3.1), on ROI tables. The graph (every node given its parents)::

    age ─┬──────────────► diagnosis ──┐
         ├──► ICV ────────────────────┼──► ROI volumes (one joint node)
    sex ─┴────────────────────────────┘

age, sex: roots. diagnosis ← age, sex. ICV ← age, sex. ROIs ← age, sex, ICV, diagnosis.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..base import COHORTS, BaseSynthesizer
from ..nn import TrainingHistory, seeded, threads, train
from ..nn.flows import CausalROIModule
from ..utils import persistence
from ..utils._param_validation import Interval, validate_params
from ..utils.covariates import SEX_CODES, covariate_matrix
from ..utils.validation import _rows, check_choice, check_sample_size, seed_from

_ROLES = ("age", "sex", "icv")


class CausalROIModel(BaseSynthesizer):
    r"""Structural causal model with conditional normalizing flows (zuko) as mechanisms.

    Graph (module docstring): age, sex roots; diagnosis ← age, sex; ICV ← age, sex;
    ROIs ← age, sex, ICV, diagnosis. Mechanisms, on standardized a = age, i = log ICV and
    r = log ROI volumes:

    * sex ~ Bernoulli(p̂); a = T_a⁻¹(u_a), u_a ~ N(0, 1);
    * diagnosis ~ Categorical(softmax(L [a, s])) (multinomial logistic regression);
    * i = T_i⁻¹(u_i | a, s), u_i ~ N(0, 1);
    * r = T_r⁻¹(u_r | a, s, i, onehot(d)), u_r ~ N(0, I_p),

    each T a conditional flow (linear-Gaussian layer + spline coupling layers, see
    :mod:`roisynth.nn.flows`), all fitted jointly by maximum likelihood. The ROIs are ONE
    p-dimensional node with one flow: a flow per ROI would make their exogenous noises
    independent and lose the strong correlations between regions.

    Counterfactuals (:meth:`counterfactual`) follow abduction–action–prediction:
    u_i = T_i(i | a, s), u_r = T_r(r | pa_r) (abduction); set the intervened nodes (action);
    recompute their descendants i' = T_i⁻¹(u_i | a', s'), r' = T_r⁻¹(u_r | pa_r') with the
    same noise (prediction). Non-descendants keep their values. The diagnosis is categorical:
    its mechanism is not invertible, so its noise cannot be recovered; it is a node one
    intervenes on (do(diagnosis = AD) needs no noise), and when only its parents change it
    keeps its observed value (the counterfactual of a label is not identified).

    Like every synthesizer it is fitted with ``fit(background, target)``, on the two tables
    stacked (background rows first); the diagnosis is a node of the graph, so the model learns
    p(diagnosis | age, sex) from the stacked rows: the healthy level (``healthy``) is the
    background cohort, the other levels the target.

    Parameters
    ----------
    rois : list of str, default=None
        ROI columns; None: every numeric column of ``background`` that is not a covariate or
        the diagnosis.
    covariates : sequence of str, default=("age", "sex", "icv")
        Names of the (age, sex, ICV) columns, in that order. Sex is 0/1 or text (F/M).
    diagnosis : str, default="diagnosis"
        The diagnosis column (any labels, e.g. CN/MCI/AD); optional in the fit tables.
    healthy : str, default="CN"
        The healthy level of ``diagnosis``: the label of every background row.
    transforms : int, default=2
        Spline coupling layers per flow (0: linear-Gaussian SCM).
    bins : int, default=8
        Spline bins.
    n_hidden : int, default=64
        Width of the two hidden layers of the spline parameter networks.
    epochs : int, default=300
        Most training epochs (Adam).
    batch_size : int, default=256
        Rows per batch.
    learning_rate : float, default=3e-3
        Adam step size.
    validation_fraction : float, default=0.15
        Share of subjects held out for early stopping on the validation negative
        log-likelihood; 0 trains all ``epochs``.
    eval_every : int, default=5
        Early stopping checks every ``eval_every`` epochs.
    patience : int, default=20
        Training stops after ``patience`` epochs without improvement, restoring the best
        weights.
    n_threads : int or None, default=1
        Torch threads during fit and inference (None: leave torch's setting).
    verbose : bool, default=True
        Show a progress bar.
    random_state : int, RandomState instance or None, default=None
        Int for reproducible fits and samples; concurrent fits in one process run one at a time (torch's
        generator is process-wide), so they stay bit-identical when run from several threads.

    Attributes
    ----------
    feature_names_in_ : ndarray of shape (n_features_in_,)
        ROI columns.
    mean_, scale_ : ndarray of shape (n_features_in_,)
        Mean and SD of the logs of the ROI volumes.
    covariates_ : list of str
        The (age, sex, ICV) column names.
    diagnosis_ : str
        The diagnosis column.
    classes_ : list of str
        Diagnosis levels.
    healthy_ : str or None
        The healthy level (None if absent).
    covariate_mean_, covariate_scale_ : ndarray of shape (2,)
        Mean and SD of age and log ICV.
    p_male_ : float
        Share of sex code 1.
    sex_labels_ : list
        The user's labels of sex codes 0 and 1.
    module_ : CausalROIModule
        The fitted :class:`~roisynth.nn.flows.CausalROIModule` (float64).
    history_ : dict of str to TrainingHistory
        ``{"covariates": ..., "rois": ...}``: the :class:`~roisynth.nn.TrainingHistory` of the
        two mechanism groups (the likelihood factorizes, so each has its own early stopping).

    Examples
    --------
    >>> from roisynth import CausalROIModel, datasets
    >>> cohort = datasets.load_example()
    >>> rois = datasets.roi_names()[:4]
    >>> healthy = cohort.diagnosis == "CN"
    >>> scm = CausalROIModel(rois=rois, transforms=0, epochs=2, verbose=False, random_state=0)
    >>> scm = scm.fit(cohort[healthy], cohort[~healthy])
    >>> scm.classes_
    ['AD', 'CN', 'MCI']
    >>> scm.counterfactual(cohort[healthy].iloc[:2], do={"diagnosis": "AD"}).diagnosis.tolist()
    ['AD', 'AD']
    """

    can_pair = True
    _parameter_constraints = {
        "rois": ["array-like", None],
        "covariates": ["array-like"],
        "diagnosis": [str],
        "healthy": [str],
        "transforms": [Interval(numbers.Integral, 0, None, closed="left")],
        "bins": [Interval(numbers.Integral, 2, None, closed="left")],
        "n_hidden": [Interval(numbers.Integral, 1, None, closed="left")],
        "epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "validation_fraction": [Interval(numbers.Real, 0, 0.5, closed="left")],
        "eval_every": [Interval(numbers.Integral, 1, None, closed="left")],
        "patience": [Interval(numbers.Real, 0, None, closed="left")],
        "n_threads": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "verbose": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        rois=None,
        covariates=_ROLES,
        diagnosis: str = "diagnosis",
        healthy: str = "CN",
        transforms: int = 2,
        bins: int = 8,
        n_hidden: int = 64,
        epochs: int = 300,
        batch_size: int = 256,
        learning_rate: float = 3e-3,
        validation_fraction: float = 0.15,
        eval_every: int = 5,
        patience: int = 20,
        n_threads: int | None = 1,
        verbose: bool = True,
        random_state=None,
    ):
        self.rois = rois
        self.covariates = covariates
        self.diagnosis = diagnosis
        self.healthy = healthy
        self.transforms = transforms
        self.bins = bins
        self.n_hidden = n_hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.eval_every = eval_every
        self.patience = patience
        self.n_threads = n_threads
        self.verbose = verbose
        self.random_state = random_state

    # -- fitting -------------------------------------------------------------------------
    def fit(self, background, target=None):
        """Fit all mechanisms on the healthy and the patient subjects.

        The model is fitted on the two tables stacked (``background`` rows first), each
        subject labelled by its ``diagnosis`` column; a table without that column has the
        label ``healthy`` (background) or ``"patient"`` (target).

        Parameters
        ----------
        background : DataFrame
            Healthy subjects: the covariate and ROI columns (raw units, mm³), and optionally
            the diagnosis column, which must then hold ``healthy`` on every row.
        target : DataFrame, default=None
            Patients, with the same columns; their diagnosis column may hold several levels
            (e.g. MCI and AD). None fits the healthy population only.

        Returns
        -------
        self : CausalROIModel
            The fitted model.
        """
        validate_params(self)
        covariates = [self.covariates] if isinstance(self.covariates, str) else [str(c) for c in self.covariates]
        if len(covariates) != 3:
            raise ValueError(f"covariates must name the (age, sex, icv) columns, got {covariates}")
        tables = {"background": background, "target": target}
        for cohort, table in tables.items():
            if not isinstance(table, pd.DataFrame) and (table is not None or cohort == "background"):
                raise TypeError(f"{cohort} must be a pandas DataFrame with the covariate and ROI columns, "
                                f"got {type(table).__name__}")
        rois = self._roi_columns(background, covariates)
        tables = {cohort: table for cohort, table in tables.items() if table is not None}
        for cohort, table in tables.items():
            missing = [c for c in [*covariates, *rois] if c not in table.columns]
            if missing:
                raise ValueError(f"{cohort} has no column(s) {missing[:5]}" + (" ..." if len(missing) > 5 else ""))
        labels = np.concatenate([self._cohort_labels(table, cohort) for cohort, table in tables.items()])
        table = pd.concat([t[[*covariates, *rois]] for t in tables.values()])
        self._validate_fit_tables(table[rois], None)
        self.covariates_, self.diagnosis_ = covariates, self.diagnosis
        self.classes_ = sorted(set(labels))
        self.healthy_ = self.healthy if self.healthy in self.classes_ else None
        others = [c for c in self.classes_ if c != self.healthy]
        self.cohorts_ = tuple(c for c, present in zip(COHORTS, (self.healthy_ is not None, bool(others))) if present)
        self.sex_labels_ = self._sex_labels(table[covariates[1]])

        age, sex, icv = covariate_matrix(table, covariates, "table").T
        self._check_positive(icv, covariates[2], table.index)
        log_rois = np.log(self._check_positive(table[rois].to_numpy(np.float64), "ROI", table.index, rois))
        self.mean_, self.scale_ = log_rois.mean(0), log_rois.std(0, ddof=1)
        covs = np.column_stack([age, np.log(icv)])
        self.covariate_mean_, self.covariate_scale_ = covs.mean(0), covs.std(0, ddof=1)
        if (self.covariate_scale_ <= 0).any():
            constant = [c for c, s in zip(covariates[::2], self.covariate_scale_) if s <= 0]
            raise ValueError(f"table column(s) {constant} are constant")
        self.p_male_ = float(sex.mean())
        data = self._tensors(age, sex, icv, np.searchsorted(self.classes_, labels), log_rois, torch.float32)

        rng = check_random_state(self.random_state)
        n = len(table)
        n_val = int(round(self.validation_fraction * n))
        if self.validation_fraction > 0 and (n_val < 2 or n - n_val < 8):
            raise ValueError(f"too few rows ({n}) to hold out a validation split; lower validation_fraction")
        order = torch.from_numpy(rng.permutation(n))
        train_rows, val_rows = order[n_val:], order[:n_val]
        seed = seed_from(rng)
        self.history_ = {}
        with threads(self.n_threads), seeded(seed):
            self.module_ = self._build_module()
            for name, width in (("covariates", 3), ("rois", self.n_features_in_)):
                mechanism = getattr(self.module_, name)
                self.history_[name] = train(
                    mechanism, lambda *batch, m=mechanism, w=width: -m.log_prob(*batch).mean() / w,
                    lambda: (tuple(x[rows] for x in data) for rows in train_rows[torch.randperm(len(train_rows))]
                             .split(self.batch_size) if len(rows) > 1),
                    epochs=self.epochs, lr=self.learning_rate, betas=(0.9, 0.999),
                    validate=(
                        (lambda m=mechanism: -m.log_prob(*(x[val_rows] for x in data)).mean().item())
                        if n_val
                        else None
                    ),
                    eval_every=self.eval_every, patience=self.patience, verbose=self.verbose,
                    desc=f"{type(self).__name__} ({name})",
                )
        self.module_.double()
        return self

    def _roi_columns(self, background: pd.DataFrame, covariates: list[str]) -> list[str]:
        """``rois``, or every numeric column of ``background`` that is not a covariate or the diagnosis."""
        if self.rois is not None:
            return [str(c) for c in self.rois]
        types = pd.api.types
        candidates = [c for c in background.columns if c not in {*covariates, self.diagnosis}]
        for c in candidates:   # a ROI column with a few text cells is an error, not a column to drop silently
            column = background[c]
            if types.is_numeric_dtype(column) or types.is_bool_dtype(column):
                continue
            present = column.dropna()
            parsed = pd.to_numeric(present, errors="coerce")
            if len(present) and parsed.notna().mean() > 0.5:
                bad = present[parsed.isna()]
                raise ValueError(f"background column {c!r} is numeric except for row(s) {list(bad.index[:5])} "
                                 f"({list(bad.astype(str)[:3])}): fix these cells, or name the ROI columns (rois=)")
        return [c for c in candidates
                if types.is_numeric_dtype(background[c]) and not types.is_bool_dtype(background[c])]

    def _cohort_labels(self, table: pd.DataFrame, cohort: str) -> np.ndarray:
        """Diagnosis labels of one fit table (text): its ``diagnosis`` column, else the cohort's
        default; background rows must all be ``healthy``."""
        if self.diagnosis not in table.columns:
            return np.full(len(table), self.healthy if cohort == "background" else "patient", dtype=object)
        labels = self._labels(table[self.diagnosis], self.diagnosis)
        sick = labels != self.healthy
        if cohort == "background" and sick.any():
            raise ValueError(f"background rows {_rows(table.index, sick)} have {self.diagnosis} "
                             f"{sorted(set(labels[sick]))[:5]}, not the healthy level {self.healthy!r}; "
                             "patients go in target")
        return labels

    def _build_module(self) -> CausalROIModule:
        return CausalROIModule(self.n_features_in_, len(self.classes_), self.transforms, self.bins, self.n_hidden)

    # -- encoding ------------------------------------------------------------------------
    @staticmethod
    def _labels(column: pd.Series, name: str) -> np.ndarray:
        if column.isna().any():
            rows = list(column.index[column.isna()][:5])
            raise ValueError(f"diagnosis column {name!r} has missing values in rows {rows}")
        return column.astype(str).to_numpy()

    @staticmethod
    def _sex_labels(column: pd.Series) -> list:
        """The user's labels of sex codes 0 and 1 (``[0, 1]`` for a numeric column)."""
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            return [0, 1]
        labels = ["F", "M"]
        for value in column.dropna().astype(str).unique():
            labels[int(SEX_CODES.get(value.strip().lower(), 0))] = value
        return labels

    @staticmethod
    def _check_positive(values: np.ndarray, name: str, index: pd.Index, columns=None) -> np.ndarray:
        bad = ~(values > 0)
        if bad.any():
            rows = list(index[bad.reshape(len(index), -1).any(1)][:5])
            where = "" if columns is None else f" column(s) {[c for c, b in zip(columns, bad.any(0)) if b][:5]}"
            raise ValueError(f"{name} volumes must be positive (they are modelled on the log scale);{where} "
                             f"rows {rows}")
        return values

    def _tensors(self, age, sex, icv, codes, log_rois, dtype=torch.float64) -> tuple[torch.Tensor, ...]:
        """Standardized (age, sex, log ICV, diagnosis code, log ROIs) as tensors."""
        if not np.isin(sex, (0.0, 1.0)).all():
            raise ValueError(f"sex column {self.covariates_[1]!r} must be coded 0/1 or F/M")
        covs = (np.column_stack([age, np.log(icv)]) - self.covariate_mean_) / self.covariate_scale_

        def column(v) -> torch.Tensor:
            return torch.as_tensor(np.asarray(v, dtype=np.float64)[:, None], dtype=dtype)

        return (column(covs[:, 0]), column(sex), column(covs[:, 1]), torch.as_tensor(codes, dtype=torch.long),
                torch.as_tensor(self._standardize(log_rois), dtype=dtype))

    def _encode(self, X, name: str) -> tuple[pd.DataFrame, tuple[torch.Tensor, ...]]:
        check_is_fitted(self, "module_")
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"{name} must be a pandas DataFrame with covariate, diagnosis and ROI columns")
        missing = [c for c in [*self.covariates_, self.diagnosis_, *self.feature_names_in_] if c not in X.columns]
        if missing:
            raise ValueError(f"{name} is missing column(s) {missing[:5]}" + (" ..." if len(missing) > 5 else ""))
        age, sex, icv = covariate_matrix(X, self.covariates_, name).T
        self._check_positive(icv, self.covariates_[2], X.index)
        _, rois = self._validate_X(X[list(self.feature_names_in_)], name)
        return X, self._tensors(age, sex, icv, self._codes(self._labels(X[self.diagnosis_], self.diagnosis_)),
                                np.log(self._check_positive(rois, "ROI", X.index, self.feature_names_in_)))

    def _codes(self, labels: np.ndarray) -> np.ndarray:
        unknown = sorted(set(labels) - set(self.classes_))
        if unknown:
            raise ValueError(f"unknown diagnosis level(s) {unknown[:5]}; the model knows {self.classes_}")
        return np.searchsorted(self.classes_, labels)

    def _interventions(self, do, n: int, index: pd.Index | None = None) -> dict[str, np.ndarray]:
        """``do`` as {role: standardized values (n,)}; role is age, sex, icv or diagnosis."""
        if do is None:
            return {}
        if not isinstance(do, Mapping):
            raise TypeError(
                f"do must be a dict such as {{{self.diagnosis_!r}: {self.classes_[-1]!r}}}, got {type(do).__name__}"
            )
        roles = dict(zip(self.covariates_, _ROLES)) | {self.diagnosis_: "diagnosis"}
        out = {}
        for column, value in do.items():
            if column not in roles:
                raise ValueError(f"cannot intervene on {column!r}: the graph's intervenable nodes are {list(roles)} "
                                 "(the ROI volumes form one joint node)")
            if isinstance(value, pd.Series) and index is not None:
                value = value.reindex(index)
            values = np.asarray(value, dtype=object).ravel()
            if values.size == 1:
                values = np.repeat(values, n)
            if len(values) != n:
                raise ValueError(f"do[{column!r}] has {len(values)} values for {n} subjects")
            role = roles[column]
            if role == "diagnosis":
                out[role] = self._codes(self._labels(pd.Series(values), column))
                continue
            number = covariate_matrix(pd.DataFrame({column: list(values)}), [column], f"do[{column!r}]")[:, 0]
            if role == "sex":
                if not np.isin(number, (0.0, 1.0)).all():
                    raise ValueError(f"do[{column!r}] must be 0/1 or F/M")
                out[role] = number
            else:
                j = 0 if role == "age" else 1
                if role == "icv":
                    number = np.log(self._check_positive(number, column, pd.RangeIndex(n)))
                out[role] = (number - self.covariate_mean_[j]) / self.covariate_scale_[j]
        return out

    def _output(self, age, sex, icv, codes, rois, like: pd.DataFrame | None = None) -> pd.DataFrame:
        """Raw-unit table: ``like`` with its graph columns replaced, or a new table."""
        age_col, sex_col, icv_col = self.covariates_
        covs = np.column_stack([age.numpy()[:, 0], icv.numpy()[:, 0]]) * self.covariate_scale_ + self.covariate_mean_
        values = {
            age_col: covs[:, 0],
            sex_col: np.asarray(self.sex_labels_, dtype=object)[sex.numpy()[:, 0].astype(int)],
            icv_col: np.exp(covs[:, 1]),
            self.diagnosis_: np.asarray(self.classes_, dtype=object)[codes.numpy()],
        }
        roi_values = np.exp(rois.numpy() * self.scale_ + self.mean_)
        if like is None:
            if self.sex_labels_ == [0, 1]:
                values[sex_col] = values[sex_col].astype(float)
            out = pd.DataFrame(values)
            return pd.concat([out, pd.DataFrame(roi_values, columns=list(self.feature_names_in_))], axis=1)
        out = like.copy()
        for column, value in values.items():
            keep_dtype = column in (sex_col, self.diagnosis_)
            out[column] = pd.Series(value, index=out.index).astype(out[column].dtype) if keep_dtype else value
        out[list(self.feature_names_in_)] = roi_values
        return out

    # -- generation ----------------------------------------------------------------------
    def sample(self, n: int, cohort: str | None = None, do=None, random_state=None) -> pd.DataFrame:
        """Draw ``n`` whole synthetic subjects (age, sex, ICV, diagnosis, ROIs) ancestrally.

        Parameters
        ----------
        n : int
            Number of synthetic subjects.
        cohort : {"background", "target"} or None, default=None
            None (the population), ``"background"`` (diagnosis = the healthy level) or
            ``"target"`` (diagnosis drawn from p(d | a, s) restricted to the other levels).
        do : dict, default=None
            Interventions {column: value} fixed instead of drawn, e.g.
            ``{"diagnosis": "AD"}`` or ``{"age": 80}``.
        random_state : int, RandomState instance or None, default=None
            Seed of this call; None uses the model's own ``random_state``.

        Returns
        -------
        samples : DataFrame of shape (n, 4 + n_features_in_)
            The covariate and diagnosis columns, then the ROI volumes (mm³).
        """
        check_is_fitted(self, "module_")
        n = check_sample_size(n, self.n_features_in_)
        if cohort is not None:
            self._check_cohort(cohort)
        do = self._interventions(do, n)
        generator = torch.Generator().manual_seed(self._sampling_seed(random_state))
        m, r = self.module_.covariates, self.module_.rois

        def noise(width: int) -> torch.Tensor:
            return torch.randn(n, width, generator=generator, dtype=torch.float64)

        def given(role: str, draw) -> torch.Tensor:
            value = draw()  # drawn even when intervened on: the other nodes keep their noise
            return value if role not in do else torch.as_tensor(do[role], dtype=value.dtype).reshape(value.shape)

        with threads(self.n_threads), torch.no_grad():
            age = given("age", lambda: m.age().transform.inv(noise(1)))
            sex = given(
                "sex", lambda: (torch.rand(n, 1, generator=generator, dtype=torch.float64) < self.p_male_).double()
            )
            demo = torch.cat([age, sex], 1)
            logits = m.diagnosis(demo)
            if cohort is not None:
                is_healthy = torch.as_tensor(np.asarray(self.classes_) == self.healthy_)
                logits = logits.masked_fill(is_healthy if cohort == "target" else ~is_healthy, -torch.inf)
            codes = given("diagnosis", lambda: torch.multinomial(logits.softmax(1), 1, generator=generator)[:, 0])
            icv = given("icv", lambda: m.icv(demo).transform.inv(noise(1)))
            rois = r(age, sex, icv, codes).transform.inv(noise(self.n_features_in_))
        return self._output(age, sex, icv, codes, rois)

    def sample_paired(self, n: int, random_state=None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``n`` synthetic patients and their healthy twins (do(diagnosis = healthy)).

        Parameters
        ----------
        n : int
            Number of synthetic patients.
        random_state : int, RandomState instance or None, default=None
            Seed of this call; None uses the model's own ``random_state``.

        Returns
        -------
        healthy, disease : tuple of two DataFrames of shape (n, 4 + n_features_in_)
            The healthy twins and the synthetic patients, row i one person.
        """
        self._check_cohort("background")
        disease = self.sample(n, "target", random_state=random_state)
        return self.counterfactual(disease, {self.diagnosis_: self.healthy_}), disease

    # -- counterfactuals -----------------------------------------------------------------
    def _abduct(self, age, sex, icv, codes, rois) -> tuple[torch.Tensor, torch.Tensor]:
        """u_icv = T_i(i | a, s), u_r = T_r(r | a, s, i, d)."""
        m, r = self.module_.covariates, self.module_.rois
        with threads(self.n_threads), torch.no_grad():
            return m.icv(torch.cat([age, sex], 1)).transform(icv), r(age, sex, icv, codes).transform(rois)

    def abduct(self, X) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Exogenous noise of each subject of ``X``, N(0, I) under the model.

        Parameters
        ----------
        X : DataFrame
            Subjects with the covariate, diagnosis and ROI columns.

        Returns
        -------
        u_icv, u_rois : tuple of two DataFrames
            u_icv as a one-column table (the ICV column's name) and u_rois (the ROI
            columns), the index of ``X``.
        """
        df, encoded = self._encode(X, "X")
        u_icv, u_rois = self._abduct(*encoded)
        return (pd.DataFrame(u_icv.numpy(), index=df.index, columns=[self.covariates_[2]]),
                pd.DataFrame(u_rois.numpy(), index=df.index, columns=list(self.feature_names_in_)))

    def counterfactual(self, X, do=None, to: str | None = None) -> pd.DataFrame:
        """What each subject of ``X`` would have looked like under ``do``.

        Parameters
        ----------
        X : DataFrame
            Subjects with the covariate, diagnosis and ROI columns (other columns are kept).
        do : dict, default=None
            {column: value or one value per row} for age, sex, ICV and/or diagnosis, e.g.
            ``{"diagnosis": "AD"}``, ``{"age": X.age + 10}``, several at once.
        to : {"background"} or None, default=None
            ``"background"`` is shorthand for do(diagnosis = the healthy level).

        Returns
        -------
        counterfactual : DataFrame
            A copy of ``X`` with the intervened columns set and their descendants (ICV,
            ROIs) recomputed by abduction–action–prediction (class docstring).
        """
        check_is_fitted(self, "module_")
        if to is not None:
            check_choice(to, "to", ("background",))
            self._check_cohort("background")
            do = {**(do or {}), self.diagnosis_: self.healthy_}
        if not do:
            raise ValueError("counterfactual needs an intervention: do={column: value}")
        df, (age, sex, icv, codes, rois) = self._encode(X, "X")
        do = self._interventions(do, len(df), df.index)
        u_icv, u_rois = self._abduct(age, sex, icv, codes, rois)
        m, r = self.module_.covariates, self.module_.rois
        with threads(self.n_threads), torch.no_grad():
            age = torch.as_tensor(do["age"])[:, None] if "age" in do else age
            sex = torch.as_tensor(do["sex"])[:, None] if "sex" in do else sex
            codes = torch.as_tensor(do["diagnosis"]) if "diagnosis" in do else codes
            if "icv" in do:
                icv = torch.as_tensor(do["icv"])[:, None]
            else:
                icv = m.icv(torch.cat([age, sex], 1)).transform.inv(u_icv)
            rois = r(age, sex, icv, codes).transform.inv(u_rois)
        return self._output(age, sex, icv, codes, rois, like=df)

    # -- persistence ---------------------------------------------------------------------
    def _get_state(self) -> tuple[dict, dict]:
        check_is_fitted(self, "module_")
        metadata, tensors = super()._get_state()
        metadata |= {"covariates": self.covariates_, "diagnosis": self.diagnosis_, "classes": self.classes_,
                     "healthy": self.healthy_, "sex_labels": self.sex_labels_, "p_male": self.p_male_,
                     "history": {name: h.to_dict() for name, h in self.history_.items()}}
        tensors |= {"covariate_mean_": persistence.to_tensor(self.covariate_mean_),
                    "covariate_scale_": persistence.to_tensor(self.covariate_scale_)}
        tensors |= {f"module.{k}": v for k, v in self.module_.state_dict().items()}
        return metadata, tensors

    def _set_state(self, metadata: dict, tensors: dict) -> None:
        super()._set_state(metadata, tensors)
        self.covariates_, self.diagnosis_ = list(metadata["covariates"]), metadata["diagnosis"]
        self.classes_, self.healthy_ = list(metadata["classes"]), metadata["healthy"]
        self.sex_labels_, self.p_male_ = list(metadata["sex_labels"]), float(metadata["p_male"])
        self.history_ = {name: TrainingHistory(**h) for name, h in metadata["history"].items()}
        self.covariate_mean_ = tensors["covariate_mean_"].numpy()
        self.covariate_scale_ = tensors["covariate_scale_"].numpy()
        self.module_ = self._build_module().double()
        self.module_.load_state_dict({k[len("module."):]: v for k, v in tensors.items() if k.startswith("module.")})
        self.module_.eval()
