"""SurrealGAN: continuous disease patterns and per-patient severities (R-indices) by mapping healthy to patients.

Surreal-GAN (Yang, Wen & Davatzikos, ICLR 2022) models disease as K patterns, each with a
severity r_k ∈ [0, 1] per patient: a mapping f(x, r) turns a healthy subject x into a patient
with severities r, trained adversarially against real patients, and an inverse network g reads
the R-indices of real patients. Paired samples start from synthetic healthy people drawn from a
background synthesizer fitted on the CN, so neither they nor the model file hold a real subject.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.decomposition import FastICA
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..base import BaseSynthesizer, Persistent, TableEstimator
from ..nn import seeded, threads
from ..nn.surrealgan import SurrealGANModule
from ..utils import persistence
from ..utils._param_validation import Interval, validate_params
from ..utils.validation import check_choice, check_finite_output, check_sample_size, seed_from
from ._agreement import DimensionConsensus, dimension_agreement, dimension_consensus
from ._gan_common import FoldGANMixin

_MIN_SD = 0.05  # a pattern whose R-indices vary less than this over the patients has collapsed
_WARMUP = 300  # discriminator-only steps before the adversarial refinement
_INVERSE_LR = 3e-3  # Adam step of the inverse network's own training
_RIDGE = 1e-2  # added to the CN correlation matrix before whitening
_EDGE = 99  # percentile of the patients' source values read as full severity (r = 1)


def initial_patterns(uc: np.ndarray, up: np.ndarray, k: int, seed: int) -> np.ndarray:
    r"""Starting patterns (k × p, CN-SD units) from a linear decomposition of the patients' deviations.

    The deviations y − μ_CN are whitened by the CN covariance Σ (W = (Σ + εI)^{−1/2}), reduced to
    their k leading principal directions, and unmixed by FastICA into k independent sources
    (severities are independent under the method's uniform prior). Each source is oriented and
    scaled so that the CN mean sits at r = 0 and the patients' 99th percentile of distance from it
    at r = 1 (clipped to [0, 1]); the patterns are the least-squares slopes of the deviations on
    these severities.
    """
    p = uc.shape[1]
    cov = np.cov(uc.T).reshape(p, p) + _RIDGE * np.eye(p)
    w, v = np.linalg.eigh(cov)
    whiten = v @ np.diag(w ** -0.5) @ v.T
    yp, yc = up @ whiten, uc @ whiten
    directions = np.linalg.svd(yp - yp.mean(0), full_matrices=False)[2][:k].T
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ica = FastICA(k, random_state=seed, whiten="unit-variance", max_iter=500).fit(yp @ directions)
    sp, sc = ica.transform(yp @ directions), ica.transform(yc @ directions)
    centre = sc.mean(0)
    high, low = np.percentile(sp, _EDGE, axis=0), np.percentile(sp, 100 - _EDGE, axis=0)
    edge = np.where(np.abs(high - centre) >= np.abs(low - centre), high, low)
    r = np.clip((sp - centre) / (edge - centre), 0, 1)
    return np.linalg.lstsq(np.column_stack([np.ones(len(r)), r]), up, rcond=None)[0][1:]


class SurrealGAN(FoldGANMixin, Persistent, TableEstimator, BaseEstimator):
    r"""Surreal-GAN (Yang, Wen & Davatzikos 2022): K disease patterns and per-patient severities, with fold models.

    **Preprocessing.** As :class:`~roisynth.SmileGAN`: tables hold covariate-corrected ROI
    volumes; each ROI is normalized on the CN rows, u = 1 + (x − mean_CN) / (10·sd_CN); outputs
    are in raw units.

    **Model** (:class:`roisynth.nn.surrealgan.SurrealGANModule`). The mapping

    .. math:: f(x, r) = x + \sum_{k=1}^K \phi_k(r_k)\, v_k(x),\qquad r \in [0, 1]^K,

    with φ_k increasing, φ_k(0) = 0, φ_k(1) = 1 (monotone severity curves: a subject with r = 0 is
    unchanged and every ROI's change grows with r_k, the method's monotonicity and CN constraints
    by construction), turns a healthy subject into a patient; a discriminator D tells real
    patients y from ỹ = f(x, r) with r ~ Uniform[0, 1]^K; the patterns are pushed apart by the
    orthogonality loss λ‖ĈĈᵀ − I‖² on their normalized mean absolute changes; an inverse network
    g(y) ∈ (0, 1)^K is trained to recover r from f(x, r) (loss ‖g(ỹ) − r‖²) and gives the
    R-indices of real patients.

    **Schedule.** Adversarial training from random patterns needs the reference's hundreds of
    thousands of iterations; each fold model here starts instead from the patterns of a linear
    decomposition of the patients' deviations (:func:`initial_patterns`: CN-whitened PCA +
    FastICA), trains D alone for 300 steps, refines f adversarially for ``max_iter`` steps
    (step size ``learning_rate``, D five times faster, both decayed linearly to 0), then fits g
    on fresh mapped pairs (f fixed) for ``inverse_iter`` steps.

    **Folds.** ``n_folds`` models, each on a random ``fraction`` of the CN and of the PT rows, are
    matched (Hungarian algorithm on the correlations of their R-indices) and averaged
    (:func:`roisynth.subtyping.dimension_consensus`); their agreement is the reference's
    Rindices-corr, the mean of the dimension and difference correlations over pairs of folds. A
    fold fails when a pattern collapsed (its R-indices vary by less than 0.05 over the
    patients) or, with several folds, when its agreement with the consensus of the others is below
    ``min_fold_corr``; it is retrained with a new seed up to ``max_retries`` times, then the best
    attempt is kept with a ``ConvergenceWarning``.

    **Synthetic healthy side.** ``background_model`` (default a BIC
    :class:`~roisynth.GaussianMixtureSynthesizer`) is fitted on the CN rows; :meth:`sample` and
    :meth:`sample_paired` draw their healthy people from it. The file holds its parameters and
    the fold networks, no CN or patient row.

    Parameters
    ----------
    n_patterns : int, default=3
        K, the number of patterns (dimensions).
    n_folds : int, default=5
        Number of fold models.
    fraction : float, default=0.8
        Share of each cohort each fold model sees.
    change_weight : float, default=1.0
        μ, weight of the mean absolute change |f(x, r) − x| (normalized units).
    ortho_weight : float, default=10.0
        λ, weight of the orthogonality loss.
    lipschitz : float, default=0.5
        κ, bound of the weights of f and g (weight clipping, as the reference).
    n_hidden : int, default=64
        Width of the hidden layers.
    batch_size : int, default=256
        Rows of each cohort per step.
    learning_rate : float, default=2e-5
        Adam step of f in the adversarial refinement (D: five times larger).
    max_iter : int, default=400
        Adversarial refinement steps per fold model (0 keeps the starting patterns).
    inverse_iter : int, default=800
        Training steps of the inverse network g per fold model.
    min_fold_corr : float, default=0.8
        Agreement with the other folds' consensus below which a fold is retrained.
    max_retries : int, default=2
        Most retrainings per fold.
    background_model : estimator, default=None
        An unfitted roisynth synthesizer of the healthy cohort, fitted on the CN rows; None =
        ``GaussianMixtureSynthesizer(random_state=...)``. Synthesizers that store their training
        rows are refused.
    n_threads : int or None, default=1
        Torch threads during fit and inference (None: leave torch's setting).
    verbose : bool, default=True
        Show a progress bar.
    random_state : int, RandomState instance or None, default=None
        Int for bit-identical results on CPU.

    Attributes
    ----------
    consensus_ : DimensionConsensus
        Consensus and agreement of the fold models on the training patients.
    r_indices_ : DataFrame of shape (n_target, K)
        Consensus R-indices ``r1..rK`` of the training patients (a loaded model numbers them 0..n − 1).
    fold_corr_ : float
        Mean pairwise agreement between fold models (nan with one fold).
    retries_ : list of int
        Retrainings of each fold.
    converged_ : list of bool
        Whether each kept fold model passed every check.
    background_model_ : estimator
        The fitted background synthesizer.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> cn = pd.DataFrame(rng.normal(100, 5, (200, 6)), columns=[f"roi{i}" for i in range(6)])
    >>> r = rng.uniform(size=(200, 2))
    >>> pt = pd.DataFrame(rng.normal(100, 5, (200, 6)) - 20 * r @ np.array([[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]]),
    ...                   columns=cn.columns)
    >>> from roisynth import SurrealGAN
    >>> model = SurrealGAN(n_patterns=2, n_folds=2, max_iter=50, inverse_iter=300, verbose=False, random_state=0)
    >>> model = model.fit(cn, pt)
    >>> list(model.transform(pt).columns), model.pattern_maps().shape
    (['r1', 'r2'], (6, 2))
    """

    _module_class = SurrealGANModule
    _module_width = "n_patterns"
    _agreement_name = "agreement"
    _failure_advice = "Try fewer patterns or more inverse_iter."

    _parameter_constraints = {
        "n_patterns": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_folds": [Interval(numbers.Integral, 1, None, closed="left")],
        "fraction": [Interval(numbers.Real, 0, 1, closed="right")],
        "change_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "ortho_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "lipschitz": [Interval(numbers.Real, 0, None, closed="neither")],
        "n_hidden": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        "inverse_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "min_fold_corr": [Interval(numbers.Real, None, 1, closed="right")],
        "max_retries": [Interval(numbers.Integral, 0, None, closed="left")],
        "background_model": [BaseSynthesizer, None],
        "n_threads": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "verbose": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(self, *, n_patterns: int = 3, n_folds: int = 5, fraction: float = 0.8, change_weight: float = 1.0,
                 ortho_weight: float = 10.0, lipschitz: float = 0.5, n_hidden: int = 64, batch_size: int = 256,
                 learning_rate: float = 2e-5, max_iter: int = 400, inverse_iter: int = 800,
                 min_fold_corr: float = 0.8, max_retries: int = 2, background_model=None, n_threads: int | None = 1,
                 verbose: bool = True, random_state=None):
        self.n_patterns = n_patterns
        self.n_folds = n_folds
        self.fraction = fraction
        self.change_weight = change_weight
        self.ortho_weight = ortho_weight
        self.lipschitz = lipschitz
        self.n_hidden = n_hidden
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.inverse_iter = inverse_iter
        self.min_fold_corr = min_fold_corr
        self.max_retries = max_retries
        self.background_model = background_model
        self.n_threads = n_threads
        self.verbose = verbose
        self.random_state = random_state

    # -- scaling ---------------------------------------------------------------------------
    @property
    def _columns(self) -> list[str]:
        return [f"r{k + 1}" for k in range(self.n_patterns)]

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, background, target=None):
        """Fit the fold models and their consensus.

        Parameters
        ----------
        background : DataFrame or ndarray of shape (n_background, n_rois)
            ROI volumes of healthy controls (covariate-corrected if needed).
        target : DataFrame or ndarray of shape (n_target, n_rois)
            ROI volumes of the patients, same columns; required (None raises a ``ValueError``).

        Returns
        -------
        self : SurrealGAN
            The fitted estimator.
        """
        validate_params(self)
        self._check_fit_inputs(target)
        Xc, Xp = self._validate_fit_tables(background, target)
        if len(Xp) < 10 * self.n_patterns:
            raise ValueError(f"target has {len(Xp)} rows: too few for n_patterns={self.n_patterns} (at least "
                             f"{10 * self.n_patterns})")
        xc, xp = self._normalize(Xc), self._normalize(Xp)
        rng = check_random_state(self.random_state)
        kept = self._train_folds(xc, xp, rng)
        index = target.index if isinstance(target, pd.DataFrame) else pd.RangeIndex(len(Xp))
        self._set_consensus(dimension_consensus([run["r"] for run in kept]), index)
        self.background_model_ = self._fit_background_model(Xc, rng)
        return self

    def _train_fold(self, xc: torch.Tensor, xp: torch.Tensor, xp_all: torch.Tensor, seed: int) -> dict:
        """Train one fold model; returns it with its R-indices of all patients and its checks."""
        k, n = self.n_patterns, self.batch_size
        start = initial_patterns(((xc - 1) * 10).double().numpy(), ((xp - 1) * 10).double().numpy(), k, seed % 2**31)
        with seeded(seed):
            module = SurrealGANModule(self.n_features_in_, k, self.n_hidden)
            module.mapping.start_from(torch.as_tensor(start / 10, dtype=torch.float32))
            module.clip(self.lipschitz)
            opt_f = torch.optim.Adam(module.mapping.parameters(), lr=self.learning_rate, betas=(0.5, 0.999))
            opt_d = torch.optim.Adam(module.discriminator.parameters(), lr=5 * self.learning_rate, betas=(0.5, 0.999))
            total = _WARMUP + self.max_iter
            decay_d = torch.optim.lr_scheduler.LambdaLR(opt_d, lambda i: 1 - i / total)
            decay_f = torch.optim.lr_scheduler.LambdaLR(opt_f, lambda i: 1 - i / max(self.max_iter, 1))
            for it in range(total):
                x, y, r = xc[torch.randint(len(xc), (n,))], xp[torch.randint(len(xp), (n,))], torch.rand(n, k)
                opt_d.zero_grad(set_to_none=True)
                module.discriminator_loss(x, y, r).backward()
                opt_d.step()
                if it >= _WARMUP:
                    opt_f.zero_grad(set_to_none=True)
                    module.generator_loss(x, r, 0.0, self.change_weight, self.ortho_weight).backward()
                    opt_f.step()
                    module.clip(self.lipschitz)
                    decay_f.step()
                decay_d.step()
            opt_g = torch.optim.Adam(module.inverse.parameters(), lr=_INVERSE_LR)
            for _ in range(self.inverse_iter):
                x, r = xc[torch.randint(len(xc), (2 * n,))], torch.rand(2 * n, k)
                with torch.no_grad():
                    fake = module.mapping(x, r)
                opt_g.zero_grad(set_to_none=True)
                (torch.sigmoid(module.inverse(fake)) - r).pow(2).mean().backward()
                opt_g.step()
        module.eval()
        r_all = module.r_indices(xp_all).double().numpy()
        spread = float(r_all.std(0).min())
        why = f"collapsed: R-index SDs {np.round(r_all.std(0), 3).tolist()}" if spread < _MIN_SD else ""
        return {"module": module, "r": r_all, "ok": not why, "why": why, "spread": spread}

    @staticmethod
    def _best(tried: list[dict]) -> dict:
        """The attempt that passed, else any, with the widest spread of R-indices."""
        return max(tried, key=lambda run: (run["ok"], run["spread"]))

    def _fold_reference(self, others: list[dict]) -> np.ndarray:
        return dimension_consensus([run["r"] for run in others]).r

    def _fold_agreement(self, reference: np.ndarray, run: dict) -> float:
        return float(np.mean(dimension_agreement(reference, run["r"])))

    @property
    def _min_agreement(self) -> float:
        return self.min_fold_corr

    def _set_consensus(self, result: DimensionConsensus, index) -> None:
        self.consensus_ = result
        self.fold_corr_ = result.mean_agreement
        self.r_indices_ = pd.DataFrame(result.r, index=index, columns=self._columns)
        self.best_fold_ = int(np.argmax(result.pairwise.mean(1)))

    # -- inference -------------------------------------------------------------------------
    def transform(self, X) -> pd.DataFrame:
        """R-indices of patients: the mean over fold models of their consensus-aligned g(y).

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_samples, n_rois)
            Patients' ROI volumes in raw units.

        Returns
        -------
        r : DataFrame of shape (n_samples, K)
            Severities ``r1..rK`` in [0, 1], the index of ``X``.
        """
        check_is_fitted(self, "modules_")
        df, values = self._validate_X(X, "X")
        y = self._normalize(values)
        with threads(self.n_threads):
            r = np.mean([m.r_indices(y).double().numpy()[:, order]
                         for m, order in zip(self.modules_, self.consensus_.orders)], axis=0)
        check_finite_output(r, type(self).__name__, "R-indices")
        return pd.DataFrame(r, index=df.index, columns=self._columns)

    def pattern_maps(self) -> pd.DataFrame:
        """ROI change of each pattern at full severity (r_k = 1, the others 0) for the average healthy person,
        in raw units: c_k(1, 1) of :class:`~roisynth.nn.surrealgan.PatternMapping`, averaged over the aligned folds.

        Returns
        -------
        maps : DataFrame of shape (n_rois, K)
            Columns ``r1..rK``, index the ROIs (named ``"roi"``).
        """
        check_is_fitted(self, "modules_")
        x = torch.ones(1, self.n_features_in_)
        with threads(self.n_threads), torch.no_grad():
            changes = np.mean([m.mapping.changes(x, torch.ones(1, self.n_patterns))[0].double().numpy()[order]
                               for m, order in zip(self.modules_, self.consensus_.orders)], axis=0)
        return pd.DataFrame((changes * 10 * self.scale_).T, index=pd.Index(self.feature_names_in_, name="roi"),
                            columns=self._columns)

    def _severities(self, r, n: int, rng: np.random.Generator) -> np.ndarray:
        """``r`` as an n × K array in [0, 1]: None draws Uniform[0, 1]^K (the model's prior)."""
        if r is None:
            return rng.uniform(size=(n, self.n_patterns))
        values = np.asarray(r, dtype=np.float64)
        try:
            values = np.broadcast_to(values, (n, self.n_patterns))
        except ValueError:
            raise ValueError(f"r must be a number, {self.n_patterns} severities or an array of shape "
                             f"({n}, {self.n_patterns}), got shape {values.shape}") from None
        if not ((values >= 0) & (values <= 1)).all():
            raise ValueError("r must hold severities in [0, 1]")
        return values

    def _map(self, x: torch.Tensor, r: np.ndarray) -> torch.Tensor:
        """f(x, r) of the best-agreeing fold model, r given in the consensus order."""
        order = self.consensus_.orders[self.best_fold_]
        own = np.empty_like(r)
        own[:, order] = r
        with threads(self.n_threads), torch.no_grad():
            return self.modules_[self.best_fold_].mapping(x, torch.as_tensor(own, dtype=torch.float32))

    def counterfactual(self, X, to: str = "target", r=1.0) -> pd.DataFrame:
        """Patient version f(x, r) of healthy subjects.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n, n_rois)
            ROI volumes of healthy subjects in raw units.
        to : {"target"}, default="target"
            The model maps healthy subjects to patients only.
        r : float, array-like of shape (K,) or (n, K), default=1.0
            Severities in [0, 1] of the twins.

        Returns
        -------
        twins : DataFrame
            The patient twins in raw units, with the index of ``X``.
        """
        check_choice(to, "to", ("target",))
        check_is_fitted(self, "modules_")
        df, values = self._validate_X(X, "X")
        return self._raw(self._map(self._normalize(values), self._severities(r, len(df), None)), df.index)

    def sample_paired(self, n: int, r=None, random_state=None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``n`` synthetic people healthy and with pattern severities ``r``: row i of both frames is one person.

        Parameters
        ----------
        n : int
            Number of pairs.
        r : float, array-like of shape (K,) or (n, K), default=None
            Severities in [0, 1]; None draws them from Uniform[0, 1]^K.
        random_state : int, RandomState instance or None, default=None
            Seed of this call; None uses the model's own.

        Returns
        -------
        healthy, patient : tuple of two DataFrames of shape (n, n_rois)
            Raw units; the healthy rows come from ``background_model_``, the patients are f(healthy, r).
        """
        check_is_fitted(self, "modules_")
        n = check_sample_size(n, self.n_features_in_)
        rng = np.random.default_rng(seed_from(self.random_state if random_state is None else random_state))
        severities = self._severities(r, n, rng)
        healthy = self.background_model_.sample(n, "background", random_state=int(rng.integers(2**31 - 1)))
        healthy = healthy[list(self.feature_names_in_)].reset_index(drop=True)
        return healthy, self._raw(self._map(self._normalize(healthy.to_numpy(np.float64)), severities))

    def sample(self, n: int, cohort: str = "target", random_state=None) -> pd.DataFrame:
        """``n`` synthetic subjects: healthy (``"background"``) or patients f(x, r), r ~ Uniform[0, 1]^K (``"target"``).

        Parameters
        ----------
        n : int
            Number of subjects.
        cohort : {"target", "background"}, default="target"
            The cohort to sample.
        random_state : int, RandomState instance or None, default=None
            Seed of this call; None uses the model's own.

        Returns
        -------
        samples : DataFrame of shape (n, n_rois)
            Synthetic ROI volumes in raw units.
        """
        check_choice(cohort, "cohort", ("target", "background"))
        healthy, patient = self.sample_paired(n, random_state=random_state)
        return healthy if cohort == "background" else patient

    # -- persistence -----------------------------------------------------------------------
    def _get_state(self) -> tuple[dict, dict]:
        """The fold networks, the consensus and the background synthesizer's own state; no training row and not
        the training patients' index."""
        check_is_fitted(self, "modules_")
        result = self.consensus_
        metadata, tensors = self._common_state()
        metadata["mean_agreement"] = result.mean_agreement
        tensors |= {"r": persistence.to_tensor(result.r), "pairwise": persistence.to_tensor(result.pairwise),
                    "orders": torch.as_tensor(np.array(result.orders))}
        return metadata, tensors

    def _set_state(self, metadata: dict, tensors: dict) -> None:
        self._set_common_state(metadata, tensors)
        result = DimensionConsensus(tensors["r"].numpy(), tensors["pairwise"].numpy(), metadata["mean_agreement"],
                                    list(tensors["orders"].numpy()))
        self._set_consensus(result, pd.RangeIndex(len(result.r)))  # the file has no training identifiers
