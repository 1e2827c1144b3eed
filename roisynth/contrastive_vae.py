"""ContrastiveVAE: paired healthy/disease synthesis from unpaired cohorts (scikit-learn style)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._validation import check_choice, check_count
from .base import COHORTS, BaseSynthesizer
from .latent_density import LatentMixture
from .metrics import GaussianReference
from .nn import GaussianEncoder, TrainingHistory, flush_denormal, seeded, threads, train
from .nn.contrastive import ContrastiveVAEModule

_CHUNK = 16_384  # rows generated at a time: buffers stay in cache


def _seed(random_state) -> int:
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


class ContrastiveVAE(BaseSynthesizer):
    r"""Contrastive VAE with an MMD penalty (seed paper *Unpaired-to-paired data synthesis*).

    A common latent z (shared by healthy controls and patients) and a salient latent s
    (patients only) are decoded by one network; healthy subjects are decoded with s = 0, so
    decoding one (z, s) with and without s gives the same synthetic person healthy and ill.
    The observation model is Gaussian with a learned per-ROI variance, so samples carry
    the real spread rather than only the decoder mean. See
    :class:`roisynth.nn.contrastive.ContrastiveVAEModule` for the objective.

    Parameters
    ----------
    n_common, n_salient : latent sizes (5 + 5 as in the paper).
    n_hidden : width of the hidden layer of every two-layer MLP.
    noise : observation covariance Σ of p(x|z,s) = N(f(z,s), Σ): ``"full"`` (learned dense
        Σ: synthetic data keep the real residual correlations) or ``"diagonal"`` (per-ROI
        variances only).
    latent_sampling : where synthetic codes come from: ``"aggregate"`` (Gaussian mixtures
        fitted after training to the posterior codes of the training subjects, see
        :mod:`roisynth.latent_density`) or ``"prior"`` (N(0, I), as in the paper).
    mmd_weight : λ of MMD²(z_target, z_background) (multi-bandwidth RBF, median-heuristic
        bandwidths); 0 gives the paper's "without MMD" ablation.
    background_salient_weight : γ of the penalty keeping healthy subjects' salient means at 0.
    epochs, batch_size, learning_rate : Adam (betas 0.5, 0.999) schedule.
    validation_fraction : share of each cohort held out for early stopping when ``fit`` gets
        no explicit ``validation``; 0 trains all ``epochs`` without early stopping.
    eval_every, patience : early stopping is judged every ``eval_every`` epochs by the
        Gaussian W2 between synthesized and validation data (sum over both cohorts) and stops
        after ``patience`` epochs without improvement, restoring the best weights.
    nonnegative : inputs are volumes, so negative values are rejected; a
        :class:`~roisynth.pipeline.SynthesisPipeline` sets False for its transformed values.
    n_threads : torch threads during fit and sampling (``None``: leave torch's setting).
    verbose : show a progress bar.
    random_state : int for bit-identical results on CPU.
    """

    can_pair = True

    def __init__(
        self,
        n_common: int = 5,
        n_salient: int = 5,
        n_hidden: int = 64,
        noise: str = "full",
        latent_sampling: str = "aggregate",
        mmd_weight: float = 10.0,
        background_salient_weight: float = 10.0,
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
    ):
        self.n_common = n_common
        self.n_salient = n_salient
        self.n_hidden = n_hidden
        self.noise = noise
        self.latent_sampling = latent_sampling
        self.mmd_weight = mmd_weight
        self.background_salient_weight = background_salient_weight
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

    # -- fitting -------------------------------------------------------------------------
    def _check_params(self) -> None:
        for name in ("n_common", "n_salient", "n_hidden", "epochs", "batch_size", "eval_every"):
            check_count(getattr(self, name), name)
        for name in ("mmd_weight", "background_salient_weight", "learning_rate", "patience"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}")
        check_choice(self.noise, "noise", ("full", "diagonal"))
        check_choice(self.latent_sampling, "latent_sampling", ("aggregate", "prior"))
        if not 0 <= self.validation_fraction < 0.5:
            raise ValueError(f"validation_fraction must be in [0, 0.5), got {self.validation_fraction!r}")

    def fit(self, background, target, validation=None):
        """Fit on unpaired healthy (``background``) and patient (``target``) tables.

        Parameters
        ----------
        background, target : DataFrames (or arrays) of ROI volumes in raw units, same columns.
        validation : optional ``(background_val, target_val)`` for early stopping; otherwise
            ``validation_fraction`` of each cohort is held out.
        """
        self._check_params()
        if target is None:
            raise ValueError("ContrastiveVAE needs both cohorts: fit(background, target)")
        Xb, Xt = self._validate_fit_tables(background, target, nonnegative=self.nonnegative)
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
        seed = _seed(rng)
        with threads(self.n_threads), seeded(seed), flush_denormal():
            self.module_ = ContrastiveVAEModule(self.n_features_in_, self.n_common, self.n_salient, self.n_hidden, self.noise)
            xb, xt = (torch.as_tensor(self._standardize(X), dtype=torch.float32) for X in (Xb, Xt))
            validate = None if Vb is None else self._validator(xb, xt, self._standardize(Vb), self._standardize(Vt))
            history = train(
                self.module_,
                lambda b, t: self.module_.loss(b, t, self.mmd_weight, self.background_salient_weight),
                lambda: self._batches(xb, xt),
                epochs=self.epochs,
                lr=self.learning_rate,
                validate=validate,
                eval_every=self.eval_every,
                patience=self.patience,
                verbose=self.verbose,
                desc="ContrastiveVAE",
            )
            self._fit_latent_densities(xb, xt, seed)
        self.history_ = history
        self.n_epochs_ = history.best_epoch
        return self

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
        rows = [torch.arange(n_eval) % len(x) for x in (xb, xt)]
        draws = [torch.randn(n_eval, d) for d in (self.n_common, self.n_common, self.n_salient)]
        noise = torch.randn(n_eval, self.n_features_in_)
        out = torch.empty(n_eval, self.n_features_in_)

        def validate() -> float:
            zb, zt, st = self._posterior_draws(xb[rows[0]], xt[rows[1]], draws)
            self.module_.observe(zb, None, noise.clone(), (out, None))
            score = refs[0].distance(out.double().numpy())
            self.module_.observe(zt, st, noise.clone(), (None, out))
            return score + refs[1].distance(out.double().numpy())

        return validate

    def _posterior_draws(self, xb: torch.Tensor, xt: torch.Tensor, noise=(None, None, None), repeat: int = 1):
        """``repeat`` draws per row of z ~ q(z|x_b), z ~ q(z|x_t), s ~ q(s|x_t); ``noise`` fixes the ε's."""
        m = self.module_
        posteriors = (m.common(xb), m.common(xt), m.salient(xt))
        return tuple(GaussianEncoder.rsample(*(u.repeat(repeat, 1) for u in posterior), eps)
                     for posterior, eps in zip(posteriors, noise))

    def _fit_latent_densities(self, xb: torch.Tensor, xt: torch.Tensor, seed: int, draws: int = 4) -> None:
        """Gaussian mixtures on draws from the aggregate posteriors: z of healthy subjects,
        (z, s) of patients (``latent_sampling="aggregate"``)."""
        self.background_latents_ = self.target_latents_ = None
        if self.latent_sampling == "prior":
            return
        with torch.no_grad():
            zb, zt, st = self._posterior_draws(xb, xt, repeat=draws)
        self.background_latents_ = LatentMixture.fit(zb.double().numpy(), random_state=seed)
        self.target_latents_ = LatentMixture.fit(torch.cat([zt, st], 1).double().numpy(), random_state=seed)

    # -- generation ----------------------------------------------------------------------
    def _draw_codes(self, k: int, generator: torch.Generator, joint: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Latent codes of ``k`` synthetic people: (z, s) of patients if ``joint``, else z of healthy."""
        if self.latent_sampling == "prior":
            z = torch.randn(k, self.n_common, generator=generator)
            return z, torch.randn(k, self.n_salient, generator=generator)
        if not joint:
            return self.background_latents_.sample(k, generator), None
        codes = self.target_latents_.sample(k, generator)
        return codes[:, : self.n_common], codes[:, self.n_common :]

    def _generate(self, n: int, random_state, which: tuple[str, ...]) -> list[pd.DataFrame]:
        """Raw-unit float32 tables of the requested cohorts.

        Paired and target rows decode patients' codes (z, s); a background-only request
        decodes healthy codes z. Generated in chunks so that buffers stay in cache.
        """
        check_is_fitted(self, "module_")
        n = check_count(n)
        generator = torch.Generator().manual_seed(_seed(self.random_state if random_state is None else random_state))
        p = self.n_features_in_
        arrays = {c: np.empty((n, p), dtype=np.float32) for c in which}
        scale, shift = (torch.as_tensor(a, dtype=torch.float32) for a in (self.scale_, self.mean_))
        eps = torch.empty(_CHUNK, p)
        with threads(self.n_threads), torch.no_grad():
            for start in range(0, n, _CHUNK):
                stop = min(n, start + _CHUNK)
                k = stop - start
                z, s = self._draw_codes(k, generator, joint="target" in which)
                torch.randn(k, p, generator=generator, out=eps[:k])
                out = tuple(torch.from_numpy(arrays[c][start:stop]) if c in arrays else None for c in COHORTS)
                self.module_.observe(z, s, eps[:k], out, scale, shift)
        return [pd.DataFrame(arrays[c], columns=list(self.feature_names_in_), copy=False) for c in which]

    def sample(self, n: int, cohort: str = "target", random_state=None) -> pd.DataFrame:
        """Draw ``n`` unpaired synthetic subjects of one cohort, in raw units (float32).

        ``random_state=None`` uses the model's own ``random_state`` (so an int there gives
        the same sample on every call, as in scikit-learn's ``GaussianMixture.sample``).
        """
        return self._generate(n, random_state, (self._check_cohort(cohort),))[0]

    def sample_paired(self, n: int, random_state=None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``n`` synthetic people, healthy and diseased: row i of both frames is one person.

        Each person is one draw of (z, s, ε): healthy = f(z, 0) + σε, diseased = f(z, s) + σε.
        """
        background, target = self._generate(n, random_state, ("background", "target"))
        return background, target

    # -- inference on real subjects -------------------------------------------------------
    def _posterior_means(self, X: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.as_tensor(self._standardize(X), dtype=torch.float32)
        with threads(self.n_threads), torch.no_grad():
            return self.module_.common(x)[0], self.module_.salient(x)[0]

    def transform(self, X) -> pd.DataFrame:
        """Posterior means of the latents: columns z1..z{n_common}, s1..s{n_salient}."""
        check_is_fitted(self, "module_")
        df, values = self._validate_X(X)
        mu_z, mu_s = self._posterior_means(values)
        columns = [f"z{i + 1}" for i in range(self.n_common)] + [f"s{i + 1}" for i in range(self.n_salient)]
        return pd.DataFrame(torch.cat([mu_z, mu_s], 1).double().numpy(), index=df.index, columns=columns)

    def _salient_for(self, salient, n: int, random_state) -> torch.Tensor:
        if salient is None:
            generator = torch.Generator().manual_seed(_seed(self.random_state if random_state is None else random_state))
            return self._draw_codes(n, generator, joint=True)[1]
        s = np.asarray(salient, dtype=np.float32)
        if s.ndim == 1:
            s = np.broadcast_to(s, (n, s.shape[0]))
        if s.shape != (n, self.n_salient) or not np.isfinite(s).all():
            raise ValueError(f"salient must be finite with shape ({self.n_salient},) or ({n}, {self.n_salient}), got {s.shape}")
        return torch.from_numpy(np.ascontiguousarray(s))

    def counterfactual(self, X, to: str = "background", mode: str = "residual", salient=None, random_state=None) -> pd.DataFrame:
        """Twin of each row of ``X`` in the other cohort, in raw units.

        ``to="background"``: healthy twin of patients (their own s replaced by 0).
        ``to="target"``: diseased twin of healthy people (s = 0 replaced by ``salient``, one
        vector for all rows or one per row, by default drawn like synthetic patients' codes).
        ``mode="residual"`` keeps each person's detail: x + f(z, s_new) − f(z, s_own);
        ``mode="decode"`` returns the paper's reconstruction f(z, s_new).
        """
        check_is_fitted(self, "module_")
        check_choice(to, "to", ("background", "target"))
        check_choice(mode, "mode", ("residual", "decode"))
        df, values = self._validate_X(X)
        mu_z, mu_s = self._posterior_means(values)
        if to == "background":
            s_own, s_new = mu_s, None
        else:
            s_own, s_new = None, self._salient_for(salient, len(df), random_state)
        with threads(self.n_threads), torch.no_grad():
            new = self.module_.decode(mu_z, s_new).double().numpy()
            if mode == "decode":
                return self._frame(new, index=df.index)
            own = self.module_.decode(mu_z, s_own).double().numpy()
        return pd.DataFrame(values + (new - own) * self.scale_, index=df.index, columns=df.columns)

    def severity(self, X) -> pd.Series:
        """Mean |x − healthy twin| over ROIs, in background-SD units: mean_j |f_j(z,0) − f_j(z,s)|."""
        check_is_fitted(self, "module_")
        df, values = self._validate_X(X)
        mu_z, mu_s = self._posterior_means(values)
        with threads(self.n_threads), torch.no_grad():
            diff = (self.module_.decode(mu_z) - self.module_.decode(mu_z, mu_s)).abs().mean(1)
        return pd.Series(diff.double().numpy(), index=df.index, name="severity")

    # -- persistence ---------------------------------------------------------------------
    def _get_state(self):
        check_is_fitted(self, "module_")
        metadata, tensors = super()._get_state()
        metadata["history"] = self.history_.to_dict()
        tensors |= {f"module.{k}": v for k, v in self.module_.state_dict().items()}
        for name in ("background_latents_", "target_latents_"):
            if getattr(self, name) is not None:
                tensors |= getattr(self, name).state(name)
        return metadata, tensors

    def _set_state(self, metadata, tensors):
        super()._set_state(metadata, tensors)
        self.module_ = ContrastiveVAEModule(self.n_features_in_, self.n_common, self.n_salient, self.n_hidden, self.noise)
        self.module_.load_state_dict({k[7:]: v for k, v in tensors.items() if k.startswith("module.")})
        self.module_.eval()
        self.history_ = TrainingHistory(**metadata["history"])
        for name in ("background_latents_", "target_latents_"):
            setattr(self, name, LatentMixture.from_state(tensors, name) if self.latent_sampling == "aggregate" else None)
        self.n_epochs_ = self.history_.best_epoch
