"""SmileGAN: semi-supervised disease subtyping by mapping healthy subjects to patients.

Smile-GAN (Yang et al. 2021, *Nat. Commun.* 12:7065) learns k mapping directions that turn
healthy controls (CN) into patients (PT); the network that recovers the direction from a
mapped subject then assigns real patients to subtypes. Because every subtype is a change
*from* the healthy population, normal variation among CN is not mistaken for subtypes.
Paired samples start from synthetic healthy people, drawn from a background synthesizer fitted
on the CN, so neither they nor the model file hold a real subject.
"""

from __future__ import annotations

import itertools
import numbers

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.metrics import adjusted_rand_score
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..base import BaseSynthesizer, Persistent, TableEstimator
from ..nn import seeded, threads
from ..nn.smilegan import SmileGANModule
from ..utils import persistence
from ..utils._param_validation import Interval, validate_params
from ..utils.validation import check_choice, check_finite_output, check_sample_size, seed_from
from ._consensus import Consensus, SubtypeMixin, consensus
from ._gan_common import FoldGANMixin

_MIN_SHARE = 0.01  # a subtype holding fewer patients than this share (or none) has collapsed


class SmileGAN(SubtypeMixin, FoldGANMixin, Persistent, TableEstimator, BaseEstimator):
    r"""Smile-GAN subtyping (Yang et al. 2021) with cross-validated consensus.

    **Preprocessing.** Tables hold ROI volumes that are already corrected for covariates if
    needed (e.g. with :class:`~roisynth.preprocessing.CovariateResidualizer` fitted on the CN
    rows, as the method does). Each ROI is normalized on the CN rows as in the reference,
    u = 1 + (x − mean_CN) / (10·sd_CN), so CN have mean 1 and SD 0.1; outputs are in raw units.

    **Model** (:class:`roisynth.nn.smilegan.SmileGANModule`). A mapping f(x, z) = x + h(x, z)
    turns a healthy subject x into a patient of subtype z ∈ {e_1..e_k}; a discriminator D tells
    real patients y from mapped subjects ỹ = f(x, z) with z drawn uniformly; a clustering
    network g recovers z from ỹ. Alternating Adam steps (one D step, then one (f, g) step on
    fresh mini-batches; the step size decays linearly to 0 at ``max_iter``) minimize

    .. math:: \mathcal L_D = \mathrm{BCE}(D(y), 1) + \mathrm{BCE}(D(\tilde y), 0),\qquad
              \mathcal L_{f,g} = \mathrm{BCE}(D(\tilde y), 1) + \lambda\,\mathrm{CE}(g(\tilde y), z)
              + \mu\,\overline{\lvert \tilde y - x \rvert}

    with f and g kept Lipschitz by weight clipping to [−κ, κ] after each step (as in the
    reference). A patient's subtype probabilities are softmax(g(y)).

    **Schedule and convergence.** Each fold model runs the whole schedule of ``max_iter``
    iterations: stopping as soon as the assignments stopped changing (our earlier rule, close to
    the reference's) ended many runs in a poor local optimum, while runs taken to the end of the
    decay rarely stay there. The fold has converged when, at each of the last ``patience``
    checks (``eval_every`` iterations apart), at most ``tol`` of its patients changed subtype.

    **Folds.** ``n_folds`` models, each on a random ``fraction`` of the CN and of the PT rows,
    are aligned (Hungarian matching) and averaged into a consensus
    (:func:`roisynth.subtyping.consensus`); their agreement is the mean pairwise ARI. A fold
    fails when it did not converge, when a subtype collapsed (under 1 % of the patients) or,
    with several folds, when its ARI with the consensus of the others is below
    ``min_fold_ari``; it is retrained with a new seed up to ``max_retries`` times, then the
    best attempt is kept with a ``ConvergenceWarning``.

    **Synthetic healthy side.** After the fold models, ``background_model`` (by default a
    :class:`~roisynth.GaussianMixtureSynthesizer` whose number of components is chosen by BIC) is
    fitted on the CN rows; :meth:`sample_paired` draws its healthy people from it and maps them
    to patients. The model file holds that synthesizer's parameters and the fold networks, no
    CN or patient row: the training CN are used to learn the mapping only.

    Parameters
    ----------
    n_subtypes : int, default=3
        k, the number of subtypes.
    n_folds : int, default=1
        Number of fold models.
    fraction : float, default=0.8
        Share of each cohort each fold model sees.
    change_weight : float, default=5.0
        μ, weight of the mean absolute change |f(x, z) − x| (normalized units).
    cluster_weight : float, default=3.0
        λ, weight of the cross-entropy of g on mapped subjects (the reference uses 9, which
        more often ends in two subtypes merged and one split: the settings sweep in
        ``benchmarks/RESULTS.md``).
    lipschitz : float, default=0.5
        κ, bound of the weights of f and g.
    n_hidden : int, default=128
        Width of the hidden layers.
    batch_size : int, default=256
        Rows of each cohort per step.
    learning_rate : float, default=2e-3
        Initial Adam step of f, g and D (betas 0.5, 0.999), decayed linearly to 0 at
        ``max_iter`` so that the assignments settle.
    max_iter : int, default=8000
        Iterations per fold model.
    eval_every : int, default=50
        Iterations between two convergence checks (see above).
    tol : float, default=0.005
        Largest share of patients that may change subtype between two checks.
    patience : int, default=3
        Number of final checks that must each pass ``tol``.
    min_fold_ari : float, default=0.7
        ARI with the other folds' consensus below which a fold is retrained (a fold that
        agrees less has, as a rule, merged two subtypes and split another).
    max_retries : int, default=3
        Most retrainings per fold.
    background_model : estimator, default=None
        An unfitted roisynth synthesizer of the healthy cohort, cloned and fitted on the CN rows
        alone (``fit(background)``) for the healthy halves of :meth:`sample_paired`; None =
        ``GaussianMixtureSynthesizer(random_state=...)`` seeded from ``random_state``. A
        synthesizer that stores its training data (``stores_training_data = True``, e.g.
        :class:`~roisynth.KDESynthesizer`) is refused: it would put the CN rows in the file.
    n_threads : int or None, default=1
        Torch threads during fit and inference (None: leave torch's setting).
    verbose : bool, default=True
        Show a progress bar.
    random_state : int, RandomState instance or None, default=None
        Int for bit-identical results on CPU; concurrent fits in one process run one at a time (torch's
        generator is process-wide), so they stay bit-identical when run from several threads.

    Attributes
    ----------
    consensus_ : Consensus
        :class:`roisynth.subtyping.Consensus` of the fold models on the training patients.
    labels_ : Series of shape (n_target,)
        Consensus subtype (1..k) of each training patient, the input's index (a loaded model
        numbers them 0..n_target − 1: its file keeps no training identifier).
    fold_ari_ : float
        Mean pairwise ARI between fold models (nan with one fold).
    retries_ : list of int
        Retrainings of each fold.
    converged_ : list of bool
        Whether each fold model kept passed every check.
    background_model_ : estimator
        The fitted background synthesizer, source of the healthy halves of :meth:`sample_paired`.

    Examples
    --------
    >>> from roisynth import datasets
    >>> cohort = datasets.load_example()
    >>> rois = datasets.roi_names()[:6]
    >>> cn, ad = (cohort.loc[cohort.diagnosis == d, rois] for d in ("CN", "AD"))
    >>> import warnings
    >>> from roisynth import SmileGAN
    >>> model = SmileGAN(n_subtypes=2, max_iter=20, max_retries=0, verbose=False, random_state=0)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")  # 20 iterations do not converge
    ...     model = model.fit(cn, ad)
    >>> model.predict_proba(ad).shape, model.counterfactual(cn.iloc[:3], to="target", subtype=2).shape
    ((..., 2), (3, 6))
    """

    _module_class = SmileGANModule
    _module_width = "n_subtypes"
    _agreement_name = "ARI"
    _failure_advice = "Try more max_iter, another change_weight or fewer subtypes."

    _parameter_constraints = {
        "n_subtypes": [Interval(numbers.Integral, 2, None, closed="left")],
        "n_folds": [Interval(numbers.Integral, 1, None, closed="left")],
        "fraction": [Interval(numbers.Real, 0, 1, closed="right")],
        "change_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "cluster_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "lipschitz": [Interval(numbers.Real, 0, None, closed="neither")],
        "n_hidden": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "eval_every": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "patience": [Interval(numbers.Integral, 1, None, closed="left")],
        "min_fold_ari": [Interval(numbers.Real, 0, None, closed="left")],
        "max_retries": [Interval(numbers.Integral, 0, None, closed="left")],
        "background_model": [BaseSynthesizer, None],
        "n_threads": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "verbose": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        n_subtypes: int = 3,
        n_folds: int = 1,
        fraction: float = 0.8,
        change_weight: float = 5.0,
        cluster_weight: float = 3.0,
        lipschitz: float = 0.5,
        n_hidden: int = 128,
        batch_size: int = 256,
        learning_rate: float = 2e-3,
        max_iter: int = 8000,
        eval_every: int = 50,
        tol: float = 5e-3,
        patience: int = 3,
        min_fold_ari: float = 0.7,
        max_retries: int = 3,
        background_model=None,
        n_threads: int | None = 1,
        verbose: bool = True,
        random_state=None,
    ):
        self.n_subtypes = n_subtypes
        self.n_folds = n_folds
        self.fraction = fraction
        self.change_weight = change_weight
        self.cluster_weight = cluster_weight
        self.lipschitz = lipschitz
        self.n_hidden = n_hidden
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.eval_every = eval_every
        self.tol = tol
        self.patience = patience
        self.min_fold_ari = min_fold_ari
        self.max_retries = max_retries
        self.background_model = background_model
        self.n_threads = n_threads
        self.verbose = verbose
        self.random_state = random_state

    # -- input ---------------------------------------------------------------------------
    def _validate(self, X, name: str) -> tuple[pd.DataFrame, np.ndarray]:
        """A table of the fitted ROI columns (any order) and its normalized values."""
        check_is_fitted(self, "modules_")
        df, values = self._validate_X(X, name)
        return df, self._normalize(values)

    # -- fitting -------------------------------------------------------------------------
    def fit(self, background, target=None):
        """Fit the fold models and their consensus.

        Parameters
        ----------
        background : DataFrame or ndarray of shape (n_background, n_rois)
            ROI volumes of healthy controls (covariate-corrected if needed).
        target : DataFrame or ndarray of shape (n_target, n_rois), default=None
            ROI volumes of the patients to subtype, same columns; required (None raises a
            ``ValueError``).

        Returns
        -------
        self : SmileGAN
            The fitted estimator.
        """
        validate_params(self)
        self._check_fit_inputs(target)
        Xc, Xp = self._validate_fit_tables(background, target)
        if len(Xp) < 2 * self.n_subtypes:
            raise ValueError(f"target has {len(Xp)} rows: too few for {self.n_subtypes} subtypes")
        xc, xp = self._normalize(Xc), self._normalize(Xp)

        rng = check_random_state(self.random_state)
        kept = self._train_folds(xc, xp, rng)
        index = target.index if isinstance(target, pd.DataFrame) else pd.RangeIndex(len(Xp))
        self._set_consensus(consensus([run["proba"] for run in kept]), index)
        self.background_model_ = self._fit_background_model(Xc, rng)
        return self

    def _train_fold(self, xc: torch.Tensor, xp: torch.Tensor, xp_all: torch.Tensor, seed: int) -> dict:
        """Train one fold model; returns it with its probabilities on all patients and its checks."""
        k, n = self.n_subtypes, self.batch_size
        with seeded(seed):
            module = SmileGANModule(self.n_features_in_, k, self.n_hidden)
            module.clip(self.lipschitz)
            generator_params = itertools.chain(module.mapping.parameters(), module.clustering.parameters())
            opt_g = torch.optim.Adam(generator_params, lr=self.learning_rate, betas=(0.5, 0.999))
            opt_d = torch.optim.Adam(module.discriminator.parameters(), lr=self.learning_rate, betas=(0.5, 0.999))
            decay = [torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1 - i / self.max_iter) for opt in (opt_g, opt_d)]
            checks = {self.max_iter - j * self.eval_every for j in range(self.patience + 1)}
            history = []  # the fold's assignments at the last patience + 1 checks
            for it in range(1, self.max_iter + 1):
                x, y, c = xc[torch.randint(len(xc), (n,))], xp[torch.randint(len(xp), (n,))], torch.randint(k, (n,))
                opt_d.zero_grad(set_to_none=True)
                module.discriminator_loss(x, y, c).backward()
                opt_d.step()
                opt_g.zero_grad(set_to_none=True)
                module.generator_loss(x, y, c, self.cluster_weight, self.change_weight)[0].backward()
                opt_g.step()
                module.clip(self.lipschitz)
                for schedule in decay:
                    schedule.step()
                if it in checks:
                    history.append(module.proba(xp).argmax(1))
        module.eval()
        changes = [(a != b).double().mean().item() for a, b in zip(history, history[1:])]
        proba = module.proba(xp_all).double().numpy()
        shares = np.bincount(proba.argmax(1), minlength=k) / len(proba)
        why = []
        if len(changes) < self.patience or max(changes) > self.tol:
            why.append(f"assignments still changing at the end of max_iter={self.max_iter} iterations")
        if shares.min() < _MIN_SHARE:
            why.append(f"collapsed: subtype shares {np.round(shares, 3).tolist()}")
        return {"module": module, "proba": proba, "ok": not why, "why": ", ".join(why),
                "balance": float(shares.min())}

    @staticmethod
    def _best(tried: list[dict]) -> dict:
        """The attempt that passed, else the least collapsed one (largest smallest subtype)."""
        passed = [run for run in tried if run["ok"]]
        return passed[-1] if passed else max(tried, key=lambda run: run["balance"])

    def _fold_reference(self, others: list[dict]) -> np.ndarray:
        return consensus([run["proba"] for run in others]).labels

    def _fold_agreement(self, reference: np.ndarray, run: dict) -> float:
        return adjusted_rand_score(reference, run["proba"].argmax(1))

    @property
    def _min_agreement(self) -> float:
        return self.min_fold_ari

    def _set_consensus(self, result, index) -> None:
        self.consensus_ = result
        self.fold_ari_ = result.mean_ari
        self.labels_ = pd.Series(result.labels + 1, index=index, name="subtype")
        agreement = [adjusted_rand_score(result.labels, labels) for labels in result.fold_labels]
        self.best_fold_ = int(np.argmax(agreement))

    # -- inference -----------------------------------------------------------------------
    def _proba(self, X) -> tuple[pd.Index, np.ndarray]:
        """Mean over fold models of their consensus-aligned softmax(g(y))."""
        df, y = self._validate(X, "X")
        with threads(self.n_threads):
            proba = np.mean([m.proba(y).double().numpy()[:, order]
                             for m, order in zip(self.modules_, self.consensus_.orders)], axis=0)
        check_finite_output(proba, type(self).__name__, "subtype probabilities")
        return df.index, proba

    def _map(self, x: torch.Tensor, subtypes: np.ndarray) -> torch.Tensor:
        """f(x, e_π(s)) of the best-agreeing fold model, π aligning its subtypes with the consensus."""
        order = torch.as_tensor(np.asarray(self.consensus_.orders[self.best_fold_]))
        module = self.modules_[self.best_fold_]
        with threads(self.n_threads), torch.no_grad():
            return module.mapping(x, module.one_hot(order[torch.as_tensor(subtypes - 1)]))

    def _subtypes(self, subtype, n: int) -> np.ndarray:
        values = np.broadcast_to(np.asarray(subtype), (n,)) if np.ndim(subtype) == 0 else np.asarray(subtype)
        valid = (
            values.dtype.kind in "iu" and values.shape == (n,) and ((values >= 1) & (values <= self.n_subtypes)).all()
        )
        if not valid:
            raise ValueError(f"subtype must be an integer in 1..{self.n_subtypes} (or one per row), got {subtype!r}")
        return values.astype(np.int64)

    def counterfactual(self, X, to: str = "target", subtype=1) -> pd.DataFrame:
        """Patient version f(x, e_subtype) of healthy subjects.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n, n_rois)
            ROI volumes of healthy subjects in raw units.
        to : {"target"}, default="target"
            The cohort of the twins: the model maps healthy subjects to patients only.
        subtype : int or array-like of int, default=1
            Consensus subtype 1..k of the twins, one for all rows or one per row.

        Returns
        -------
        twins : DataFrame
            The patient twins in raw units, with the index of ``X``.
        """
        check_choice(to, "to", ("target",))
        df, x = self._validate(X, "X")
        return self._raw(self._map(x, self._subtypes(subtype, len(x))), df.index)

    def sample_paired(self, n: int, subtype: int | None = None, random_state=None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``n`` (healthy, patient) pairs in raw units; both frames are indexed by the pair's subtype.

        The healthy rows are synthetic CN subjects drawn from ``background_model_`` (fitted on
        the training CN), and the patient rows their mapped versions f(x, e_k) (the method's
        paired generator): no row is a real subject.

        Parameters
        ----------
        n : int
            Number of pairs.
        subtype : int or array-like of int, default=None
            Subtype 1..k of all pairs (or one per pair); None draws subtypes with the
            training patients' consensus frequencies.
        random_state : int, RandomState instance or None, default=None
            Seed of this call; None uses the model's own.

        Returns
        -------
        healthy, patient : tuple of two DataFrames of shape (n, n_features_in_)
            Raw units, both indexed by the pair's subtype.
        """
        check_is_fitted(self, "modules_")
        n = check_sample_size(n, self.n_features_in_)
        rng = np.random.default_rng(seed_from(self.random_state if random_state is None else random_state))
        if subtype is None:
            frequencies = np.bincount(self.consensus_.labels, minlength=self.n_subtypes) / len(self.consensus_.labels)
            subtypes = rng.choice(self.n_subtypes, n, p=frequencies) + 1
        else:
            subtypes = self._subtypes(subtype, n)
        seed = int(rng.integers(2**31 - 1))
        healthy = self.background_model_.sample(n, "background", random_state=seed)[list(self.feature_names_in_)]
        index = pd.Index(subtypes, name="subtype")
        patient = self._raw(self._map(self._normalize(healthy.to_numpy(np.float64)), subtypes), index)
        return healthy.set_axis(index), patient

    # -- persistence ---------------------------------------------------------------------
    def _get_state(self) -> tuple[dict, dict]:
        """The fold networks, the consensus and the background synthesizer's own state (tensors prefixed
        ``background_model/``); no training row and not the training patients' index (their identifiers)."""
        check_is_fitted(self, "modules_")
        result = self.consensus_
        metadata, tensors = self._common_state()
        metadata["mean_ari"] = result.mean_ari
        tensors |= {
            "proba": persistence.to_tensor(result.proba),
            "labels": torch.as_tensor(result.labels),
            "fold_labels": torch.as_tensor(result.fold_labels),
            "pairwise_ari": persistence.to_tensor(result.pairwise_ari),
            "orders": torch.as_tensor(np.array(result.orders)),
        }
        return metadata, tensors

    def _set_state(self, metadata: dict, tensors: dict) -> None:
        self._set_common_state(metadata, tensors)
        result = Consensus(tensors["proba"].numpy(), tensors["labels"].numpy(), tensors["fold_labels"].numpy(),
                           tensors["pairwise_ari"].numpy(), metadata["mean_ari"], list(tensors["orders"].numpy()))
        self._set_consensus(result, pd.RangeIndex(len(result.labels)))  # the file has no training identifiers
