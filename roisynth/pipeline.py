"""SynthesisPipeline: preprocessing steps + a synthesizer, raw tables in, synthetic tables out (mm³).

``make_pipeline(Harmonizer(), CovariateResidualizer(), ContrastiveVAE())`` fits every
preprocessing step on the healthy (background) cohort — site effects and covariate effects
are estimated where no disease confounds them — passes both cohorts through them and fits the
synthesizer on the result. Sampling runs the other way: synthetic values get covariates
(drawn from the training cohorts' empirical joint distribution, or given), covariate effects
are added back and site effects re-applied, so synthetic subjects come out in mm³ at their
site, at one chosen site, or harmonized.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

from .base import COHORTS, BaseSynthesizer, Persistent, nested_from_state, nested_state
from .preprocessing.residualization import find_rois
from .utils._param_validation import validate_params
from .utils.persistence import names_from_json, names_to_json
from .utils.validation import (
    check_choice,
    check_finite_output,
    check_numeric_table,
    check_random_state,
    check_sample_size,
)

HARMONIZED = "harmonized"


def _warn_unprotected_covariates(steps) -> None:
    """Warn when a later step removes a covariate that an earlier harmonizer did not protect:
    ComBat then takes site differences in that covariate for scanner effects, and removing
    the covariate's effect afterwards puts them back."""
    protected = None
    for _, step in steps:
        if getattr(step, "site", None) is not None:
            protected = set(getattr(step, "covariates", ()))
        elif protected is not None:
            missing = [c for c in getattr(step, "covariates", ()) if c not in protected]
            if missing:
                warnings.warn(
                    f"covariate(s) {missing} are removed after harmonization but not given to the harmonizer; "
                    "add them to its covariates, or site differences come back",
                    UserWarning,
                    stacklevel=3,
                )


def make_pipeline(*steps) -> SynthesisPipeline:
    """A :class:`SynthesisPipeline` with steps named after their classes (lower case).

    Parameters
    ----------
    *steps : estimators
        Preprocessing transformers (``fit``, ``transform``, ``inverse_transform``) followed
        by a roisynth synthesizer.

    Returns
    -------
    pipeline : SynthesisPipeline
        The unfitted pipeline, ``rois=None`` and ``random_state=None``.

    Examples
    --------
    >>> from roisynth import CovariateResidualizer, LinearContrastive, make_pipeline
    >>> pipe = make_pipeline(CovariateResidualizer(), LinearContrastive(n_common=2, n_salient=2))
    >>> [name for name, _ in pipe.steps]
    ['covariateresidualizer', 'linearcontrastive']
    """
    return SynthesisPipeline([(type(step).__name__.lower(), step) for step in steps])


class SynthesisPipeline(Persistent, BaseEstimator):
    """Preprocessing transformers followed by a synthesizer (the last step).

    Parameters
    ----------
    steps : list of (str, estimator) tuples
        ``(name, estimator)`` pairs; all but the last have ``fit``, ``transform`` and
        ``inverse_transform``; the last is a roisynth synthesizer.
    rois : list of str, default=None
        ROI columns; None: those of the 139 usual MUSE ROIs in the background table.
    random_state : int, RandomState instance or None, default=None
        Seed for drawing covariates of synthetic subjects.

    Attributes
    ----------
    steps_ : list of (str, estimator) tuples
        The fitted clones of ``steps``.
    feature_names_in_ : ndarray of shape (n_rois,)
        The ROI columns.
    covariate_columns_ : list of str
        The site and covariate columns the preprocessing steps read.
    covariates_ : dict of str to DataFrame
        The training rows' covariates per cohort, from which synthetic subjects draw theirs.

    Examples
    --------
    >>> from roisynth import CovariateResidualizer, LinearContrastive, SynthesisPipeline, datasets
    >>> cohort = datasets.load_example()
    >>> rois = datasets.roi_names()[:6]
    >>> model = LinearContrastive(n_common=2, n_salient=2)
    >>> steps = [("residualizer", CovariateResidualizer()), ("model", model)]
    >>> pipe = SynthesisPipeline(steps, rois=rois, random_state=0)
    >>> pipe = pipe.fit(cohort[cohort.diagnosis == "CN"], cohort[cohort.diagnosis != "CN"])
    >>> list(pipe.sample(3).columns[:3])
    ['age', 'sex', 'icv']
    """

    _parameter_constraints = {
        "steps": [list],
        "rois": ["array-like", None],
        "random_state": ["random_state"],
    }

    def __init__(self, steps, *, rois=None, random_state=None):
        self.steps = steps
        self.rois = rois
        self.random_state = random_state

    # -- structure ------------------------------------------------------------------------
    @property
    def synthesizer(self):
        """The last step: the fitted synthesizer once fitted, else the one in ``steps``."""
        return (self.steps_ if hasattr(self, "steps_") else self.steps)[-1][1]

    @property
    def can_pair(self) -> bool:
        """Whether the synthesizer makes paired samples and counterfactual twins."""
        return self.synthesizer.can_pair

    def _check_steps(self) -> None:
        if not self.steps or any(not isinstance(s, tuple) or len(s) != 2 for s in self.steps):
            raise TypeError("steps must be a non-empty list of (name, estimator) pairs")
        if not isinstance(self.steps[-1][1], BaseSynthesizer):
            raise TypeError(f"the last step must be a roisynth synthesizer, got {type(self.steps[-1][1]).__name__}")
        for name, step in self.steps[:-1]:
            if not all(hasattr(step, m) for m in ("fit", "transform", "inverse_transform")):
                raise TypeError(f"step {name!r} needs fit, transform and inverse_transform")

    def _covariate_columns(self, steps) -> list[str]:
        columns = []
        for _, step in steps:
            for column in [getattr(step, "site", None), *getattr(step, "covariates", ())]:
                if column is not None and column not in columns:
                    columns.append(column)
        return columns

    @property
    def _site_column(self) -> str | None:
        return next((step.site for _, step in self.steps_[:-1] if getattr(step, "site", None)), None)

    # -- fitting --------------------------------------------------------------------------
    def fit(self, background: pd.DataFrame, target: pd.DataFrame | None = None):
        """Fit on tables holding the ROI columns and every step's covariate (and site) columns.

        Every preprocessing step is fitted on the background (or on both cohorts for a step
        with ``fit_on="all"``), both cohorts pass through it, and the synthesizer is fitted
        on the result.

        Parameters
        ----------
        background : DataFrame
            Healthy subjects: ROI, covariate and site columns.
        target : DataFrame, default=None
            Patients, same columns.

        Returns
        -------
        self : SynthesisPipeline
            The fitted pipeline.
        """
        validate_params(self)
        self._check_steps()
        for name, table in (("background", background), ("target", target)):
            if table is not None and not isinstance(table, pd.DataFrame):
                raise TypeError(f"{name} must be a DataFrame with covariate and ROI columns")
        rois = find_rois(background, self.rois, include_ventricles=False)
        steps = [(name, clone(step)) for name, step in self.steps]
        for _, step in steps[:-1]:
            if "rois" in step.get_params() and step.get_params()["rois"] is None:
                step.set_params(rois=rois)
        if len(steps) > 1 and "nonnegative" in steps[-1][1].get_params():
            steps[-1][1].set_params(nonnegative=False)  # residuals and harmonized values may be < 0
        covariates = self._covariate_columns(steps[:-1])
        _warn_unprotected_covariates(steps[:-1])
        tables = {"background": background, "target": target}
        for cohort, table in tables.items():
            missing = [] if table is None else [c for c in covariates + rois if c not in table.columns]
            if missing:
                raise ValueError(f"{cohort} lacks the column(s) {missing[:5]}")
            if table is not None:   # raw volumes: finite, non-negative, plausible (steps see residuals)
                check_numeric_table(table[rois], cohort)
        for _, step in steps[:-1]:
            pooled = tables["background"] if getattr(step, "fit_on", "background") == "background" or target is None \
                else pd.concat([tables["background"], tables["target"]])
            step.fit(pooled)
            tables = {k: None if t is None else step.transform(t) for k, t in tables.items()}
        steps[-1][1].fit(tables["background"][rois], None if target is None else tables["target"][rois])
        self.steps_ = steps
        self.feature_names_in_ = np.asarray(rois, dtype=object)
        self.covariate_columns_ = covariates
        self.covariates_ = {
            k: t[covariates].reset_index(drop=True)
            for k, t in (("background", background), ("target", target))
            if t is not None
        }
        return self

    # -- the two directions ----------------------------------------------------------------
    def _forward(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "steps_")
        if not isinstance(X, pd.DataFrame):
            raise TypeError("X must be a DataFrame with covariate and ROI columns")
        missing = [c for c in self.covariate_columns_ + list(self.feature_names_in_) if c not in X.columns]
        if missing:
            raise ValueError(f"X lacks the column(s) {missing[:5]}")
        for _, step in self.steps_[:-1]:
            X = step.transform(X)
        return X

    def _backward(self, values: pd.DataFrame, covariates: pd.DataFrame, site) -> pd.DataFrame:
        """Model-space ROI values + covariates -> raw units at each row's site / one site / harmonized."""
        table = pd.concat([covariates.reset_index(drop=True), values.reset_index(drop=True)], axis=1)
        table = table.set_axis(covariates.index)
        for _, step in reversed(self.steps_[:-1]):
            if getattr(step, "site", None) is None:
                table = step.inverse_transform(table)
            elif site != HARMONIZED:
                table = step.inverse_transform(table, site=site)
        site_column = self._site_column
        if site_column is not None and site is not None:
            table[site_column] = site
        return self._clip_negative(table)

    def _clip_negative(self, table: pd.DataFrame) -> pd.DataFrame:
        """Volumes in raw units, never negative: negative values set to 0 with a warning naming them.

        Adding covariate and site effects back can take a small ROI of an extreme synthetic
        subject below 0 mm³; a volume cannot be negative, so such values become 0 and a
        ``RuntimeWarning`` says how many and where. Non-finite values are an error.
        """
        rois = list(self.feature_names_in_)
        values = table[rois].to_numpy(dtype=np.float64)
        check_finite_output(values, type(self).__name__, "volumes")
        negative = values < 0
        if negative.any():
            columns = [c for c, bad in zip(rois, negative.any(axis=0)) if bad]
            warnings.warn(f"{int(negative.sum())} synthetic volume(s) below 0 mm³ in column(s) {columns[:5]} were set "
                          "to 0 (covariate and site effects added back took them below 0)", RuntimeWarning,
                          stacklevel=3)
            table[rois] = np.maximum(values, 0.0)
        return table

    def _draw_covariates(self, n, cohort: str, covariates, rng) -> pd.DataFrame:
        if covariates is not None:
            if not isinstance(covariates, pd.DataFrame):
                raise TypeError("covariates must be a DataFrame with one row per synthetic subject")
            missing = [c for c in self.covariate_columns_ if c not in covariates.columns]
            if missing:
                raise ValueError(f"covariates lacks the column(s) {missing}")
            return covariates[self.covariate_columns_].reset_index(drop=True)
        pool = self.covariates_[cohort]
        n = check_sample_size(n, len(self.feature_names_in_) + len(self.covariate_columns_))
        return pool.iloc[rng.randint(0, len(pool), n)].reset_index(drop=True)

    def _check_site(self, site):
        if site is None or site == HARMONIZED:
            return site
        for _, step in self.steps_[:-1]:
            if getattr(step, "site", None) is not None and site not in set(map(str, step.sites_)):
                sites = sorted(map(str, step.sites_))
                raise ValueError(f"site={site!r} is not one of the training sites {sites} or 'harmonized'")
        return site

    # -- public API -------------------------------------------------------------------------
    def sample(self, n=None, cohort: str = "target", covariates=None, site=None, random_state=None) -> pd.DataFrame:
        """Synthetic subjects of one cohort with covariate columns, ROI volumes in raw units.

        Parameters
        ----------
        n : int, default=None
            Number of synthetic subjects (ignored when ``covariates`` is given).
        cohort : {"target", "background"}, default="target"
            The cohort to sample; covariates are drawn from its training rows.
        covariates : DataFrame, default=None
            Covariates of the synthetic subjects, one row each, instead of drawn ones.
        site : str, default=None
            None: each subject at its own site; a site label: all at that site;
            ``"harmonized"``: site effects removed.
        random_state : int, RandomState instance or None, default=None
            Seed of this call; None uses the pipeline's own ``random_state``.

        Returns
        -------
        samples : DataFrame
            The covariate (and site) columns, then the ROI volumes in raw units.
        """
        check_is_fitted(self, "steps_")
        check_choice(cohort, "cohort", COHORTS)
        rng = check_random_state(self.random_state if random_state is None else random_state)
        drawn = self._draw_covariates(n, cohort, covariates, rng)
        values = self.synthesizer.sample(len(drawn), cohort=cohort, random_state=rng.randint(2**31))
        return self._backward(values.astype(float), drawn, self._check_site(site))

    def sample_paired(self, n=None, covariates=None, site=None, random_state=None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Synthetic people healthy and ill (row i of both = one person, same covariates).

        Parameters
        ----------
        n : int, default=None
            Number of synthetic people (ignored when ``covariates`` is given).
        covariates : DataFrame, default=None
            Covariates of the synthetic people, one row each; None draws them from the
            patients' training rows.
        site : str, default=None
            As in :meth:`sample`.
        random_state : int, RandomState instance or None, default=None
            Seed of this call; None uses the pipeline's own ``random_state``.

        Returns
        -------
        healthy, disease : tuple of two DataFrames
            Covariate and ROI columns of each person without and with the disease.
        """
        check_is_fitted(self, "steps_")
        rng = check_random_state(self.random_state if random_state is None else random_state)
        drawn = self._draw_covariates(n, "target", covariates, rng)
        site = self._check_site(site)
        pair = self.synthesizer.sample_paired(len(drawn), random_state=rng.randint(2**31))
        healthy, disease = (self._backward(v.astype(float), drawn, site) for v in pair)
        return healthy, disease

    def counterfactual(self, X: pd.DataFrame, to: str = "background", site=None, **kwargs) -> pd.DataFrame:
        """Twins of real subjects, each with their own covariates (and site unless ``site`` is set).

        Parameters
        ----------
        X : DataFrame
            Real subjects with the ROI, covariate and site columns.
        to : {"background", "target"}, default="background"
            The cohort of the twins.
        site : str, default=None
            None: each twin at its subject's site; else as in :meth:`sample`.
        **kwargs : dict
            Passed to the synthesizer's ``counterfactual`` (e.g. ``mode``).

        Returns
        -------
        twins : DataFrame
            The columns of ``X`` in its order, ROI volumes replaced by the twins'.
        """
        transformed = self._forward(X)
        rois = list(self.feature_names_in_)
        twins = self.synthesizer.counterfactual(transformed[rois], to=to, **kwargs)
        out = self._backward(twins, X[self.covariate_columns_], self._check_site(site) if site is not None else None)
        return pd.concat([X.drop(columns=rois + self.covariate_columns_), out], axis=1)[list(X.columns)]

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """The synthesizer's latent codes of preprocessed subjects.

        Parameters
        ----------
        X : DataFrame
            Real subjects with the ROI, covariate and site columns.

        Returns
        -------
        latents : DataFrame
            The synthesizer's ``transform`` of the preprocessed ROI values.
        """
        return self.synthesizer.transform(self._forward(X)[list(self.feature_names_in_)])

    def severity(self, X: pd.DataFrame) -> pd.Series:
        """The synthesizer's disease severity of preprocessed subjects.

        Parameters
        ----------
        X : DataFrame
            Real subjects with the ROI, covariate and site columns.

        Returns
        -------
        severity : Series
            One value per row of ``X``, named ``"severity"``.
        """
        return self.synthesizer.severity(self._forward(X)[list(self.feature_names_in_)])

    # -- persistence ------------------------------------------------------------------------
    def _get_state(self) -> tuple[dict, dict]:
        """Every step's state (tensors prefixed by the step's name) + the covariate pools."""
        check_is_fitted(self, "steps_")
        metadata = {
            "params": {"rois": self.rois, "random_state": self.random_state},
            "steps": [],
            "feature_names": names_to_json(self.feature_names_in_),
            "covariate_columns": self.covariate_columns_,
            "covariates": {k: t.to_dict(orient="list") for k, t in self.covariates_.items()},
        }
        tensors = {}
        for name, step in self.steps_:
            entry, step_tensors = nested_state(step, name)
            metadata["steps"].append({"name": name, **entry})
            tensors |= step_tensors
        return metadata, tensors

    @classmethod
    def _from_state(cls, metadata: dict, tensors: dict) -> SynthesisPipeline:
        steps = [
            (entry["name"], nested_from_state(entry, tensors, entry["name"], "step")) for entry in metadata["steps"]
        ]
        pipeline = cls(steps=[(n, clone(s)) for n, s in steps], **metadata["params"])
        pipeline.steps_ = steps
        pipeline.feature_names_in_ = names_from_json(metadata["feature_names"])
        pipeline.covariate_columns_ = metadata["covariate_columns"]
        pipeline.covariates_ = {k: pd.DataFrame(v) for k, v in metadata["covariates"].items()}
        return pipeline
