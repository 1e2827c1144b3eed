"""ConditionalVAE: a label-conditioned VAE baseline that pairs (Sohn et al. 2015)."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
import torch
from sklearn.utils.validation import check_is_fitted

from ..base import COHORTS
from ..nn import GaussianEncoder, threads
from ..nn.conditional import ConditionalVAEModule
from ..privacy import DifferentialPrivacy
from ..utils._param_validation import Interval
from ..utils.validation import check_choice
from ._neural import NeuralSynthesizer

_LABELS = {"background": 0.0, "target": 1.0}


class ConditionalVAE(NeuralSynthesizer):
    r"""Conditional VAE on the cohort label (Sohn et al. 2015), the paired baseline.

    With y = 0 for healthy controls and y = 1 for patients, the encoder q(z|x, y) and the
    decoder p(x|z, y) = N(f(z, y), Σ) both read the label; the Gaussian observation model
    has a learned per-ROI variance (or dense covariance), so samples carry the real spread.
    See :class:`roisynth.nn.conditional.ConditionalVAEModule` for the objective.

    Pairing: one synthetic person is one latent z (drawn like the patients' codes) decoded
    under both labels with one noise draw ε, healthy = f(z, 0) + ε, diseased = f(z, 1) + ε.
    The disease effect f(z, 1) − f(z, 0) depends on z, but the label is all-or-nothing: there
    is no per-subject latent severity or subtype as in the contrastive VAE's salient code s,
    so patients who share z get the same effect. Counterfactual twins of real subjects encode
    them under their own label and decode under the other.

    Parameters
    ----------
    n_latent : int, default=10
        Size of the latent z.
    n_hidden : int, default=64
        Width of the hidden layer of every two-layer MLP.
    noise : {"full", "diagonal", "none"}, default="full"
        Observation covariance Σ of p(x|z,y) = N(f(z,y), Σ): ``"full"`` (learned dense
        Σ: synthetic data keep the real residual correlations), ``"diagonal"`` (per-ROI
        variances only) or ``"none"`` (mean-only decoder, Σ = I fixed: samples are the means).
    latent_sampling : {"aggregate", "prior"}, default="aggregate"
        Where synthetic codes come from: ``"aggregate"`` (Gaussian mixtures fitted after
        training to the posterior codes of the training subjects, see
        :mod:`roisynth.synthesizers._latent_density`) or ``"prior"`` (N(0, I), as in Sohn et al.).
    calibration : {"moments", "none"}, default="moments"
        ``"moments"``: per-ROI intercepts set after training so that the synthetic cohort means
        (and the healthy side of pairs) equal the training means, the maximum-likelihood
        intercepts given the rest of the decoder (see :class:`~roisynth.ContrastiveVAE`);
        ``"none"``: no offsets.
    mmd_weight : float, default=0.0
        λ of the penalty λ·MMD²(μ_z target, μ_z background); 0 is the plain cVAE. A
        positive weight discourages the encoder from hiding the label in z, which otherwise
        weakens the label's effect in decoded pairs.
    epochs : int, default=500
        Most training epochs (Adam, betas 0.5, 0.999).
    batch_size : int, default=128
        Rows of each cohort per batch.
    learning_rate : float, default=1e-3
        Adam step size.
    validation_fraction : float, default=0.15
        Share of each cohort held out for early stopping when ``fit`` gets no explicit
        ``validation``; 0 trains all ``epochs`` without early stopping.
    eval_every : int, default=5
        Early stopping is judged every ``eval_every`` epochs by the Gaussian W2 between
        synthesized and validation data (sum over both cohorts).
    patience : int, default=50
        Training stops after ``patience`` epochs without improvement, restoring the best
        weights.
    nonnegative : bool, default=True
        Inputs are volumes, so negative values are rejected; a
        :class:`~roisynth.pipeline.SynthesisPipeline` sets False for its transformed values.
    n_threads : int or None, default=1
        Torch threads during fit (None: leave torch's setting). Sampling draws its chunks of
        2048 rows on this many threads (None: torch's thread count), each single-threaded,
        with the same rows, bit for bit, for any value.
    verbose : bool, default=True
        Show a progress bar.
    random_state : int, RandomState instance or None, default=None
        Int for bit-identical results on CPU; concurrent fits in one process run one at a time (torch's
        generator is process-wide), so they stay bit-identical when run from several threads.
    privacy : DifferentialPrivacy or None, default=None
        An (ε, δ) budget: ``fit`` trains by DP-SGD within it (:class:`~roisynth.privacy.DifferentialPrivacy`
        says what is and is not covered). The objective becomes per-subject (the batch MMD is replaced by each
        subject's MMD to the prior, ``mmd_weight`` still weighs it); ``latent_sampling``, ``validation_fraction``,
        ``eval_every`` and ``patience`` are not used (codes from N(0, I), all ``epochs`` trained); the
        calibration offsets use cohort means released inside the budget; the standardization uses public
        bounds. None: the ordinary fit.

    Attributes
    ----------
    module_ : ConditionalVAEModule
        The trained torch module (:class:`roisynth.nn.conditional.ConditionalVAEModule`).
    history_ : TrainingHistory
        Training losses and validation scores (:class:`roisynth.nn.TrainingHistory`).
    n_epochs_ : int
        The epoch whose weights were kept.
    background_latents_, target_latents_ : LatentMixture or None
        Gaussian mixtures of the healthy and the patients' codes z that synthetic codes are
        drawn from; None with ``latent_sampling="prior"``.
    calibration_offsets_ : ndarray of shape (3, n_features_in_) or None
        Intercepts b_B (healthy samples), b_H (healthy side of pairs) and b_T (patients) in
        background-SD units; None with ``calibration="none"``.
    mean_, scale_ : ndarray of shape (n_features_in_,)
        Mean and SD of every ROI in the background (the internal standardization); under ``privacy``
        the centre and scale of the public bounds.
    privacy_spent_ : tuple of (float, float) or None
        The (ε, δ) a private fit spent (ε ≤ ``privacy.epsilon``), saved with the model; None without
        ``privacy``.
    noise_multiplier_ : float or None
        σ of the DP-SGD steps of a private fit; None without ``privacy``.
    means_noise_multiplier_ : float or None
        Noise multiplier of the released cohort means of a private fit; None without ``privacy`` or
        without calibration.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        The ROI columns.

    Examples
    --------
    >>> from roisynth import datasets
    >>> cohort = datasets.load_example()
    >>> rois = datasets.roi_names()[:6]
    >>> cn, ad = (cohort.loc[cohort.diagnosis == d, rois] for d in ("CN", "AD"))
    >>> from roisynth import ConditionalVAE
    >>> model = ConditionalVAE(n_latent=3, epochs=2, verbose=False, random_state=0).fit(cn, ad)
    >>> model.counterfactual(ad.iloc[:4], to="background").shape
    (4, 6)
    """

    _latent_condition = False
    _parameter_constraints = {
        **NeuralSynthesizer._parameter_constraints,
        "n_latent": [Interval(numbers.Integral, 1, None, closed="left")],
        "mmd_weight": [Interval(numbers.Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        *,
        n_latent: int = 10,
        n_hidden: int = 64,
        noise: str = "full",
        latent_sampling: str = "aggregate",
        calibration: str = "moments",
        mmd_weight: float = 0.0,
        epochs: int = 500,
        batch_size: int = 128,
        learning_rate: float = 1e-3,
        validation_fraction: float = 0.15,
        eval_every: int = 5,
        patience: int = 50,
        nonnegative: bool = True,
        n_threads: int | None = 1,
        verbose: bool = True,
        random_state=None,
        privacy: DifferentialPrivacy | None = None,
    ):
        self.n_latent = n_latent
        self.n_hidden = n_hidden
        self.noise = noise
        self.latent_sampling = latent_sampling
        self.calibration = calibration
        self.mmd_weight = mmd_weight
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.eval_every = eval_every
        self.patience = patience
        self.nonnegative = nonnegative
        self.n_threads = n_threads
        self.verbose = verbose
        self.random_state = random_state
        self.privacy = privacy

    # -- the model -----------------------------------------------------------------------
    def _build_module(self) -> ConditionalVAEModule:
        return ConditionalVAEModule(self.n_features_in_, self.n_latent, self.n_hidden, self.noise)

    def _loss(self, xb: torch.Tensor, xt: torch.Tensor) -> torch.Tensor:
        return self.module_.loss(xb, xt, self.mmd_weight)

    def _condition(self, k: int) -> torch.Tensor:
        return torch.ones(k, 1)

    def _private_loss(self, x, label, eps, prior):
        return self.module_.private_loss(x, label, eps, prior, self.mmd_weight)

    def _code_sizes(self) -> tuple[int, ...]:
        return self.n_latent, self.n_latent

    def _posterior_draws(self, xb: torch.Tensor, xt: torch.Tensor, noise=(None, None), repeat: int = 1):
        """``repeat`` draws per row of z ~ q(z|x_b, 0) and z ~ q(z|x_t, 1); ``noise`` fixes the ε's."""
        posteriors = (self.module_.posterior(xb, 0.0), self.module_.posterior(xt, 1.0))
        zb, zt = (GaussianEncoder.rsample(*(u.repeat(repeat, 1) for u in posterior), eps)
                  for posterior, eps in zip(posteriors, noise))
        return zb, zt, None

    # -- inference on real subjects -------------------------------------------------------
    def _posterior_mean(self, values: np.ndarray, cohort: str) -> torch.Tensor:
        x = self._as_tensor(values)
        with threads(self.n_threads), torch.no_grad():
            return self.module_.posterior(x, _LABELS[cohort])[0]

    def transform(self, X, cohort: str = "target") -> pd.DataFrame:
        """Posterior means of z given the rows and the label of ``cohort``: columns z1..z{n_latent}.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_samples, n_features_in_)
            ROI volumes in raw units.
        cohort : {"target", "background"}, default="target"
            The label y the rows are encoded with.

        Returns
        -------
        latents : DataFrame of shape (n_samples, n_latent)
            E[z | x, y] of every row, the index of ``X``.
        """
        check_is_fitted(self, "module_")
        check_choice(cohort, "cohort", COHORTS)
        df, values = self._validate_X(X)
        columns = [f"z{i + 1}" for i in range(self.n_latent)]
        return pd.DataFrame(self._posterior_mean(values, cohort).double().numpy(), index=df.index, columns=columns)

    def _counterfactual_codes(self, values: np.ndarray, to: str, salient, random_state):
        """Healthy twins encode the rows as patients (y = 1) and decode with y = 0; diseased
        twins encode them as healthy (y = 0) and decode with y = 1."""
        if salient is not None:
            raise ValueError(
                "ConditionalVAE has no salient code: the disease is the label y = 1 itself; leave salient=None"
            )
        if to == "background":
            return self._posterior_mean(values, "target"), self._condition(len(values)), None
        return self._posterior_mean(values, "background"), None, self._condition(len(values))
