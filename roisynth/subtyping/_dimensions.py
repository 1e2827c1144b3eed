r"""Continuous disease dimensions from a contrastive model's salient space: patterns and per-patient loadings."""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.decomposition import non_negative_factorization
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils.validation import check_is_fitted

from ..utils.validation import seed_from
from ._agreement import dimension_consensus
from ._consensus import fold_subsets

_EDGE = 99  # percentile of the training loadings read as full severity (r = 1)


@dataclass
class SalientDimensions:
    """Result of :func:`salient_dimensions`.

    Parameters
    ----------
    r_indices : DataFrame of shape (n_target, K)
        Consensus severities ``r1..rK`` in [0, 1] of the patients, their index.
    pattern_maps : DataFrame of shape (n_rois, K)
        ROI change of each pattern at r = 1, raw units (index ``"roi"``).
    fold_corr : float
        Mean pairwise agreement (Rindices-corr) of the fold decompositions (nan with one fold).
    explained : float
        Share of the salient effects' squared norm the K patterns reproduce (consensus fold 1).

    Examples
    --------
    >>> import pandas as pd
    >>> from roisynth.subtyping import SalientDimensions
    >>> result = SalientDimensions(pd.DataFrame({"r1": [0.5]}), pd.DataFrame({"r1": [-1.0]}), float("nan"), 0.9)
    >>> result.explained
    0.9
    """

    r_indices: pd.DataFrame
    pattern_maps: pd.DataFrame
    fold_corr: float
    explained: float


def _effects(model, target) -> pd.DataFrame:
    """Salient effect of every patient, x − healthy twin (the change its salient code makes), in background-SD units."""
    twins = model.counterfactual(target, to="background")
    return (model._validate_X(target, "target")[0] - twins) / model.scale_


def salient_dimensions(model, target, n_dimensions: int = 3, *, n_folds: int = 5, fraction: float = 0.8,
                       random_state=None) -> SalientDimensions:
    r"""Disease dimensions from the salient space of a fitted contrastive model (:class:`~roisynth.ContrastiveVAE`).

    1. **Salient effects.** Each patient's effect is e_i = (x_i − x̃_i) / sd_CN, x̃_i its healthy twin
       (``model.counterfactual(target, to="background")``: its own salient code set to 0), so e_i
       holds what only the disease explains.
    2. **Non-negative decomposition.** The effects are split into their negative and positive parts,
       A = [max(−E, 0), max(E, 0)] (n × 2p: atrophy and growth), and factorized as A ≈ W H with W, H ≥ 0
       (NMF, K components): H's rows are the patterns, W the per-patient loadings.
    3. **Severities.** Loadings are scaled by their 99th percentile over the patients and clipped to
       [0, 1]: r_ik = min(W_ik / q_k, 1); a pattern's map at r = 1 is q_k (H_k,growth − H_k,atrophy) · sd_CN.
    4. **Folds.** ``n_folds`` factorizations on random ``fraction`` subsets of the patients (each then
       applied to all, W solved with H fixed), matched and averaged by
       :func:`~roisynth.subtyping.dimension_consensus`.

    Versus :class:`~roisynth.SurrealGAN`: no mapping to train (seconds once the contrastive model is
    fitted) and patterns share its paired synthesis; but the severities are only as good as the salient
    effects, which a VAE shrinks towards the mean and smooths across ROIs, and loadings are linear in the
    effect (no monotone severity curve, no synthetic patient for a chosen r).

    Parameters
    ----------
    model : fitted contrastive synthesizer
        A fitted :class:`~roisynth.ContrastiveVAE` or :class:`~roisynth.LinearContrastive`.
    target : DataFrame or ndarray of shape (n_target, n_rois)
        Patients' ROI volumes in raw units.
    n_dimensions : int, default=3
        K.
    n_folds : int, default=5
        Fold decompositions.
    fraction : float, default=0.8
        Share of the patients each fold sees.
    random_state : int, RandomState instance or None, default=None
        Seed of the folds and the NMF initializations.

    Returns
    -------
    SalientDimensions
        The severities, pattern maps and fold agreement.

    Examples
    --------
    >>> from roisynth import LinearContrastive, datasets
    >>> from roisynth.subtyping import salient_dimensions
    >>> cohort = datasets.load_example()
    >>> rois = datasets.roi_names()[:6]
    >>> cn, ad = (cohort.loc[cohort.diagnosis == d, rois] for d in ("CN", "AD"))
    >>> model = LinearContrastive(n_common=2, n_salient=2, random_state=0).fit(cn, ad)
    >>> result = salient_dimensions(model, ad, n_dimensions=2, n_folds=2, random_state=0)
    >>> result.r_indices.shape[1], result.pattern_maps.shape
    (2, (6, 2))
    """
    if not (hasattr(model, "counterfactual") and getattr(model, "can_pair", False)):
        raise TypeError(f"model must be a fitted contrastive synthesizer (ContrastiveVAE, LinearContrastive), got "
                        f"{type(model).__name__}")
    try:
        check_is_fitted(model, "feature_names_in_")
    except NotFittedError as exc:
        raise NotFittedError("model must be fitted on (background, target) first") from exc
    if isinstance(n_dimensions, bool) or not isinstance(n_dimensions, numbers.Integral) or n_dimensions < 1:
        raise ValueError(f"n_dimensions must be a positive integer, got {n_dimensions!r}")
    effects = _effects(model, target)
    a = np.hstack([np.maximum(-effects.to_numpy(), 0), np.maximum(effects.to_numpy(), 0)])
    if len(a) < 2 * n_dimensions:
        raise ValueError(f"target has {len(a)} rows: too few for n_dimensions={n_dimensions}")
    rng = np.random.default_rng(seed_from(random_state))
    folds = []
    for rows in fold_subsets(len(a), n_folds, fraction, rng):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            _, h, _ = non_negative_factorization(a[rows], n_components=n_dimensions, init="nndsvda", max_iter=500,
                                                 random_state=int(rng.integers(2**31 - 1)))
            w = non_negative_factorization(a, H=h, n_components=n_dimensions, init="custom", update_H=False,
                                           max_iter=500)[0]
        scale = np.maximum(np.percentile(w[rows], _EDGE, axis=0), 1e-12)
        folds.append((np.minimum(w / scale, 1), h * scale[:, None], w @ h))
    agreement = dimension_consensus([r for r, _, _ in folds])
    p = effects.shape[1]
    h = np.mean([h[order] for (_, h, _), order in zip(folds, agreement.orders)], axis=0)
    columns = [f"r{k + 1}" for k in range(n_dimensions)]
    maps = pd.DataFrame(((h[:, p:] - h[:, :p]) * model.scale_).T, columns=columns,
                        index=pd.Index(model.feature_names_in_, name="roi"))
    explained = 1 - float(((a - folds[0][2]) ** 2).sum() / max((a**2).sum(), 1e-300))
    return SalientDimensions(pd.DataFrame(agreement.r, index=effects.index, columns=columns), maps,
                             agreement.mean_agreement, explained)
