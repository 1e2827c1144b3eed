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
    (``fraction=1``: every fold sees all rows and differs by its seed only).

    Parameters
    ----------
    n : int
        Number of rows to draw from.
    n_folds : int
        Number of subsets.
    fraction : float
        Share of the rows in each subset, in (0, 1]; at least 2 rows are drawn.
    rng : numpy.random.Generator
        Source of the random draws (one ``choice`` without replacement per fold).

    Returns
    -------
    subsets : list of ndarray of shape (max(2, round(fraction * n)),)
        Sorted row positions of each fold.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.subtyping import fold_subsets
    >>> folds = fold_subsets(10, n_folds=3, fraction=0.5, rng=np.random.default_rng(0))
    >>> len(folds), [len(f) for f in folds], all((np.diff(f) > 0).all() for f in folds)
    (3, [5, 5, 5], True)
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    size = max(2, int(round(fraction * n)))
    return [np.sort(rng.choice(n, size, replace=False)) for _ in range(n_folds)]


def alignment(reference: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Column order π of ``proba`` (n × k) whose argmax labels agree best with ``reference``
    labels (0..k−1): maximizes Σ_c #{i : reference_i = c, argmax proba_i = π(c)}, so that
    ``proba[:, π]`` speaks the reference's labels.

    Parameters
    ----------
    reference : ndarray of shape (n_samples,)
        Reference labels 0..k−1.
    proba : ndarray of shape (n_samples, k)
        Subtype probabilities whose columns are to be matched to the reference labels.

    Returns
    -------
    order : ndarray of shape (k,)
        The column order π (Hungarian algorithm on the agreement counts).

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.subtyping import alignment
    >>> reference = np.array([0, 0, 1, 1])
    >>> proba = np.array([[0.1, 0.9], [0.2, 0.8], [0.7, 0.3], [0.9, 0.1]])
    >>> order = alignment(reference, proba)
    >>> order.tolist(), proba[:, order].argmax(1).tolist()
    ([1, 0], [0, 0, 1, 1])
    """
    k = proba.shape[1]
    agreement = np.zeros((k, k))
    np.add.at(agreement, (reference, proba.argmax(1)), 1)
    return linear_sum_assignment(-agreement)[1]


@dataclass
class Consensus:
    """Agreement and consensus of fold models on the same rows (returned by :func:`consensus`).

    Parameters
    ----------
    proba : ndarray of shape (n_samples, k)
        Mean of the aligned subtype probabilities.
    labels : ndarray of shape (n_samples,)
        Its argmax (0..k−1).
    fold_labels : ndarray of shape (m, n_samples)
        Each fold model's aligned labels.
    pairwise_ari : ndarray of shape (m, m)
        Adjusted Rand index between fold models.
    mean_ari : float
        Mean ARI over distinct pairs (1 = all folds agree; nan with one fold).
    orders : list of ndarray of shape (k,)
        The column order that aligns each fold with the consensus.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.subtyping import Consensus
    >>> one = Consensus(proba=np.array([[0.8, 0.2]]), labels=np.array([0]), fold_labels=np.array([[0]]),
    ...                 pairwise_ari=np.ones((1, 1)), mean_ari=float("nan"), orders=[np.array([0, 1])])
    >>> one.labels.tolist(), one.proba.shape
    ([0], (1, 2))
    """

    proba: np.ndarray
    labels: np.ndarray
    fold_labels: np.ndarray
    pairwise_ari: np.ndarray
    mean_ari: float
    orders: list[np.ndarray]


def consensus(fold_probas: list[np.ndarray], rounds: int = 3) -> Consensus:
    """Align every fold's probabilities to the running consensus (starting from the first
    fold) and average them; repeat ``rounds`` times so the reference itself settles.

    Parameters
    ----------
    fold_probas : list of array-like of shape (n_samples, k)
        Subtype probabilities of the same rows by each fold model, in its own label order.
    rounds : int, default=3
        Alignment rounds.

    Returns
    -------
    result : Consensus
        The aligned mean probabilities, labels and the agreement between folds.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.subtyping import consensus
    >>> first = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
    >>> second = first[:, ::-1]  # the same subtypes, numbered the other way round
    >>> result = consensus([first, second])
    >>> result.labels.tolist(), result.mean_ari, result.proba.round(2).tolist()
    ([0, 0, 1], 1.0, [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
    """
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
        """Probability of each subtype for every row: columns ``subtype_1`` … ``subtype_k``.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_samples, n_rois)
            Patients' ROI volumes in raw units.

        Returns
        -------
        proba : DataFrame of shape (n_samples, k)
            Consensus subtype probabilities, the index of ``X``.
        """
        index, proba = self._proba(X)
        return pd.DataFrame(proba, index=index, columns=[f"subtype_{c + 1}" for c in range(proba.shape[1])])

    def predict(self, X) -> pd.Series:
        """Most probable subtype (1..k) of every row.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_samples, n_rois)
            Patients' ROI volumes in raw units.

        Returns
        -------
        labels : Series of shape (n_samples,)
            Subtypes 1..k, named ``"subtype"``, the index of ``X``.
        """
        index, proba = self._proba(X)
        return pd.Series(proba.argmax(1) + 1, index=index, name="subtype")

    def transform(self, X) -> pd.DataFrame:
        """Same as :meth:`predict_proba` (subtype probabilities as features).

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_samples, n_rois)
            Patients' ROI volumes in raw units.

        Returns
        -------
        proba : DataFrame of shape (n_samples, k)
            Columns ``subtype_1`` … ``subtype_k``.
        """
        return self.predict_proba(X)

    def fit_predict(self, background, target=None) -> pd.Series:
        """``fit(background, target)``, then the subtype (1..k) of every patient of ``target``.

        Parameters
        ----------
        background : DataFrame or ndarray of shape (n_background, n_rois)
            Healthy subjects' ROI volumes in raw units.
        target : DataFrame or ndarray of shape (n_target, n_rois), default=None
            Patients' ROI volumes, same columns.

        Returns
        -------
        labels : Series of shape (n_target,)
            Subtype (1..k) of every patient.
        """
        return self.fit(background, target).predict(target)
