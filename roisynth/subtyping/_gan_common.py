"""What SmileGAN and SurrealGAN share: healthy-to-patient mapping networks trained in folds on CN-scaled
values, a synthetic healthy side drawn from a background synthesizer, and one file layout."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from tqdm import tqdm

from ..base import BaseSynthesizer, nested_from_state, nested_state
from ..nn import threads
from ..synthesizers._gaussian_mixture import GaussianMixtureSynthesizer
from ..utils import persistence
from ..utils.validation import check_finite_output, seed_from
from ._consensus import fold_subsets


class FoldGANMixin:
    """Scaling, background synthesizer and persistence of a fold-trained healthy-to-patient GAN.

    The networks see u = 1 + (x − mean_CN) / (10 sd_CN) (the scaling of the Smile-GAN and
    Surreal-GAN papers); ``background_model_`` is a synthesizer fitted on the CN rows (a
    :class:`~roisynth.GaussianMixtureSynthesizer` unless ``background_model`` is given) from
    which the healthy side of paired samples is drawn, so no real row is kept. A subclass
    names its fold network class in ``_module_class`` and its width in ``_module_width``
    (``n_subtypes`` or ``n_patterns``).

    Fold training: each fold model is retrained with a new seed while it fails its own checks
    (``ok`` of :meth:`_train_fold`), at most ``max_retries`` times, the best attempt kept
    (:meth:`_best`); then a fold whose agreement with the consensus of the other folds
    (:meth:`_fold_reference`, :meth:`_fold_agreement`) is below ``_min_agreement`` is retrained
    the same way.
    """

    _module_class: type
    _module_width: str
    #: Name of the fold-agreement measure, in messages; words of advice when folds fail.
    _agreement_name: str
    _failure_advice: str

    def _normalize(self, X: np.ndarray) -> torch.Tensor:
        """u = 1 + (x − mean_CN) / (10 sd_CN), as float32."""
        return torch.as_tensor(1 + self._standardize(X) / 10, dtype=torch.float32)

    def _raw(self, u: torch.Tensor, index=None) -> pd.DataFrame:
        values = (u.double().numpy() - 1) * 10 * self.scale_ + self.mean_
        check_finite_output(values, type(self).__name__)
        return pd.DataFrame(values, index=index, columns=list(self.feature_names_in_))

    def _check_fit_inputs(self, target) -> None:
        """The patients are required, and the background synthesizer must not store its training rows."""
        name = type(self).__name__
        if target is None:
            raise ValueError(f"{name} maps healthy subjects to patients: pass the patients as target, "
                             "fit(background, target)")
        if getattr(self.background_model, "stores_training_data", False):
            raise ValueError(f"background_model={type(self.background_model).__name__} stores its training rows, so "
                             f"the {name} file would hold the real CN: use a synthesizer that stores parameters "
                             "only, e.g. GaussianMixtureSynthesizer (the default)")

    def _train_folds(self, xc: torch.Tensor, xp: torch.Tensor, rng: np.random.RandomState) -> list[dict]:
        """Train the ``n_folds`` fold models (see the class docstring); sets ``modules_``, ``retries_`` and
        ``converged_`` and returns the kept run of each fold."""
        folds = list(zip(fold_subsets(len(xc), self.n_folds, self.fraction, rng),
                         fold_subsets(len(xp), self.n_folds, self.fraction, rng)))
        train = lambda i: self._train_fold(xc[folds[i][0]], xp[folds[i][1]], xp, seed_from(rng))  # noqa: E731
        name = type(self).__name__
        with threads(self.n_threads):
            attempts = []
            for i in tqdm(range(self.n_folds), desc=f"{name} folds", disable=not self.verbose, leave=False):
                tried = [train(i)]
                while not tried[-1]["ok"] and len(tried) <= self.max_retries:
                    tried.append(train(i))
                attempts.append(tried)
            kept = [self._best(tried) for tried in attempts]
            if self.n_folds > 1:
                self._retrain_outliers(kept, attempts, train)
        failed = [(i, run["why"]) for i, run in enumerate(kept) if not run["ok"]]
        if failed:
            warnings.warn(f"{name}: fold model(s) failed after {self.max_retries} retries and the best attempt was "
                          "kept: " + "; ".join(f"fold {i}: {why}" for i, why in failed) + ". " + self._failure_advice,
                          ConvergenceWarning, stacklevel=3)
        self.modules_ = [run["module"] for run in kept]
        self.retries_ = [len(tried) - 1 for tried in attempts]
        self.converged_ = [run["ok"] for run in kept]
        return kept

    def _retrain_outliers(self, kept: list[dict], attempts: list[list[dict]], train) -> None:
        """Retrain folds whose agreement with the consensus of the other folds is below ``_min_agreement``."""
        for i in range(self.n_folds):
            reference = self._fold_reference([run for j, run in enumerate(kept) if j != i])
            kept[i]["agreement"] = self._fold_agreement(reference, kept[i])
            while kept[i]["agreement"] < self._min_agreement and len(attempts[i]) <= self.max_retries:
                run = train(i)
                run["agreement"] = self._fold_agreement(reference, run)
                attempts[i].append(run)
                if run["ok"] and run["agreement"] >= kept[i]["agreement"]:
                    kept[i] = run
            if kept[i]["agreement"] < self._min_agreement:
                kept[i]["ok"] = False
                why = f"{self._agreement_name} {kept[i]['agreement']:.2f} with the other folds"
                kept[i]["why"] = ", ".join(filter(None, [kept[i]["why"], why]))

    def _fit_background_model(self, Xc: np.ndarray, rng: np.random.RandomState) -> BaseSynthesizer:
        """The background synthesizer fitted on the CN rows (raw units); the default is seeded by ``rng``,
        drawn after the fold models so that they do not depend on it."""
        if self.background_model is None:
            model = GaussianMixtureSynthesizer(random_state=seed_from(rng))
        else:
            model = clone(self.background_model)
        return model.fit(pd.DataFrame(Xc, columns=list(self.feature_names_in_)))

    def _common_state(self) -> tuple[dict, dict]:
        """Metadata and tensors every such GAN saves: parameters, background synthesizer (tensors under
        ``background_model/``), feature names, scaling, retries and the fold networks (``fold<i>.``)."""
        entry, tensors = nested_state(self.background_model_, "background_model")
        metadata = {
            "params": {k: v for k, v in self.get_params(deep=False).items() if k != "background_model"},
            "background_model": {**entry, "given": self.background_model is not None},
            "feature_names": persistence.names_to_json(self.feature_names_in_),
            "retries": self.retries_,
            "converged": self.converged_,
        }
        tensors = tensors | {"mean_": persistence.to_tensor(self.mean_), "scale_": persistence.to_tensor(self.scale_)}
        for i, module in enumerate(self.modules_):
            tensors.update({f"fold{i}.{name}": value for name, value in module.state_dict().items()})
        return metadata, tensors

    @classmethod
    def _from_state(cls, metadata: dict, tensors: dict):
        entry = metadata["background_model"]
        background_model = nested_from_state(entry, tensors, "background_model", "background model")
        estimator = cls(background_model=clone(background_model) if entry["given"] else None, **metadata["params"])
        estimator.background_model_ = background_model
        estimator._set_state(metadata, tensors)
        estimator._check_state()
        return estimator

    def _set_common_state(self, metadata: dict, tensors: dict) -> None:
        self.feature_names_in_ = persistence.names_from_json(metadata["feature_names"])
        self.n_features_in_ = len(self.feature_names_in_)
        self.mean_, self.scale_ = tensors["mean_"].numpy(), tensors["scale_"].numpy()
        self.modules_ = []
        for i in range(self.n_folds):
            module = self._module_class(self.n_features_in_, getattr(self, self._module_width), self.n_hidden)
            prefix = f"fold{i}."
            module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
            self.modules_.append(module.eval())
        self.retries_, self.converged_ = metadata["retries"], metadata["converged"]
