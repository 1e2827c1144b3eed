"""What the neural paired synthesizers share: training with early stopping, latent densities,
chunked paired generation and counterfactual twins.

A subclass supplies a torch module with a :class:`~roisynth.nn.decoder.GaussianDecoder`
``decoder`` (the code is (z, c): a shared latent z and a condition c that is 0 for healthy
subjects) and says how to encode: ``_build_module``, ``_loss``, ``_posterior_draws``,
``_counterfactual_codes``. Everything else (fit, sample, sample_paired, counterfactual,
save/load) lives here, once.
"""

from __future__ import annotations

import math
import numbers
import warnings
from abc import abstractmethod

import numpy as np
import pandas as pd
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..base import COHORTS, BaseSynthesizer
from ..exceptions import SmallDataWarning
from ..metrics import GaussianReference
from ..nn import TrainingHistory, flush_denormal, seeded, threads, train, train_private
from ..nn.decoder import NOISES, blas_threads
from ..privacy import DifferentialPrivacy, epsilon, noise_multiplier
from ..privacy._differential_privacy import dp_sgd_schedule
from ..privacy._mechanisms import private_mean
from ..utils._param_validation import Interval, Options, validate_params
from ..utils.validation import check_choice, check_sample_size, seed_from
from ._latent_density import LatentMixture

_CHUNK = 2048  # rows generated at a time: the chunk buffers (2048 × p float32) stay in L2/L3 (16 384 was 22% slower)
_CALIBRATION_CODES = 131_072  # codes drawn to compute the calibration offsets (64 chunks)
_OFFSET_ROWS = {"background": 0, "healthy": 1, "target": 2}  # rows b_B, b_H, b_T of calibration_offsets_
_POSTERIOR_DRAWS = 8  # K, posterior draws per subject in the per-subject MMD of a private fit
_PRIOR_DRAWS = 64  # M, fixed prior draws it compares them with


class NeuralSynthesizer(BaseSynthesizer):
    """Base class of the VAE-type synthesizers (attributes documented in the subclasses).

    Subclass hooks: ``_build_module()``, ``_loss(xb, xt)``, ``_adversary()`` (optional),
    ``_posterior_draws(xb, xt, noise, repeat)`` → (z_B, z_T, c_T or None) with widths
    ``_code_sizes()``, ``_condition(k)`` (the decoder condition of k patients when it is
    not a latent, ``_latent_condition = False``),
    ``_counterfactual_codes(values, to, salient, random_state)`` → (z, c_own, c_new).
    """

    can_pair = True
    _latent_condition = True  # c is a latent code with a posterior (False: c is the fixed patient label)
    _parameter_constraints = {
        "n_hidden": [Interval(numbers.Integral, 1, None, closed="left")],
        "noise": [Options(set(NOISES))],
        "latent_sampling": [Options({"aggregate", "prior"})],
        "calibration": [Options({"moments", "none"})],
        "epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither"), Options({"auto"})],
        "validation_fraction": [Interval(numbers.Real, 0, 0.5, closed="left")],
        "eval_every": [Interval(numbers.Integral, 1, None, closed="left")],
        "patience": [Interval(numbers.Real, 0, None, closed="left")],
        "nonnegative": ["boolean"],
        "n_threads": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "verbose": ["boolean"],
        "random_state": ["random_state"],
        "privacy": [DifferentialPrivacy, None],
    }

    # -- fitting -------------------------------------------------------------------------
    def fit(self, background, target=None, validation=None):
        """Fit on unpaired healthy (``background``) and patient (``target``) tables.

        Parameters
        ----------
        background : DataFrame or ndarray of shape (n_background, n_rois)
            ROI volumes of healthy subjects in raw units.
        target : DataFrame or ndarray of shape (n_target, n_rois), default=None
            ROI volumes of patients, same columns; required (the model learns both cohorts),
            None raises a ``ValueError``.
        validation : tuple of two tables, default=None
            ``(background_val, target_val)`` for early stopping; None holds out
            ``validation_fraction`` of each cohort instead. Not allowed with ``privacy``
            (a private fit trains all ``epochs``).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        validate_params(self)
        if target is None:
            raise ValueError(f"{type(self).__name__} needs both cohorts: fit(background, target)")
        Xb, Xt = self._validate_fit_tables(background, target, nonnegative=self.nonnegative)
        if self.privacy is not None:
            return self._fit_private(Xb, Xt, validation)
        self.privacy_spent_ = self.noise_multiplier_ = self.means_noise_multiplier_ = None
        n_given = len(Xb), len(Xt)
        cohort_means = [self._standardize(X).mean(0) for X in (Xb, Xt)]
        rng = check_random_state(self.random_state)
        if validation is not None:
            if not isinstance(validation, (tuple, list)) or len(validation) != 2:
                raise TypeError("validation must be a (background_val, target_val) pair of tables")
            Vb = self._validate_X(validation[0], "validation background", min_rows=2)[1]
            Vt = self._validate_X(validation[1], "validation target", min_rows=2)[1]
        elif self.validation_fraction > 0:
            (Xb, Vb), (Xt, Vt) = (self._split(X, rng) for X in (Xb, Xt))
        else:
            Vb = Vt = None
        self._warn_if_small(*n_given, len(Xb), len(Xt))
        seed = seed_from(rng)
        with threads(self.n_threads), seeded(seed), flush_denormal():
            self.module_ = self._build_module()
            xb, xt = (torch.as_tensor(self._standardize(X), dtype=torch.float32) for X in (Xb, Xt))
            validate = None if Vb is None else self._validator(xb, xt, self._standardize(Vb), self._standardize(Vt))
            history = train(
                self.module_,
                self._loss,
                lambda: self._batches(xb, xt),
                epochs=self.epochs,
                lr=self._learning_rate(len(xb), len(xt)),
                validate=validate,
                eval_every=self.eval_every,
                patience=self.patience,
                verbose=self.verbose,
                desc=type(self).__name__,
                adversary=self._adversary(),
            )
            self._fit_latent_densities(xb, xt, seed)
            self._calibrate(*cohort_means, seed)
        self.history_ = history
        self.n_epochs_ = history.best_epoch
        return self

    def _fit_private(self, Xb: np.ndarray, Xt: np.ndarray, validation) -> NeuralSynthesizer:
        """``fit`` under ``privacy``: DP-SGD on the per-subject loss (:class:`~roisynth.privacy.DifferentialPrivacy`).

        The n subjects of both cohorts are one data set; q = min(1, 2·batch_size / n), T =
        ⌈epochs / q⌉ steps, δ from ``privacy.delta_for(n)`` and σ the smallest noise multiplier
        within (ε, δ) together with the released cohort means (a ``ValueError`` before training
        when none is). The standardization is the public one of ``privacy``; codes are sampled
        from the prior; the calibration offsets use the private means.
        """
        if validation is not None:
            raise ValueError("validation data are not used by a private fit (privacy=...): selecting the epoch on "
                             "them would spend budget outside the accountant; a private fit trains all epochs")
        self._check_private()
        self.mean_, self.scale_ = self.privacy.standardization(list(self.feature_names_in_))
        n = len(Xb) + len(Xt)
        delta = self.privacy.delta_for(n)
        sampling_rate, steps = dp_sgd_schedule(self.batch_size, self.epochs, n)
        calibrate = self.calibration != "none" and self.privacy.means_share > 0
        release = (self._means_noise_multiplier(delta),) if calibrate else ()
        gaussian = self.privacy.composed_with + release
        sigma = noise_multiplier(self.privacy.epsilon, delta, sampling_rate, steps, gaussian)
        self._warn_if_small(len(Xb), len(Xt), len(Xb), len(Xt))
        seed = seed_from(check_random_state(self.random_state))
        with threads(self.n_threads), seeded(seed), flush_denormal():
            self.module_ = self._build_module()
            x = torch.as_tensor(self._standardize(np.vstack([Xb, Xt])), dtype=torch.float32)
            label = torch.cat([torch.zeros(len(Xb)), torch.ones(len(Xt))])
            prior = torch.randn(_PRIOR_DRAWS, self._code_sizes()[0])
            train_private(
                self.module_,
                lambda x, label, eps: self._private_loss(x, label, eps, prior),
                (x, label),
                steps=steps,
                sampling_rate=sampling_rate,
                noise_multiplier=sigma,
                max_grad_norm=self.privacy.max_grad_norm,
                noise_shape=(_POSTERIOR_DRAWS, self._latent_width(joint=True)),
                lr=self._learning_rate(len(Xb), len(Xt)),
                verbose=self.verbose,
                desc=f"{type(self).__name__} (DP)",
            )
            means = [private_mean(x[label == k], *release).numpy() for k in (0, 1)] if calibrate else None
        self.background_latents_ = self.target_latents_ = self.calibration_offsets_ = None
        if calibrate:
            with threads(self.n_threads):
                self._calibrate(*means, seed)
        self.history_ = TrainingHistory(best_epoch=self.epochs)
        self.n_epochs_ = self.epochs
        self.noise_multiplier_ = sigma
        self.means_noise_multiplier_ = release[0] if calibrate else None
        self.privacy_spent_ = (epsilon(sampling_rate, sigma, steps, delta, gaussian), delta)
        return self

    def _means_noise_multiplier(self, delta: float) -> float:
        """Noise multiplier of the released cohort means: the Gaussian mechanism's for (means_share·ε, δ)."""
        budget = self.privacy.means_share * self.privacy.epsilon
        try:
            return noise_multiplier(budget, delta, 1.0, 1)
        except ValueError as exc:
            raise ValueError(f"privacy=DifferentialPrivacy(epsilon={self.privacy.epsilon:g}, means_share="
                             f"{self.privacy.means_share:g}) leaves the released cohort means epsilon={budget:g}, "
                             "too little for any useful noise; raise means_share or epsilon, or fit without "
                             "calibration (calibration='none' or means_share=0)") from exc

    def _check_private(self) -> None:
        """Refuse settings a private fit cannot honour (``ValueError`` naming the parameter)."""

    def _warn_if_small(self, n_background: int, n_target: int, train_background: int, train_target: int) -> None:
        """Warn (:class:`~roisynth.exceptions.SmallDataWarning`) when a cohort has fewer training rows
        (after the validation hold-out) than ROIs, saying what was fitted from how few rows and what
        to do; the advice rests on the measurements in ``benchmarks/RESULTS.md`` ("Small data")."""
        p = self.n_features_in_
        if min(train_background, train_target) >= p:
            return
        fitted = {"full": f"a dense observation covariance ({p * (p + 1) // 2} parameters)",
                  "diagonal": "a diagonal observation covariance", "none": "a mean-only decoder"}[self.noise]
        warnings.warn(
            f"{type(self).__name__}(n_hidden={self.n_hidden}, noise={self.noise!r}) fitted {fitted} and its "
            f"networks from {train_background} healthy and {train_target} patient training rows (of {n_background} "
            f"and {n_target} given) for {p} ROIs. With fewer training rows than ROIs the cohort means and effect "
            "sizes stay calibrated, but the synthetic distributions and twins are less faithful than with ~1000 "
            "subjects per cohort (benchmarks/RESULTS.md, 'Small data'). Check the fidelity against held-out data "
            "(roisynth.evaluation.fidelity_summary) and add subjects if you can",
            SmallDataWarning, stacklevel=3)

    def _learning_rate(self, train_background: int, train_target: int) -> float:
        """``learning_rate``, or for ``"auto"`` 2e-3 when both cohorts have at least as many training rows
        as ROIs and 1e-3 otherwise (see the subclass docstring)."""
        if self.learning_rate != "auto":
            return self.learning_rate
        return 2e-3 if min(train_background, train_target) >= self.n_features_in_ else 1e-3

    def _adversary(self):
        """(submodule, loss) trained against the model, or None (see :func:`roisynth.nn.train`)."""
        return None

    def _condition(self, k: int) -> torch.Tensor | None:
        """Decoder condition of ``k`` patients when it is fixed rather than a latent code."""
        return None

    # -- the hooks a subclass supplies ---------------------------------------------------
    @abstractmethod
    def _build_module(self) -> torch.nn.Module:
        """The torch module: encoders and a :class:`~roisynth.nn.decoder.GaussianDecoder` ``decoder``."""

    @abstractmethod
    def _loss(self, xb: torch.Tensor, xt: torch.Tensor) -> torch.Tensor:
        """Training loss of one batch of background and target rows (standardized)."""

    @abstractmethod
    def _private_loss(self, x: torch.Tensor, label: torch.Tensor, eps: torch.Tensor,
                      prior: torch.Tensor) -> torch.Tensor:
        """Per-subject training loss of a private fit, shape (n,): rows ``x`` (standardized), cohort
        labels (0/1), reparameterization draws of shape (n, K, code width) and the prior draws."""

    @abstractmethod
    def _code_sizes(self) -> tuple[int, ...]:
        """Widths of the posterior draws returned by ``_posterior_draws``."""

    @abstractmethod
    def _posterior_draws(self, xb: torch.Tensor, xt: torch.Tensor, noise=None, repeat: int = 1):
        """``repeat`` posterior draws per row: (z of background, z of target, c of target or None)."""

    @abstractmethod
    def _counterfactual_codes(self, values: np.ndarray, to: str, salient, random_state):
        """(z, c_own, c_new) of the rows ``values`` for a twin in cohort ``to``."""

    def _split(self, X: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
        n_val = max(2, int(round(self.validation_fraction * len(X))))
        if len(X) - n_val < 8:
            raise ValueError(f"too few rows ({len(X)}) to hold out a validation split; lower validation_fraction")
        order = rng.permutation(len(X))
        return X[order[n_val:]], X[order[:n_val]]

    def _batches(self, xb: torch.Tensor, xt: torch.Tensor):
        """One epoch: both cohorts shuffled and cut into the same number of batches."""
        n_batches = max(1, math.ceil(max(len(xb), len(xt)) / self.batch_size))
        parts_b = torch.randperm(len(xb)).tensor_split(n_batches)
        parts_t = torch.randperm(len(xt)).tensor_split(n_batches)
        for ib, it in zip(parts_b, parts_t):
            if len(ib) > 1 and len(it) > 1:
                yield xb[ib], xt[it]

    def _validator(self, xb: torch.Tensor, xt: torch.Tensor, vb: np.ndarray, vt: np.ndarray, n_eval: int = 2000):
        """Sum of Gaussian W2 (background + target) between validation data and a synthetic
        sample decoded from the aggregate posterior of (up to ``n_eval``) training subjects,
        with noise fixed across evaluations so that scores differ only through the model."""
        refs = GaussianReference(vb), GaussianReference(vt)
        roots = [torch.from_numpy(ref.sqrt) for ref in refs]
        rows = [torch.arange(n_eval) % len(x) for x in (xb, xt)]
        draws = [torch.randn(n_eval, d) for d in self._code_sizes()]
        noise = torch.randn(n_eval, self.n_features_in_)
        out = torch.empty(n_eval, self.n_features_in_)
        decoder = self.module_.decoder

        def distance(cohort: int) -> float:
            """Gaussian W2 of ``out`` to the reference (as GaussianReference.distance, without re-checking
            a table the model made): W2² = ‖m − m_r‖² + tr S + tr S_r − 2 Σ √eig(S_r^{1/2} S S_r^{1/2})."""
            y = out.double()
            mean = y.mean(0)
            centered = y - mean
            cov = centered.T @ centered / (n_eval - 1)
            root = torch.linalg.eigvalsh(roots[cohort] @ cov @ roots[cohort]).clamp_min(0).sqrt().sum()
            w2sq = (mean.numpy() - refs[cohort].mean) @ (mean.numpy() - refs[cohort].mean)
            return math.sqrt(max(w2sq + refs[cohort].trace + cov.trace().item() - 2 * root.item(), 0.0))

        def validate() -> float:
            zb, zt, ct = self._posterior_draws(xb[rows[0]], xt[rows[1]], draws)
            decoder.observe(zb, None, noise.clone(), (out, None))
            score = distance(0)
            decoder.observe(zt, self._condition(n_eval) if ct is None else ct, noise.clone(), (None, out))
            return score + distance(1)

        return validate

    def _fit_latent_densities(self, xb: torch.Tensor, xt: torch.Tensor, seed: int, draws: int = 4) -> None:
        """Gaussian mixtures on draws from the aggregate posteriors: codes of healthy subjects
        and of patients (``latent_sampling="aggregate"``, see :mod:`roisynth.synthesizers._latent_density`)."""
        self.background_latents_ = self.target_latents_ = None
        if self.latent_sampling == "prior":
            return
        with torch.no_grad():
            zb, zt, ct = self._posterior_draws(xb, xt, repeat=draws)
        target = zt if ct is None else torch.cat([zt, ct], 1)
        self.background_latents_ = LatentMixture.fit(zb.double().numpy(), random_state=seed)
        self.target_latents_ = LatentMixture.fit(target.double().numpy(), random_state=seed)

    def _calibrate(self, mean_background: np.ndarray, mean_target: np.ndarray, seed: int) -> None:
        """Per-ROI intercepts (standardized units) that make the synthetic cohort means equal the
        training means: rows b_B (unpaired healthy), b_H (healthy side of patients' codes) and b_T
        (patients), from ``_CALIBRATION_CODES`` codes of the model's own sampler drawn with a local
        generator seeded by ``seed`` (see the class docstrings for the maths)."""
        self.calibration_offsets_ = None
        if self.calibration == "none":
            return
        generator = torch.Generator().manual_seed(seed)
        decoder = self.module_.decoder
        sums = torch.zeros(3, self.n_features_in_, dtype=torch.float64)
        with torch.no_grad():
            for start in range(0, _CALIBRATION_CODES, _CHUNK):
                k = min(_CHUNK, _CALIBRATION_CODES - start)
                z_b = self._draw_codes(k, generator, joint=False)[0]
                z, c = self._draw_codes(k, generator, joint=True)
                for row, mean in enumerate((decoder(z_b), decoder(z), decoder(z, c))):
                    sums[row] += mean.sum(0, dtype=torch.float64)
        decoded = (sums / _CALIBRATION_CODES).numpy()
        self.calibration_offsets_ = np.stack([mean_background, mean_background, mean_target]) - decoded

    def _offsets(self, *rows: str) -> tuple[torch.Tensor, ...] | None:
        """Calibration offsets (float32, standardized units) named by ``rows`` in
        {"background", "healthy", "target"} (b_B, b_H, b_T), or None without calibration."""
        if self.calibration_offsets_ is None:
            return None
        return tuple(torch.as_tensor(self.calibration_offsets_[_OFFSET_ROWS[r]], dtype=torch.float32) for r in rows)

    # -- generation ----------------------------------------------------------------------
    def _latent_width(self, joint: bool) -> int:
        """Width of the codes of the aggregate-posterior mixture of patients (``joint``) or healthy subjects."""
        decoder = self.module_.decoder
        return decoder.n_shared + (decoder.n_condition if joint and self._latent_condition else 0)

    def _draw_codes(self, k: int, generator: torch.Generator, joint: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Codes of ``k`` synthetic people: (z, c) of patients if ``joint``, else z of healthy."""
        n_shared = self.module_.decoder.n_shared
        if self.background_latents_ is None:  # latent_sampling="prior", or a private fit
            z = torch.randn(k, n_shared, generator=generator)
            n_condition = self.module_.decoder.n_condition
            c = torch.randn(k, n_condition, generator=generator) if self._latent_condition else None
        elif not joint:
            return self.background_latents_.sample(k, generator), None
        else:
            codes = self.target_latents_.sample(k, generator)
            z, c = codes[:, :n_shared], codes[:, n_shared:] if self._latent_condition else None
        return z, self._condition(k) if c is None else c

    def _chunk_seeds(self, n: int, random_state) -> np.ndarray:
        """Seeds of the generators of the ``_CHUNK``-row chunks of an ``n``-row draw: the first
        ⌈n / _CHUNK⌉ words of ``SeedSequence(seed)`` (a longer draw extends, not changes, them)."""
        seed = self._sampling_seed(random_state)
        return np.random.SeedSequence(seed).generate_state(-(-n // _CHUNK), np.uint64)

    def _generate(self, n: int, random_state, which: tuple[str, ...], sink=None) -> list[pd.DataFrame]:
        """Raw-unit float32 tables of the requested cohorts.

        Paired and target rows decode patients' codes (z, c); a background-only request
        decodes healthy codes z. Generated in chunks of ``_CHUNK`` rows so that buffers stay in
        cache; chunk j draws from its own generator (:meth:`_chunk_seeds`), so chunks are
        independent of one another and ``n_threads`` single-threaded workers draw them in
        parallel (worker w takes chunks w, w + W, …) with the same rows, bit for bit, for any
        ``n_threads``. With ``sink``, each chunk's rows are handed to ``sink(start, stop, rows_B,
        rows_T)`` (arrays its worker reuses for its next chunk; None for a cohort not asked for;
        called from the workers' threads, for disjoint rows) instead of being gathered into
        tables, and nothing is returned: the same draws.
        """
        from concurrent.futures import ThreadPoolExecutor

        check_is_fitted(self, "module_")
        validate_params(self)  # n_threads may have been set since the fit; it sizes the pool of workers
        n = check_sample_size(n, self.n_features_in_)
        p, seeds = self.n_features_in_, self._chunk_seeds(n, random_state)
        n_chunks = len(seeds)
        arrays = {c: np.empty((n, p), dtype=np.float32) for c in which} if sink is None else None
        scale, shift = (torch.as_tensor(a, dtype=torch.float32) for a in (self.scale_, self.mean_))
        offsets = self._offsets("healthy" if "target" in which else "background", "target")
        draw = self.module_.decoder.sampler("background" in which, "target" in which, scale, shift, offsets)
        workers = max(1, min(n_chunks, self.n_threads or torch.get_num_threads()))

        def work(first: int) -> None:
            eps = torch.empty(_CHUNK, p)
            chunks = {c: np.empty((_CHUNK, p), dtype=np.float32) for c in which} if sink is not None else None
            with torch.no_grad():
                for j in range(first, n_chunks, workers):
                    start, stop = j * _CHUNK, min(n, (j + 1) * _CHUNK)
                    k = stop - start
                    generator = torch.Generator().manual_seed(int(seeds[j]))
                    z, c = self._draw_codes(k, generator, joint="target" in which)
                    torch.randn(k, p, generator=generator, out=eps[:k])
                    rows = [None if name not in which else arrays[name][start:stop] if sink is None
                            else chunks[name][:k] for name in COHORTS]
                    draw(z, c, eps[:k], tuple(None if r is None else torch.from_numpy(r) for r in rows))
                    if sink is not None:
                        sink(start, stop, *rows)

        with threads(1), blas_threads(1):  # process-wide settings, made once here for all the workers
            if workers == 1:
                work(0)
            else:
                with ThreadPoolExecutor(workers, thread_name_prefix="roisynth-sample") as pool:
                    list(pool.map(work, range(workers)))  # list(): a worker's exception is raised here
        if sink is not None:
            return []
        return [pd.DataFrame(arrays[c], columns=list(self.feature_names_in_), copy=False) for c in which]

    def _sample_paired_into(self, n: int, random_state, values: np.ndarray) -> None:
        """``sample_paired(n, random_state)`` written into ``values`` (p × 2n float32): row j is
        ROI j, columns 2i and 2i + 1 are person i healthy and diseased — the columns of
        :func:`roisynth.io.iter_samples`' paired blocks — one cached chunk at a time, without the
        two n × p tables and a transposing copy of them."""
        def sink(start: int, stop: int, background: np.ndarray, target: np.ndarray) -> None:
            values[:, 2 * start:2 * stop:2] = background.T
            values[:, 2 * start + 1:2 * stop:2] = target.T

        self._generate(n, random_state, ("background", "target"), sink=sink)

    def sample(self, n: int, cohort: str = "target", random_state=None) -> pd.DataFrame:
        """Draw ``n`` unpaired synthetic subjects of one cohort, in raw units (float32).

        Parameters
        ----------
        n : int
            Number of synthetic subjects.
        cohort : {"target", "background"}, default="target"
            The cohort to sample.
        random_state : int, RandomState instance or None, default=None
            Seed of this call; None uses the model's own ``random_state`` (so an int there
            gives the same sample on every call, as in scikit-learn's ``GaussianMixture.sample``).

        Returns
        -------
        samples : DataFrame of shape (n, n_features_in_)
            Synthetic ROI volumes (float32) with the fitted column names.
        """
        return self._generate(n, random_state, (self._check_cohort(cohort),))[0]

    def sample_paired(self, n: int, random_state=None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``n`` synthetic people, healthy and diseased: row i of both frames is one person.

        Each person is one draw of (z, c, ε): healthy = f(z, 0) + ε, diseased = f(z, c) + ε,
        with ε ~ N(0, Σ).

        Parameters
        ----------
        n : int
            Number of synthetic people.
        random_state : int, RandomState instance or None, default=None
            Seed of this call; None uses the model's own ``random_state``.

        Returns
        -------
        background, target : tuple of two DataFrames of shape (n, n_features_in_)
            The healthy and the diseased version of each person, in raw units (float32).
        """
        background, target = self._generate(n, random_state, ("background", "target"))
        return background, target

    # -- twins of real subjects ----------------------------------------------------------
    def counterfactual(
        self, X, to: str = "background", mode: str = "residual", salient=None, random_state=None
    ) -> pd.DataFrame:
        """Twin of each row of ``X`` in the other cohort, in raw units.

        With z the posterior mean of the row's shared code, c_own its own condition and
        c_new the other cohort's:

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_samples, n_features_in_)
            Real subjects' ROI volumes in raw units.
        to : {"background", "target"}, default="background"
            ``"background"``: healthy twin of patients; ``"target"``: diseased twin of
            healthy people.
        mode : {"residual", "decode"}, default="residual"
            ``"residual"`` keeps each person's detail, x + f(z, c_new) − f(z, c_own);
            ``"decode"`` returns f(z, c_new).
        salient : array-like, default=None
            Codes to give healthy rows; applies to models whose condition is a latent code,
            such as :class:`~roisynth.ContrastiveVAE`.
        random_state : int, RandomState instance or None, default=None
            Seed to draw those codes when ``salient`` is None.

        Returns
        -------
        twins : DataFrame of shape (n_samples, n_features_in_)
            The twins in raw units, the index and columns of ``X``.
        """
        check_is_fitted(self, "module_")
        check_choice(to, "to", ("background", "target"))
        check_choice(mode, "mode", ("residual", "decode"))
        df, values = self._validate_X(X)
        with threads(self.n_threads), torch.no_grad():
            z, c_own, c_new = self._counterfactual_codes(values, to, salient, random_state)
            new = self._calibrated_mean(z, c_new)
            if mode == "decode":
                return self._frame(new, index=df.index)
            own = self._calibrated_mean(z, c_own)
        return pd.DataFrame(values + (new - own) * self.scale_, index=df.index, columns=df.columns)

    def _calibrated_mean(self, z: torch.Tensor, c: torch.Tensor | None) -> np.ndarray:
        """f(z, c) + b (standardized, float64): b_H for a healthy decode (c None), b_T otherwise,
        as on the two sides of a synthetic pair."""
        mean = self.module_.decoder(z, c).double().numpy()
        if self.calibration_offsets_ is None:
            return mean
        return mean + self.calibration_offsets_[_OFFSET_ROWS["healthy" if c is None else "target"]]

    def _as_tensor(self, values: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(self._standardize(values), dtype=torch.float32)

    # -- persistence ---------------------------------------------------------------------
    def _get_state(self):
        check_is_fitted(self, "module_")
        metadata, tensors = super()._get_state()
        metadata["history"] = self.history_.to_dict()
        tensors |= {f"module.{k}": v for k, v in self.module_.state_dict().items()}
        for name in ("background_latents_", "target_latents_"):
            if getattr(self, name) is not None:
                tensors |= getattr(self, name).state(name)
        if self.calibration_offsets_ is not None:
            tensors["calibration_offsets_"] = torch.from_numpy(self.calibration_offsets_)
        if self.privacy is not None:
            metadata["params"]["privacy"] = self.privacy.to_dict()
            metadata["privacy"] = {"epsilon": self.privacy_spent_[0], "delta": self.privacy_spent_[1],
                                   "noise_multiplier": self.noise_multiplier_,
                                   "means_noise_multiplier": self.means_noise_multiplier_}
        return metadata, tensors

    @classmethod
    def _from_state(cls, metadata, tensors):
        privacy = metadata["params"].get("privacy")
        if privacy is not None:
            metadata = {**metadata, "params": {**metadata["params"], "privacy": DifferentialPrivacy(**privacy)}}
        return super()._from_state(metadata, tensors)

    def _set_state(self, metadata, tensors):
        super()._set_state(metadata, tensors)
        self.module_ = self._build_module()
        self.module_.load_state_dict({k[7:]: v for k, v in tensors.items() if k.startswith("module.")})
        self.module_.eval()
        self.history_ = TrainingHistory(**metadata["history"])
        for name in ("background_latents_", "target_latents_"):
            width = self._latent_width(joint=name == "target_latents_")
            aggregate = self.latent_sampling == "aggregate" and self.privacy is None
            density = LatentMixture.from_state(tensors, name, width) if aggregate else None
            setattr(self, name, density)
        offsets = tensors.get("calibration_offsets_")
        if offsets is None and "calibration" not in metadata["params"]:
            self.calibration = "none"  # a file from before calibration existed: the model it holds had none
        self.calibration_offsets_ = None if self.calibration == "none" or offsets is None else offsets.double().numpy()
        self.n_epochs_ = self.history_.best_epoch
        spent = metadata.get("privacy", {})  # written by private fits only
        self.privacy_spent_ = (spent["epsilon"], spent["delta"]) if spent else None
        self.noise_multiplier_ = spent.get("noise_multiplier")
        self.means_noise_multiplier_ = spent.get("means_noise_multiplier")
