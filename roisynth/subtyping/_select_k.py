"""Choosing the number of subtypes or dimensions K by reproducibility across folds plus the model's own criterion."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.mixture import GaussianMixture

from ..metrics import mmd
from ..utils.validation import as_frame

_N_INIT = 5  # restarts of the GaussianMixture behind SalientSubtypes' BIC
_N_DRAWS = 3  # draws of synthetic patients whose MMD² is averaged
_RIDGE = 1e-2  # added to the controls' correlation matrix before whitening


@dataclass
class KSelection:
    """Result of :func:`select_k`.

    Parameters
    ----------
    table : DataFrame
        One row per K (index ``K``): ``agreement`` across folds, ``criterion`` (lower is better),
        ``stable`` (agreement ≥ the threshold) and ``recommended``.
    recommended : int
        The recommended K.
    criterion : str
        What the criterion column holds.
    evidence : str
        Why this K, in words.

    Examples
    --------
    >>> import pandas as pd
    >>> from roisynth.subtyping import KSelection
    >>> table = pd.DataFrame({"agreement": [0.9], "criterion": [1.0], "stable": [True], "recommended": [True]},
    ...                      index=pd.Index([2], name="K"))
    >>> KSelection(table, 2, "bic", "only K").recommended
    2
    """

    table: pd.DataFrame
    recommended: int
    criterion: str
    evidence: str

    def plot(self, ax=None):
        """Agreement (left axis) and criterion (right axis) against K, the recommended K marked.

        Parameters
        ----------
        ax : matplotlib Axes, default=None
            Where to draw; None makes a new figure.

        Returns
        -------
        ax : matplotlib Axes
        """
        import matplotlib.pyplot as plt

        if ax is None:
            ax = plt.subplots(figsize=(5, 3.2))[1]
        ks = self.table.index
        ax.plot(ks, self.table["agreement"], "o-", color="C0", label="agreement across folds")
        ax.set_xlabel("K")
        ax.set_ylabel("agreement across folds", color="C0")
        ax.axvline(self.recommended, color="grey", ls="--", lw=1)
        right = ax.twinx()
        right.plot(ks, self.table["criterion"], "s-", color="C1")
        right.set_ylabel(f"{self.criterion} (lower is better)", color="C1")
        ax.set_title(f"recommended K = {self.recommended}")
        return ax


def _parameter(estimator) -> str:
    params = estimator.get_params(deep=False)
    for name in ("n_patterns", "n_subtypes"):
        if name in params:
            return name
    raise TypeError(f"{type(estimator).__name__} has no n_patterns or n_subtypes: select_k works for SmileGAN, "
                    "SalientSubtypes and SurrealGAN")


def _agreement(model) -> float:
    for name in ("fold_corr_", "fold_ari_"):
        if hasattr(model, name):
            return float(getattr(model, name))
    raise TypeError(f"{type(model).__name__} reports no fold agreement")


def _disease_directions(background, target, n_directions: int):
    r"""Projection of ROI tables onto the ``n_directions`` directions in which patients depart most from controls.

    Each ROI is standardized on the controls (z = (x − mean_CN) / sd_CN) and whitened by the controls'
    correlation matrix R (W = (R + 0.01 I)^{−1/2}), so that controls have unit variance in every
    direction; the directions are the leading eigenvectors of the patients' second moment about the
    control mean in that space, E_PT[(W z)(W z)ᵀ] — the mean shift and the spread that disease adds.
    Beyond them patients vary like controls.

    Parameters
    ----------
    background : DataFrame or ndarray of shape (n_background, n_rois)
        Healthy subjects.
    target : DataFrame or ndarray of shape (n_target, n_rois)
        Patients, same columns.
    n_directions : int
        Number of directions (at most n_rois).

    Returns
    -------
    project : callable
        ``project(X)`` maps an (n, n_rois) array in raw units to its (n, n_directions) coordinates.
    eigenvalues : ndarray of shape (n_rois,)
        The eigenvalues of the patients' second moment, decreasing (1 = control-like variance).
    """
    background, target = np.asarray(background, dtype=np.float64), np.asarray(target, dtype=np.float64)
    mean, sd = background.mean(0), background.std(0, ddof=1)
    sd = np.where(sd > 0, sd, 1.0)
    p = background.shape[1]
    correlation = np.atleast_2d(np.cov(((background - mean) / sd).T)) + _RIDGE * np.eye(p)
    values, vectors = np.linalg.eigh(correlation)
    whiten = vectors @ np.diag(values ** -0.5) @ vectors.T
    y = ((target - mean) / sd) @ whiten
    eigenvalues, directions = np.linalg.eigh(y.T @ y / len(y))
    order = np.argsort(eigenvalues)[::-1]
    projection = whiten @ directions[:, order[:min(int(n_directions), p)]]
    return (lambda X: ((np.asarray(X, dtype=np.float64) - mean) / sd) @ projection), eigenvalues[order]


def _criterion(model, target: pd.DataFrame, project, seed: int) -> tuple[str, float]:
    """(name, value) of the model's own criterion, lower is better: the BIC of a K-component Gaussian mixture of the
    salient codes (SalientSubtypes), else the MMD² between synthetic patients (synthetic healthy people mapped by the
    model) and the real ones in the disease directions (``project``), the mean over _N_DRAWS draws."""
    if hasattr(model, "codes_"):
        codes = model.codes_.to_numpy()
        gmm = GaussianMixture(model.n_subtypes_, covariance_type="full", n_init=_N_INIT, random_state=seed).fit(codes)
        return "BIC of the salient codes", float(gmm.bic(codes))
    real = project(target.to_numpy(float))
    values = [mmd(project(model.sample_paired(len(target), random_state=seed + draw)[1][list(target.columns)]
                          .to_numpy(float)), real) for draw in range(_N_DRAWS)]
    return "MMD² synthetic vs real patients in the disease directions", float(np.mean(values))


def _recommend(table: pd.DataFrame, criterion: str, min_agreement: float, tolerance: float,
               n_directions: int) -> tuple[int, str]:
    """(recommended K, evidence) from the table's agreement and criterion; adds its ``stable`` column."""
    agreement = table["agreement"].fillna(-np.inf)
    table["stable"] = agreement >= min_agreement
    stable = table[table["stable"]]
    if stable.empty:
        best = int(agreement.idxmax())
        evidence = f"no K reaches agreement {min_agreement}: the most reproducible K"
    elif criterion.startswith("BIC"):
        best = int(stable["criterion"].idxmin())
        evidence = f"lowest BIC among the K with agreement ≥ {min_agreement}"
    else:
        values, every = stable["criterion"], table["criterion"]
        cutoff = values.min() + tolerance * (every.max() - every.min())
        best = int(values[values <= cutoff].index.min())
        worse = [f"K = {k} fits worse ({v:.3g})" for k, v in values.items() if k < best]
        evidence = "; ".join([f"K = {best}: smallest K with agreement ≥ {min_agreement} whose MMD² in the "
                              f"{n_directions} disease directions ({values[best]:.3g}) is within {tolerance:.0%} of "
                              f"the range over K ({every.min():.3g}–{every.max():.3g}) from the best stable "
                              f"({values.min():.3g})", *worse])
    unstable = [str(k) for k in table.index[~table["stable"]]]
    if unstable and not stable.empty:
        evidence += f"; not reproducible (agreement < {min_agreement}): K = {', '.join(unstable)}"
    return best, evidence


def select_k(estimator, background, target, ks=range(2, 6), *, min_agreement: float = 0.8, tolerance: float = 0.1,
             random_state=0) -> KSelection:
    r"""Choose K (subtypes of :class:`~roisynth.SmileGAN` / :class:`~roisynth.SalientSubtypes`, patterns of
    :class:`~roisynth.SurrealGAN`) by reproducibility across folds plus the model's own criterion.

    For each K the estimator is cloned with K set and fitted on (background, target), giving

    - its **agreement** across fold models (``fold_ari_``: mean pairwise ARI of the subtypes;
      ``fold_corr_``: mean pairwise Rindices-corr), the authors' reproducibility measure, and
    - its **criterion**, lower is better: for SalientSubtypes the BIC of a K-component Gaussian
      mixture of the salient codes; for the GAN models how well K patterns or subtypes reproduce
      the patients: the MMD² between synthetic patients (synthetic healthy people mapped by the
      model, ``len(target)`` of them, mean over 3 draws) and the real patients, measured in the
      ``max(ks)`` **disease directions** — the leading eigenvectors of the patients' second moment
      about the control mean once the controls are standardized and whitened (the mean shift and
      spread that disease adds; beyond them patients vary like controls). The directions are
      computed once from the data, the same for every K. In all ROIs the MMD² at the median
      bandwidth is dominated by the healthy variation, which every K draws from the same
      background synthesizer, so a missing pattern hardly moves it (on 139 ROIs with three
      planted patterns: 0.025 for K = 2 against 0.027 for K = 3); in the disease directions it
      does (0.034 against 0.019).

    K is **stable** when its agreement is at least ``min_agreement`` (folds find the same
    subtypes or patterns; an extra subtype or pattern splits arbitrarily and disagrees). Among
    stable K, the recommended one is, for the BIC, its minimizer; for the MMD², the smallest K whose
    criterion is within ``tolerance`` · (range of the criterion over all K tried) of the best stable
    one (more patterns than needed fit no better; too few fit clearly worse). The range is taken over
    all K, not the stable ones only, so that the tolerance keeps its scale when only two K are stable.
    With no stable K, the most reproducible one is recommended.

    Parameters
    ----------
    estimator : SmileGAN, SalientSubtypes or SurrealGAN
        An unfitted estimator with the other settings (``n_folds`` ≥ 2 for an agreement).
    background : DataFrame or ndarray of shape (n_background, n_rois)
        Healthy subjects.
    target : DataFrame or ndarray of shape (n_target, n_rois)
        Patients, same columns.
    ks : iterable of int, default=range(2, 6)
        The K tried.
    min_agreement : float, default=0.8
        Agreement from which a K is stable.
    tolerance : float, default=0.1
        Share of the range of the MMD² over all K within which a smaller K is preferred.
    random_state : int, default=0
        Seed of the criterion's draws.

    Returns
    -------
    KSelection
        The table, the recommended K and the evidence; ``.plot()`` draws it.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from roisynth import SurrealGAN
    >>> from roisynth.subtyping import select_k
    >>> rng = np.random.default_rng(0)
    >>> cn = pd.DataFrame(rng.normal(100, 5, (300, 6)), columns=[f"roi{i}" for i in range(6)])
    >>> r = rng.uniform(size=(300, 2))
    >>> atrophy = 25 * r @ np.kron(np.eye(2), np.ones(3))  # pattern 1 on roi0-2, pattern 2 on roi3-5
    >>> pt = pd.DataFrame(rng.normal(100, 5, (300, 6)) - atrophy, columns=cn.columns)
    >>> model = SurrealGAN(n_folds=3, max_iter=20, inverse_iter=200, verbose=False, random_state=0)
    >>> select_k(model, cn, pt, ks=[1, 2, 3]).recommended
    2
    """
    name = _parameter(estimator)
    background = as_frame(background, "background")
    target = as_frame(target, "target", feature_names=list(background.columns))
    ks = [int(k) for k in ks]
    if not ks:
        raise ValueError("ks must hold at least one K")
    models = {k: clone(estimator).set_params(**{name: k}).fit(background, target) for k in ks}
    return _select(models, background, target, min_agreement, tolerance, random_state)


def _select(models: dict, background: pd.DataFrame, target: pd.DataFrame, min_agreement: float, tolerance: float,
            random_state: int) -> KSelection:
    """:func:`select_k` given its fitted models ``{K: model}`` (benchmarks reuse saved fits through it)."""
    ks = list(models)
    project = _disease_directions(background.to_numpy(float), target.to_numpy(float), max(ks))[0]
    rows, criterion = [], ""
    for k, model in models.items():
        criterion, value = _criterion(model, target, project, random_state)
        rows.append({"K": k, "agreement": _agreement(model), "criterion": value})
    table = pd.DataFrame(rows).set_index("K")
    best, evidence = _recommend(table, criterion, min_agreement, tolerance, max(ks))
    table["recommended"] = table.index == best
    return KSelection(table, best, criterion, evidence)
