"""What the subtyping models share: fold subsets, label alignment, consensus, the predict API.

Subtype labels are arbitrary: fold model A's subtype 1 may be fold model B's subtype 3. Before
comparing or averaging fold models, their subtypes are matched by the Hungarian algorithm on
the agreement of their assignments (:func:`alignment`). The consensus of ``m`` fold models is the
average of their aligned subtype probabilities; their agreement is the adjusted Rand index
(ARI) between every pair of fold models' labels, as in Smile-GAN's cross-validated clustering.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score


def fold_subsets(n: int, n_folds: int, fraction: float, rng: np.random.Generator) -> list[np.ndarray]:
    """``n_folds`` sorted random subsets of ``range(n)`` of size round(``fraction`` · n) each
    (``fraction=1``: every fold sees all rows and differs by its seed only)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    size = max(2, int(round(fraction * n)))
    return [np.sort(rng.choice(n, size, replace=False)) for _ in range(n_folds)]


def alignment(reference: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Column order π of ``proba`` (n × k) whose argmax labels agree best with ``reference``
    labels (0..k−1): maximizes Σ_c #{i : reference_i = c, argmax proba_i = π(c)}, so that
    ``proba[:, π]`` speaks the reference's labels."""
    k = proba.shape[1]
    agreement = np.zeros((k, k))
    np.add.at(agreement, (reference, proba.argmax(1)), 1)
    return linear_sum_assignment(-agreement)[1]


@dataclass
class Consensus:
    """Agreement and consensus of fold models on the same rows.

    ``proba``: mean of the aligned subtype probabilities (n × k); ``labels``: its argmax
    (0..k−1); ``fold_labels``: each fold model's aligned labels (m × n); ``pairwise_ari``:
    m × m ARI between fold models; ``mean_ari``: mean over distinct pairs (1 = all folds agree;
    nan with one fold); ``orders``: the column order that aligns each fold with the consensus.
    """

    proba: np.ndarray
    labels: np.ndarray
    fold_labels: np.ndarray
    pairwise_ari: np.ndarray
    mean_ari: float
    orders: list[np.ndarray]


def consensus(fold_probas: list[np.ndarray], rounds: int = 3) -> Consensus:
    """Align every fold's probabilities to the running consensus (starting from the first
    fold) and average them; repeat ``rounds`` times so the reference itself settles."""
    probas = [np.asarray(p, dtype=np.float64) for p in fold_probas]
    reference = probas[0].argmax(1)
    for _ in range(rounds):
        orders = [alignment(reference, p) for p in probas]
        mean = np.mean([p[:, order] for p, order in zip(probas, orders)], axis=0)
        reference = mean.argmax(1)
    fold_labels = np.array([p[:, order].argmax(1) for p, order in zip(probas, orders)])
    m = len(probas)
    ari = np.ones((m, m))
    for i in range(m):
        for j in range(i + 1, m):
            ari[i, j] = ari[j, i] = adjusted_rand_score(fold_labels[i], fold_labels[j])
    mean_ari = float(ari[np.triu_indices(m, 1)].mean()) if m > 1 else float("nan")
    return Consensus(mean, reference, fold_labels, ari, mean_ari, orders)


class SubtypeMixin(ABC):
    """``predict_proba`` / ``predict`` / ``transform`` / ``fit_predict`` for subtyping models.

    A subclass implements ``fit(background, target=None)`` and ``_proba(X) -> (DataFrame
    index, n × k array)`` for a validated table; subtypes are numbered 1..k in outputs.
    """

    @abstractmethod
    def fit(self, background, target=None):
        """Find the subtypes of the ``target`` patients (``background``: healthy subjects); returns self."""

    @abstractmethod
    def _proba(self, X) -> tuple[pd.Index, np.ndarray]:
        """(index of ``X``, subtype probabilities n × k) of a table of patients."""

    def predict_proba(self, X) -> pd.DataFrame:
        """Probability of each subtype for every row: columns ``subtype_1`` … ``subtype_k``."""
        index, proba = self._proba(X)
        return pd.DataFrame(proba, index=index, columns=[f"subtype_{c + 1}" for c in range(proba.shape[1])])

    def predict(self, X) -> pd.Series:
        """Most probable subtype (1..k) of every row."""
        index, proba = self._proba(X)
        return pd.Series(proba.argmax(1) + 1, index=index, name="subtype")

    def transform(self, X) -> pd.DataFrame:
        """Same as :meth:`predict_proba` (subtype probabilities as features)."""
        return self.predict_proba(X)

    def fit_predict(self, background, target=None) -> pd.Series:
        """``fit(background, target)``, then the subtype (1..k) of every patient of ``target``."""
        return self.fit(background, target).predict(target)
