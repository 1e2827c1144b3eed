"""What every synthesizer shares: input checks, internal standardization, raw-unit output, files."""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .exceptions import PairingNotSupportedError, TrainingDataWarning
from .utils import persistence
from .utils.validation import (
    align_columns,
    as_frame,
    check_choice,
    check_finite_output,
    check_numeric_table,
    check_standardized,
    seed_from,
)

COHORTS = ("background", "target")
_REGISTRY: dict[str, type] = {}


class Persistent(ABC):
    """save/load for estimators with ``_get_state() -> (metadata, tensors)`` and ``_set_state``.

    ``metadata`` is JSON-able and holds the hyperparameters under ``"params"``; files are
    written by :mod:`roisynth.utils.persistence` and can be read back by :func:`load`. Every
    subclass is registered by name, so that :func:`load` finds the class of a file.

    ``stores_training_data`` declares whether a saved file holds training rows or cells. It is
    False for every estimator whose file holds only parameters; a class that *is* its training
    data (:class:`~roisynth.KDESynthesizer`) sets it True, warns with
    :class:`~roisynth.exceptions.TrainingDataWarning` in ``save``, and a release refuses it
    unless asked explicitly.
    """

    stores_training_data = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    @abstractmethod
    def _get_state(self) -> tuple[dict, dict]:
        """(JSON-able metadata with ``"params"``, tensors) of the fitted estimator."""

    def save(self, path) -> None:
        """Save the fitted estimator to ``path`` (torch tensors + JSON metadata, no pickle).

        Parameters
        ----------
        path : str or os.PathLike
            The file to write (replaced atomically).

        Warns
        -----
        TrainingDataWarning
            When the estimator, or the synthesizer it holds (a pipeline's last step), stores its
            training rows (``stores_training_data``): the file must not be shared.
        """
        metadata, tensors = self._get_state()
        persistence.save_model(path, type(self).__name__, metadata, tensors)
        holder = next((part for part in (self, getattr(self, "synthesizer", None))
                       if getattr(part, "stores_training_data", False)), None)
        if holder is not None:
            warnings.warn(f"{path} holds {holder._training_data_note()}: do not share the file; share synthetic "
                          "tables of a model that stores no training data", TrainingDataWarning, stacklevel=2)

    def _training_data_note(self) -> str:
        """What of the training data a saved file of this estimator holds (``stores_training_data`` only)."""
        return f"the training rows of this {type(self).__name__}"

    @classmethod
    def load(cls, path):
        """Load a file written by :meth:`save` (``weights_only=True``: never runs code).

        Parameters
        ----------
        path : str or os.PathLike
            A file written by ``save`` of this class.

        Returns
        -------
        estimator : estimator
            The fitted estimator, ready to use.
        """
        return _load(path, cls)

    @classmethod
    def _from_state(cls, metadata: dict, tensors: dict):
        model = cls(**metadata["params"])
        model._set_state(metadata, tensors)
        if isinstance(model, TableEstimator):
            model._check_state()
        return model


class TableEstimator:
    """Input checks and background scaling for estimators fitted on a healthy and a patient table.

    ``fit`` validates both tables (:meth:`_validate_fit_tables`), remembering the feature names
    and the background's ``mean_`` and ``scale_``; later tables are checked against those
    features (:meth:`_validate_X`).
    """

    def _validate_fit_tables(self, background, target, *, nonnegative: bool = True, names=COHORTS):
        """Check both cohorts (``names`` in messages), remember feature names and the background scaling."""
        first, second = names
        bg = as_frame(background, first)
        self._array_input = not isinstance(background, pd.DataFrame)
        Xb = check_numeric_table(bg, first, nonnegative=nonnegative)
        if target is None:
            Xt = None
        else:
            tg = as_frame(target, second, feature_names=None if isinstance(target, pd.DataFrame) else bg.columns)
            tg = align_columns(tg, bg.columns, second, first)
            Xt = check_numeric_table(tg, second, nonnegative=nonnegative)
        self.feature_names_in_ = np.asarray(bg.columns, dtype=object)
        self.n_features_in_ = Xb.shape[1]
        self.mean_ = Xb.mean(0)
        self.scale_ = Xb.std(0, ddof=1)
        constant = self.scale_ <= 1e-12 * np.maximum(np.abs(self.mean_), 1.0)
        if constant.any():
            columns = list(bg.columns[constant])[:5]
            raise ValueError(f"{first} has constant column(s) {columns}; drop them before fitting")
        check_standardized(bg, Xb, self.mean_, self.scale_, first)
        if Xt is not None:
            check_standardized(tg, Xt, self.mean_, self.scale_, second)
        return Xb, Xt

    def _validate_X(self, X, name: str = "X", *, min_rows: int = 1) -> tuple[pd.DataFrame, np.ndarray]:
        """Check a table against the fitted features; returns it aligned, and its values."""
        check_is_fitted(self, "feature_names_in_")
        df = as_frame(X, name, feature_names=list(self.feature_names_in_))
        df = align_columns(df, list(self.feature_names_in_), name, "the fitted columns")
        values = check_numeric_table(df, name, min_rows=min_rows, nonnegative=False)
        check_standardized(df, values, self.mean_, self.scale_, name)
        return df, values

    def _check_state(self) -> None:
        """Invariants of a loaded state (``ValueError`` naming the broken one): one name per feature,
        ``mean_`` and ``scale_`` of that length, finite, ``scale_`` positive. Subclasses add theirs."""
        p = len(self.feature_names_in_)
        for name in ("mean_", "scale_"):
            value = np.asarray(getattr(self, name))
            if value.shape != (p,):
                raise ValueError(f"{name} has shape {value.shape}, expected ({p},) for {p} features")
            if not np.isfinite(value).all():
                raise ValueError(f"{name} holds NaN or infinite values")
        if not (self.scale_ > 0).all():
            raise ValueError(f"scale_ must be positive, column(s) {list(self.feature_names_in_[self.scale_ <= 0])[:5]} "
                             "are not")

    # -- scaling and output --------------------------------------------------------------
    def _standardize(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) / self.scale_

    def _frame(self, standardized, index=None) -> pd.DataFrame:
        """Raw-unit DataFrame with the fitted column names from standardized values."""
        values = np.asarray(standardized, dtype=np.float64) * self.scale_ + self.mean_
        check_finite_output(values, type(self).__name__)
        return pd.DataFrame(values, columns=list(self.feature_names_in_), index=index)


class BaseSynthesizer(Persistent, TableEstimator, BaseEstimator):
    """Base class: ``fit(background, target=None)``, ``sample(n, cohort=...)``, save/load.

    Data are standardized internally on the background training cohort
    (``mean_``, ``scale_``); users pass and get raw units (mm³). ``cohorts_`` lists the
    cohorts a fitted model can sample. Subclasses that can make paired samples (the same
    synthetic person healthy and diseased) set ``can_pair = True`` and implement
    ``sample_paired`` and ``counterfactual``; the others raise
    :class:`PairingNotSupportedError`.
    """

    can_pair = False

    @abstractmethod
    def fit(self, background, target=None):
        """Fit on a healthy (``background``) and optionally a patient (``target``) table.

        Parameters
        ----------
        background : DataFrame or ndarray of shape (n_background, n_rois)
            ROI volumes of healthy subjects in raw units.
        target : DataFrame or ndarray of shape (n_target, n_rois), default=None
            ROI volumes of patients, same columns.

        Returns
        -------
        self : object
            The fitted estimator.
        """

    @abstractmethod
    def sample(self, n: int, cohort: str = "target", random_state=None) -> pd.DataFrame:
        """``n`` synthetic subjects of ``cohort`` in raw units.

        Parameters
        ----------
        n : int
            Number of synthetic subjects.
        cohort : {"target", "background"}, default="target"
            The cohort to sample.
        random_state : int, RandomState instance or None, default=None
            Seed of this call; None uses the model's own ``random_state``.

        Returns
        -------
        samples : DataFrame of shape (n, n_features_in_)
            Synthetic ROI volumes with the fitted column names.
        """

    def sample_paired(self, n: int, random_state=None):
        """``n`` synthetic people healthy and diseased: (background, target) frames, row i one person.

        Parameters
        ----------
        n : int
            Number of synthetic people.
        random_state : int, RandomState instance or None, default=None
            Seed of this call; None uses the model's own ``random_state``.

        Returns
        -------
        background, target : tuple of two DataFrames of shape (n, n_features_in_)
            The healthy and the diseased version of each synthetic person.

        Raises
        ------
        PairingNotSupportedError
            For models without pairs (``can_pair = False``).
        """
        raise self._no_pairing("sample_paired")

    def counterfactual(self, X, to: str = "background", **kwargs):
        """Twin of each row of ``X`` in the cohort ``to``.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_samples, n_features_in_)
            Real subjects in raw units.
        to : {"background", "target"}, default="background"
            The cohort of the twins.
        **kwargs : dict
            Options of the pairing model (e.g. ``mode``).

        Returns
        -------
        twins : DataFrame of shape (n_samples, n_features_in_)
            The twin of each row, in raw units.

        Raises
        ------
        PairingNotSupportedError
            For models without pairs (``can_pair = False``).
        """
        raise self._no_pairing("counterfactual")

    def _no_pairing(self, method: str) -> PairingNotSupportedError:
        return PairingNotSupportedError(
            f"{type(self).__name__} models each cohort separately, so it has no {method}: nothing links a "
            "synthetic healthy subject to a diseased one. Use a pairing model (can_pair = True): "
            "ContrastiveVAE, ConditionalVAE or LinearContrastive."
        )

    # -- input ---------------------------------------------------------------------------
    def _validate_fit_tables(self, background, target, *, nonnegative: bool = True):
        """:meth:`TableEstimator._validate_fit_tables`, and the cohorts the model can sample."""
        Xb, Xt = super()._validate_fit_tables(background, target, nonnegative=nonnegative)
        self.cohorts_ = COHORTS if Xt is not None else COHORTS[:1]
        return Xb, Xt

    def _sampling_seed(self, random_state) -> int:
        """Seed of one sampling call: ``random_state``, or the model's own when it is None."""
        return seed_from(self.random_state if random_state is None else random_state)

    def _check_cohort(self, cohort: str) -> str:
        """``cohort`` if it is one of the fitted ``cohorts_``, else a clear error."""
        check_choice(cohort, "cohort", COHORTS)
        check_is_fitted(self, "feature_names_in_")
        if cohort not in self.cohorts_:
            raise ValueError(
                f"{type(self).__name__} was fitted without a {cohort} cohort; fit(background, target) to sample it"
            )
        return cohort

    # -- persistence ---------------------------------------------------------------------
    def _get_state(self) -> tuple[dict, dict]:
        """(JSON-able metadata, tensors) of the fitted state; extended by subclasses."""
        check_is_fitted(self, "feature_names_in_")
        params = {name: value.tolist() if isinstance(value, (np.ndarray, np.generic)) else value  # JSON values
                  for name, value in self.get_params(deep=False).items()}
        metadata = {
            "params": params,
            "feature_names": persistence.names_to_json(self.feature_names_in_),
            "cohorts": list(self.cohorts_),
        }
        tensors = {"mean_": persistence.to_tensor(self.mean_), "scale_": persistence.to_tensor(self.scale_)}
        return metadata, tensors

    def _set_state(self, metadata: dict, tensors: dict) -> None:
        self.feature_names_in_ = persistence.names_from_json(metadata["feature_names"])
        self.n_features_in_ = len(self.feature_names_in_)
        self.cohorts_ = tuple(metadata.get("cohorts", COHORTS))
        self.mean_ = tensors["mean_"].numpy()
        self.scale_ = tensors["scale_"].numpy()


def nested_state(estimator, prefix: str) -> tuple[dict, dict]:
    """State of an estimator held by another one (a pipeline step, a subtyping model): its class
    and metadata, and its tensors under ``prefix/``, for :func:`nested_from_state`."""
    metadata, tensors = estimator._get_state()
    return {"class": type(estimator).__name__, "state": metadata}, {f"{prefix}/{k}": v for k, v in tensors.items()}


def nested_from_state(entry: dict, tensors: dict, prefix: str, what: str = "estimator"):
    """The estimator that :func:`nested_state` saved as ``entry`` with tensors under ``prefix/``."""
    if not _registered(entry["class"]):
        raise TypeError(f"unknown {what} class {entry['class']!r}")
    start = len(prefix) + 1
    own = {k[start:]: v for k, v in tensors.items() if k.startswith(prefix + "/")}
    return _REGISTRY[entry["class"]]._from_state(entry["state"], own)


def _registered(name: str) -> bool:
    """Whether an estimator class ``name`` is known, importing the estimator modules (imported lazily) first."""
    if name not in _REGISTRY:
        from importlib import import_module

        for module in ("synthesizers", "subtyping", "preprocessing", "pipeline"):
            package = import_module(f"roisynth.{module}")
            for public in getattr(package, "__all__", ()):   # lazy packages import their modules on access
                getattr(package, public)
    return name in _REGISTRY


def _load(path, expected: type | None):
    expected_name = None if expected in (None, BaseSynthesizer) else expected.__name__
    name, metadata, tensors = persistence.load_model(path, expected_name)
    if not _registered(name):
        raise ValueError(f"{path} holds an unknown estimator {name!r}")
    try:
        broken = [key for key, value in tensors.items()
                  if not isinstance(value, torch.Tensor) or (value.is_floating_point() and not value.isfinite().all())]
        if broken:
            raise ValueError(f"tensor(s) {broken[:5]} are not tensors or hold NaN or infinite values")
        return _REGISTRY[name]._from_state(metadata, tensors)
    except (KeyError, IndexError, RuntimeError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"{path} is a damaged {name} file ({exc})") from exc


def load(path):
    """Load any roisynth file (a synthesizer, a preprocessing step or a pipeline).

    The class is read from the file, so the caller need not know it (``ContrastiveVAE.load``
    and the other class methods also check that the file holds their class).

    Parameters
    ----------
    path : str or os.PathLike
        A file written by the ``save`` method of any roisynth estimator.

    Returns
    -------
    estimator : estimator
        The fitted estimator, of the class recorded in the file.

    Examples
    --------
    >>> import os, tempfile
    >>> import roisynth
    >>> from roisynth import LinearContrastive, datasets
    >>> cohort = datasets.load_example()
    >>> rois = datasets.roi_names()[:4]
    >>> cn, ad = (cohort.loc[cohort.diagnosis == d, rois] for d in ("CN", "AD"))
    >>> model = LinearContrastive(n_common=1, n_salient=1, random_state=0).fit(cn, ad)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     model.save(os.path.join(folder, "model.roisynth"))
    ...     same = roisynth.load(os.path.join(folder, "model.roisynth"))
    >>> type(same).__name__, same.sample(3).equals(model.sample(3))
    ('LinearContrastive', True)
    """
    return _load(path, None)
