r"""Disease subtypes: clusters of patients in the salient space of a contrastive model.

A contrastive model (:class:`~roisynth.ContrastiveVAE`, :class:`~roisynth.LinearContrastive`)
puts what patients share with healthy people (age, head size, ...) in its common latent z and
what only patients have in its salient latent s. Patients with different atrophy patterns
therefore sit apart in s-space, and clustering their salient codes finds subtypes without
the healthy variation that would dominate clusters of raw volumes. Each subtype is then a
region of s-space, so the model can synthesize the same person healthy and with subtype k.

:class:`SalientSubtypes` has the API of every roisynth subtyping model (``fit(background,
target)``, ``predict``/``predict_proba``/``transform``/``fit_predict`` from
:class:`~roisynth.subtyping.SubtypeMixin`, ``labels_``, ``consensus_``, ``fold_ari_``,
``sample_paired(n, subtype=k)``, save/load).
"""

from __future__ import annotations

import numbers
import re

import numpy as np
import pandas as pd
from scipy.linalg import solve_triangular
from sklearn.base import BaseEstimator, clone
from sklearn.cluster import KMeans
from sklearn.exceptions import NotFittedError
from sklearn.metrics import silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.utils.validation import check_is_fitted

from ..base import BaseSynthesizer, Persistent, nested_from_state, nested_state
from ..synthesizers._contrastive_vae import ContrastiveVAE
from ..utils import persistence
from ..utils._param_validation import Interval, Options, validate_params
from ..utils.validation import as_frame, check_sample_size, seed_from
from ._consensus import Consensus, SubtypeMixin, consensus, fold_subsets

METHODS = ("gmm", "kmeans")
MIN_PER_SUBTYPE = 10  # patients per subtype and fold below which a clustering is refused
UNUSED_SALIENT = 0.05  # salient dimensions with SD < this share of the largest SD are dropped
_SALIENT = re.compile(r"s\d+")
_N_INIT = 5  # restarts of every GMM / k-means fit


def _log_gaussian(S: np.ndarray, mean: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """log N(s; mean, covariance) of every row of ``S``, through the Cholesky factor."""
    L = np.linalg.cholesky(covariance)
    r = solve_triangular(L, (S - mean).T, lower=True)
    return -0.5 * (r**2).sum(0) - np.log(np.diag(L)).sum() - 0.5 * len(mean) * np.log(2 * np.pi)


def _posterior(S: np.ndarray, weights: np.ndarray, means: np.ndarray, covariances: np.ndarray) -> np.ndarray:
    """Mixture responsibilities p(c | s) ∝ w_c N(s; μ_c, Σ_c), rows summing to 1 (n × k)."""
    log = np.column_stack([np.log(w) + _log_gaussian(S, m, c) for w, m, c in zip(weights, means, covariances)])
    log -= log.max(1, keepdims=True)
    proba = np.exp(log)
    return proba / proba.sum(1, keepdims=True)


class SalientSubtypes(SubtypeMixin, Persistent, BaseEstimator):
    r"""Subtypes of patients found in a contrastive model's salient space, with stability.

    1. **Salient codes.** ``model`` is fitted on (background, target) unless it is already
       fitted, in which case it is used as it is (not refitted, not copied: ``model_ is
       model``). Every patient i gets s_i = E[s | x_i] (the ``s*`` columns of
       ``model.transform``). Salient dimensions the model does not use are dropped: those
       whose SD over patients is below 5 % of the largest (``salient_columns_`` keeps the rest).
    2. **Number of subtypes.** ``method="gmm"``: Gaussian mixtures with full covariances,
       p(s) = Σ_c w_c N(s; μ_c, Σ_c), and K = argmin_K BIC(K) = −2 log L̂_K + p_K log n over
       K = 1..``max_subtypes`` (``bic_``). ``method="kmeans"``: k-means, K = argmax of the
       mean silhouette over K = 2..``max_subtypes`` (``silhouette_``). A fixed integer
       ``n_subtypes`` skips the search.
    3. **Stability.** ``n_folds`` clusterings with K subtypes, each on a random ``fraction``
       of the patients' codes (the contrastive model is not refitted per fold, so folds are
       cheap), each giving every patient subtype probabilities. Fold subtypes are matched to
       one another (Hungarian algorithm, :func:`~roisynth.subtyping.consensus`); the consensus
       probability is their mean, ``labels_`` its argmax and ``fold_ari_`` the mean adjusted
       Rand index between folds (1 = every fold finds the same subtypes). A k-means fold is
       read as the mixture it approximates — equal weights and one shared isotropic variance
       σ² = (within-cluster sum of squares) / (n·d) — so that its soft assignment is
       p(c | s) ∝ exp(−‖s − μ_c‖² / 2σ²), whose argmax is the nearest centre.
    4. **New patients.** :meth:`predict_proba` averages the aligned fold probabilities of
       their salient codes; :meth:`predict` is its argmax (subtypes numbered 1..K).

    Paired synthesis (:meth:`sample_paired`): synthetic healthy people are drawn from the
    model (``model.sample(n, "background")``) and each gets a diseased twin of subtype k,
    ``model.counterfactual(healthy, to="target", salient=s)`` in residual mode, i.e.
    x + f(ẑ, s) − f(ẑ, 0) with ẑ the healthy person's common code, s a salient code of
    subtype k: with ``"gmm"``, s ~ N(μ_k, Σ_k) of a fold drawn at random; with ``"kmeans"``,
    a smoothed bootstrap of the subtype's training codes, s = s_i + h σ_k ⊙ ε with s_i drawn
    from the patients of subtype k, σ_k their per-dimension SD, ε ~ N(0, I) and Scott's
    factor h = n_k^{−1/(d+4)}. Dropped salient dimensions are set to the patients' mean.

    Parameters
    ----------
    model : estimator, default=None
        A roisynth contrastive synthesizer whose ``transform`` gives ``s*`` columns
        (:class:`~roisynth.ContrastiveVAE`, :class:`~roisynth.LinearContrastive`), fitted or
        not; None = ``ContrastiveVAE(random_state=random_state, verbose=False)``.
    n_subtypes : "auto" or int, default="auto"
        ``"auto"`` (chosen as in step 2) or a positive int.
    max_subtypes : int, default=6
        Largest number of subtypes tried by ``"auto"``.
    method : {"gmm", "kmeans"}, default="gmm"
        The clustering (see above).
    n_folds : int, default=10
        Number of fold clusterings in the consensus.
    fraction : float, default=0.8
        Share of the patients each fold sees, in (0, 1].
    random_state : int, RandomState instance or None, default=None
        Seeds the default model, the folds, the clusterings and sampling.

    Attributes
    ----------
    model_ : estimator
        The fitted contrastive model.
    salient_columns_ : list of str
        The salient dimensions used.
    salient_mean_ : Series
        Patients' mean of every salient dimension (fills the dropped ones when sampling).
    codes_ : DataFrame of shape (n_target, n_salient_used)
        The training patients' salient codes (columns ``salient_columns_``), with the index of
        ``target``; a loaded model numbers them 0..n_target − 1 instead, as its file keeps no
        training identifier.
    n_subtypes_ : int
        K.
    bic_ : Series or None
        BIC per K, or None when it was not computed (``method="kmeans"`` or a fixed
        ``n_subtypes``).
    silhouette_ : Series or None
        Mean silhouette per K, or None when it was not computed (``method="gmm"`` or a
        fixed ``n_subtypes``).
    consensus_ : Consensus
        The :class:`~roisynth.subtyping.Consensus` of the folds on the training patients.
    fold_ari_ : float
        Its mean pairwise ARI (nan with one fold).
    labels_ : Series of shape (n_target,)
        Consensus subtype (1..K) of every training patient, with the index of ``codes_``.
    subtype_frequencies_ : Series of shape (K,)
        Share of the training patients in each subtype (index 1..K).
    fold_weights_ : ndarray of shape (n_folds, K)
        Weights of the fold mixtures, components in the consensus order.
    fold_means_ : ndarray of shape (n_folds, K, n_salient_used)
        Means of the fold mixtures.
    fold_covariances_ : ndarray of shape (n_folds, K, n_salient_used, n_salient_used)
        Covariances of the fold mixtures.

    Examples
    --------
    >>> from roisynth import datasets
    >>> cohort = datasets.load_example()
    >>> rois = datasets.roi_names()[:6]
    >>> cn, ad = (cohort.loc[cohort.diagnosis == d, rois] for d in ("CN", "AD"))
    >>> from roisynth import LinearContrastive, SalientSubtypes
    >>> linear = LinearContrastive(n_common=2, n_salient=2, random_state=0)
    >>> subtypes = SalientSubtypes(model=linear, n_subtypes=2, n_folds=2, random_state=0).fit(cn, ad)
    >>> sorted(subtypes.labels_.unique().tolist())
    [1, 2]
    """

    _parameter_constraints = {
        "model": [BaseSynthesizer, None],
        "n_subtypes": [Options({"auto"}), Interval(numbers.Integral, 1, None, closed="left")],
        "max_subtypes": [Interval(numbers.Integral, 1, None, closed="left")],
        "method": [Options(METHODS)],
        "n_folds": [Interval(numbers.Integral, 1, None, closed="left")],
        "fraction": [Interval(numbers.Real, 0, 1, closed="right")],
        "random_state": ["random_state"],
    }

    def __init__(self, *, model=None, n_subtypes="auto", max_subtypes: int = 6, method: str = "gmm", n_folds: int = 10,
                 fraction: float = 0.8, random_state=None):
        self.model = model
        self.n_subtypes = n_subtypes
        self.max_subtypes = max_subtypes
        self.method = method
        self.n_folds = n_folds
        self.fraction = fraction
        self.random_state = random_state

    # -- checks ----------------------------------------------------------------------------
    def _check_patients(self, n: int) -> None:
        """Every fold must hold MIN_PER_SUBTYPE patients per subtype for the largest K tried."""
        k = self.max_subtypes if self.n_subtypes == "auto" else self.n_subtypes
        per_fold = max(2, int(round(self.fraction * n)))
        if per_fold < MIN_PER_SUBTYPE * k:
            raise ValueError(
                f"target has {n} patients ({per_fold} per fold): too few for {k} subtypes: at least "
                f"{MIN_PER_SUBTYPE} per subtype and fold are needed; lower max_subtypes (or n_subtypes) or raise "
                "fraction"
            )

    def _fitted_model(self, background, target):
        """The model, fitted here on a copy unless it is already fitted."""
        model = ContrastiveVAE(random_state=self.random_state, verbose=False) if self.model is None else self.model
        if not (isinstance(model, BaseSynthesizer) and model.can_pair and hasattr(model, "transform")):
            raise TypeError(f"model must be a roisynth contrastive synthesizer (ContrastiveVAE, LinearContrastive), "
                            f"got {type(model).__name__}")
        self._check_patients(len(as_frame(target, "target")))
        try:
            check_is_fitted(model)
        except NotFittedError:
            return clone(model).fit(background, target)
        return model

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, background, target=None):
        """Fit the model if needed, then find and check the subtypes of the ``target`` patients.

        Parameters
        ----------
        background : DataFrame or ndarray, or None
            ROI volumes of healthy subjects in raw units; only used to fit an unfitted
            ``model`` (None when ``model`` is already fitted).
        target : DataFrame or ndarray, default=None
            ROI volumes of the patients to subtype, same columns; required (None raises a
            ``ValueError``).

        Returns
        -------
        self : SalientSubtypes
            The fitted estimator.
        """
        validate_params(self)
        if target is None:
            raise ValueError("SalientSubtypes subtypes patients: pass them as target, fit(background, target)")
        if self.method == "kmeans" and self.n_subtypes == "auto" and self.max_subtypes < 2:
            raise ValueError(f"max_subtypes={self.max_subtypes} is not valid with method='kmeans': the silhouette "
                             "needs at least 2 subtypes")
        self.model_ = self._fitted_model(background, target)
        latents = self.model_.transform(target)
        salient = [c for c in latents.columns if _SALIENT.fullmatch(str(c))]
        if not salient:
            raise ValueError(
                f"{type(self.model_).__name__}.transform gives no salient columns (s1, s2, ...), only "
                f"{list(latents.columns)[:5]}: use a contrastive model (ContrastiveVAE, LinearContrastive)"
            )
        sd = latents[salient].std()
        if not sd.max() > 0:
            raise ValueError("the patients' salient codes are all equal: the model found no patient-specific variation")
        self.salient_columns_ = [c for c in salient if sd[c] >= UNUSED_SALIENT * sd.max()]
        self.salient_mean_ = latents[salient].mean()
        self.codes_ = latents[self.salient_columns_]
        S = self.codes_.to_numpy()

        rng = np.random.default_rng(seed_from(self.random_state))
        self.n_subtypes_ = self._select(S, int(rng.integers(2**31 - 1)))
        subsets = fold_subsets(len(S), self.n_folds, self.fraction, rng)
        folds = [self._cluster(S[rows], self.n_subtypes_, int(rng.integers(2**31 - 1))) for rows in subsets]
        agreement = consensus([_posterior(S, *fold) for fold in folds])
        aligned = [[np.asarray(part)[order] for part in fold] for fold, order in zip(folds, agreement.orders)]
        self._set_consensus(*(np.stack(parts) for parts in zip(*aligned)), agreement)
        return self

    def _select(self, S: np.ndarray, seed: int) -> int:
        """K: fixed, or by BIC (gmm) / silhouette (kmeans) on all patients' codes."""
        self.bic_ = self.silhouette_ = None
        if self.n_subtypes != "auto":
            return int(self.n_subtypes)
        if self.method == "gmm":
            ks = range(1, self.max_subtypes + 1)
            bic = [
                GaussianMixture(k, covariance_type="full", n_init=_N_INIT, random_state=seed).fit(S).bic(S) for k in ks
            ]
            self.bic_ = pd.Series(bic, index=pd.Index(ks, name="n_subtypes"), name="bic")
            return int(self.bic_.idxmin())
        ks = range(2, self.max_subtypes + 1)
        scores = [silhouette_score(S, KMeans(k, n_init=_N_INIT, random_state=seed).fit_predict(S)) for k in ks]
        self.silhouette_ = pd.Series(scores, index=pd.Index(ks, name="n_subtypes"), name="silhouette")
        return int(self.silhouette_.idxmax())

    def _cluster(self, S: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(weights, means, covariances) of one fold's clustering, as a Gaussian mixture."""
        if self.method == "gmm":
            gmm = GaussianMixture(k, covariance_type="full", n_init=_N_INIT, random_state=seed).fit(S)
            return gmm.weights_, gmm.means_, gmm.covariances_
        km = KMeans(k, n_init=_N_INIT, random_state=seed).fit(S)
        variance = max(km.inertia_ / S.size, 1e-12)
        return np.full(k, 1 / k), km.cluster_centers_, np.tile(variance * np.eye(S.shape[1]), (k, 1, 1))

    def _set_consensus(
        self, weights: np.ndarray, means: np.ndarray, covariances: np.ndarray, agreement: Consensus
    ) -> None:
        """Store the fold mixtures (components already in the consensus order) and the consensus."""
        self.fold_weights_, self.fold_means_, self.fold_covariances_ = weights, means, covariances
        self.consensus_ = agreement
        self.fold_ari_ = agreement.mean_ari
        self.labels_ = pd.Series(agreement.labels + 1, index=self.codes_.index, name="subtype")
        counts = np.bincount(agreement.labels, minlength=self.n_subtypes_)
        self.subtype_frequencies_ = pd.Series(
            counts / counts.sum(), index=pd.RangeIndex(1, self.n_subtypes_ + 1, name="subtype"), name="frequency"
        )

    # -- prediction ------------------------------------------------------------------------
    def _proba(self, X) -> tuple[pd.Index, np.ndarray]:
        check_is_fitted(self, "consensus_")
        latents = self.model_.transform(X)
        S = latents[self.salient_columns_].to_numpy()
        folds = zip(self.fold_weights_, self.fold_means_, self.fold_covariances_)
        return latents.index, np.mean([_posterior(S, *fold) for fold in folds], axis=0)

    # -- paired synthesis ------------------------------------------------------------------
    def _salient_codes(self, subtypes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Salient codes (n × all salient dimensions) of synthetic patients of ``subtypes`` (0-based)."""
        n, d = len(subtypes), len(self.salient_columns_)
        eps = rng.standard_normal((n, d))
        if self.method == "gmm":
            fold = rng.integers(len(self.fold_weights_), size=n)
            factors = np.linalg.cholesky(self.fold_covariances_[fold, subtypes])
            codes = self.fold_means_[fold, subtypes] + np.einsum("nij,nj->ni", factors, eps)
        else:
            codes = np.empty((n, d))
            S, labels = self.codes_.to_numpy(), self.consensus_.labels
            for c in np.unique(subtypes):
                members, rows = S[labels == c], subtypes == c
                bandwidth = len(members) ** (-1 / (d + 4)) * members.std(0)
                codes[rows] = members[rng.integers(len(members), size=rows.sum())] + bandwidth * eps[rows]
        full = np.tile(self.salient_mean_.to_numpy(), (n, 1))
        full[:, self.salient_mean_.index.get_indexer(self.salient_columns_)] = codes
        return full

    def sample_paired(self, n: int, subtype: int | None = None, random_state=None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``n`` synthetic people healthy and with a subtype: row i of both frames is one person.

        The healthy half is drawn from the model's healthy cohort, the diseased half is its
        twin with a salient code of the subtype (see the class docstring).

        Parameters
        ----------
        n : int
            Number of synthetic people.
        subtype : int, default=None
            1..K for all rows, or None to draw each row's subtype with the training
            frequencies (``subtype_frequencies_``).
        random_state : int, RandomState instance or None, default=None
            Seed of this call; None uses the estimator's own.

        Returns
        -------
        healthy, diseased : tuple of two DataFrames of shape (n, n_rois)
            The two versions of each person, in raw units.
        """
        check_is_fitted(self, "consensus_")
        n = check_sample_size(n, self.model_.n_features_in_)
        k = self.n_subtypes_
        if subtype is not None and (isinstance(subtype, bool) or not isinstance(subtype, numbers.Integral)
                                    or not 1 <= subtype <= k):
            raise ValueError(f"subtype must be None or an integer in 1..{k}, got {subtype!r}")
        rng = np.random.default_rng(seed_from(self.random_state if random_state is None else random_state))
        if subtype is None:
            subtypes = rng.choice(k, n, p=self.subtype_frequencies_.to_numpy())
        else:
            subtypes = np.full(n, subtype - 1)
        codes = self._salient_codes(subtypes, rng)
        healthy = self.model_.sample(n, "background", random_state=int(rng.integers(2**31 - 1)))
        return healthy, self.model_.counterfactual(healthy, to="target", salient=codes)

    def effect_maps(self, n: int = 2000, random_state=None) -> pd.DataFrame:
        """Mean paired difference (diseased − healthy) of every ROI per subtype, in background-SD
        units (ROIs × ``subtype_1..K``): each subtype's atrophy pattern. All subtypes are drawn
        with the same seed, hence the same ``n`` synthetic healthy people.

        Parameters
        ----------
        n : int, default=2000
            Synthetic people per subtype.
        random_state : int, RandomState instance or None, default=None
            Seed of the draws; None uses the estimator's own.

        Returns
        -------
        maps : DataFrame of shape (n_rois, K)
            Columns ``subtype_1`` … ``subtype_K``, index the ROIs (named ``"roi"``).
        """
        check_is_fitted(self, "consensus_")
        maps = {}
        for k in range(1, self.n_subtypes_ + 1):
            healthy, diseased = self.sample_paired(n, subtype=k, random_state=random_state)
            maps[f"subtype_{k}"] = (diseased.to_numpy(float) - healthy.to_numpy(float)).mean(0) / self.model_.scale_
        return pd.DataFrame(maps, index=pd.Index(self.model_.feature_names_in_, name="roi"))

    # -- persistence -----------------------------------------------------------------------
    def _get_state(self) -> tuple[dict, dict]:
        """The model's own state (tensors prefixed ``model/``, as a pipeline saves its steps),
        the codes, the fold mixtures and the consensus; not the training patients' index (their
        identifiers)."""
        check_is_fitted(self, "consensus_")
        model_entry, model_tensors = nested_state(self.model_, "model")
        given = "none" if self.model is None else "fitted" if self.model is self.model_ else "unfitted"
        params = {k: v for k, v in self.get_params(deep=False).items() if k != "model"}
        criterion = lambda s: None if s is None else s.tolist()  # noqa: E731
        metadata = {
            "params": params,
            "model": {**model_entry, "given": given},
            "salient": list(self.salient_mean_.index), "salient_columns": list(self.salient_columns_),
            "n_subtypes": self.n_subtypes_,
            "bic": criterion(self.bic_), "silhouette": criterion(self.silhouette_), "mean_ari": self.fold_ari_,
        }
        arrays = {
            "salient_mean": self.salient_mean_, "codes": self.codes_, "weights": self.fold_weights_,
            "means": self.fold_means_, "covariances": self.fold_covariances_, "proba": self.consensus_.proba,
            "labels": self.consensus_.labels, "fold_labels": self.consensus_.fold_labels,
            "pairwise_ari": self.consensus_.pairwise_ari, "orders": np.array(self.consensus_.orders),
        }
        tensors = {k: persistence.to_tensor(np.array(v, dtype=np.float64)) for k, v in arrays.items()}
        return metadata, tensors | model_tensors

    @classmethod
    def _from_state(cls, metadata: dict, tensors: dict) -> SalientSubtypes:
        entry = metadata["model"]
        model = nested_from_state(entry, tensors, "model", "model")
        given = {"none": None, "fitted": model, "unfitted": clone(model)}[entry["given"]]
        estimator = cls(model=given, **metadata["params"])
        estimator.model_ = model
        estimator._set_state(metadata, tensors)
        return estimator

    def _set_state(self, metadata: dict, tensors: dict) -> None:
        array = {k: v.numpy() for k, v in tensors.items() if not k.startswith("model/")}
        as_int = lambda a: a.astype(np.int64)  # noqa: E731
        self.salient_mean_ = pd.Series(array["salient_mean"], index=metadata["salient"])
        self.salient_columns_ = metadata["salient_columns"]
        self.codes_ = pd.DataFrame(array["codes"], columns=self.salient_columns_)  # the file has no identifiers
        self.n_subtypes_ = metadata["n_subtypes"]
        ks = lambda start, n: pd.Index(range(start, start + n), name="n_subtypes")  # noqa: E731
        bic = metadata["bic"]
        self.bic_ = None if bic is None else pd.Series(bic, index=ks(1, len(bic)), name="bic")
        self.silhouette_ = None if metadata["silhouette"] is None else \
            pd.Series(metadata["silhouette"], index=ks(2, len(metadata["silhouette"])), name="silhouette")
        agreement = Consensus(
            array["proba"],
            as_int(array["labels"]),
            as_int(array["fold_labels"]),
            array["pairwise_ari"],
            metadata["mean_ari"],
            list(as_int(array["orders"])),
        )
        self._set_consensus(array["weights"], array["means"], array["covariances"], agreement)
