"""The contrastive VAE as a torch module: the maths, apart from the estimator that trains it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .decoder import GaussianDecoder
from .layers import GaussianEncoder, mlp
from .losses import kl_standard_normal, prior_mmd, rbf_mmd

REGULARIZERS = ("mmd", "tc")


class ContrastiveVAEModule(nn.Module):
    r"""Contrastive VAE: common encoder q(z|x), salient encoder q(s|x), one decoder.

    p(x|z, s) = N(f(z, s), Σ) is a :class:`~roisynth.nn.decoder.GaussianDecoder`; background
    rows are decoded with s = 0. For a background batch B and a target batch T the loss is

    .. math::
        \mathcal L = \overline{\mathrm{NLL}(x_B | f(z, 0)) + \mathrm{KL}_z}^{B}
                   + \overline{\mathrm{NLL}(x_T | f(z, s)) + \mathrm{KL}_z + \mathrm{KL}_s}^{T}
                   + \lambda\,R + \gamma\,\overline{\lVert \mu_s(x_B) \rVert^2}^{B}

    The last term (as in MM-cVAE, Weinberger et al. 2022) keeps the salient posterior of
    healthy subjects at zero, so salient codes measure disease expression. The regularizer
    R aligns or decouples the latents:

    - ``"mmd"`` (seed paper): R = MMD²(z_T, z_B), so the common space carries no cohort;
    - ``"tc"`` (Abid & Zou 2019): R = total correlation of the target's (z, s), estimated
      by the density-ratio trick, R ≈ E log D/(1 − D) where the discriminator D (an MLP,
      trained by :meth:`discriminator_loss` with its own optimizer) tells joint draws
      (z, s) from draws with s shuffled across the batch, i.e. from q(z)q(s).

    Under differential privacy (DP-SGD) a subject's gradient must depend on that subject only,
    and both regularizers couple the rows of a batch. :meth:`private_loss` is the per-subject
    objective it trains instead: row i with cohort label t_i (0 healthy, 1 patient) costs

    .. math::
        \ell_i = \mathrm{NLL}(x_i | f(z_i, t_i s_i)) + \mathrm{KL}_z + t_i \mathrm{KL}_s
                + (1 - t_i)\,\gamma \lVert \mu_s(x_i) \rVert^2
                + \lambda\,\mathrm{MMD}^2\big(q(z|x_i), N(0, I)\big)

    the MMD of :func:`~roisynth.nn.losses.prior_mmd` (K posterior draws of the subject against
    fixed prior draws): instead of matching the cohorts' codes to each other, every subject's
    posterior is pulled to the same prior, which matches both cohorts to it.

    Parameters
    ----------
    n_features : int
        Observed features.
    n_common : int
        Dimensions of the common latent z.
    n_salient : int
        Dimensions of the salient latent s.
    n_hidden : int
        Hidden units of the encoders, decoder (and discriminator).
    noise : {"full", "diagonal"}, default="full"
        Observation covariance of the decoder.
    regularizer : {"mmd", "tc"}, default="mmd"
        The regularizer R.

    Examples
    --------
    >>> import torch
    >>> from roisynth.nn.contrastive import ContrastiveVAEModule
    >>> from roisynth.nn import seeded
    >>> with seeded(0):
    ...     module = ContrastiveVAEModule(n_features=3, n_common=2, n_salient=2, n_hidden=8)
    ...     loss = module.loss(torch.randn(5, 3), torch.randn(4, 3), weight=10.0, background_salient_weight=10.0)
    >>> loss.shape, bool(torch.isfinite(loss))
    (torch.Size([]), True)
    """

    def __init__(self, n_features: int, n_common: int, n_salient: int, n_hidden: int, noise: str = "full",
                 regularizer: str = "mmd"):
        super().__init__()
        if regularizer not in REGULARIZERS:
            raise ValueError(f"regularizer={regularizer!r} is not one of {list(REGULARIZERS)}")
        self.n_common, self.n_salient, self.regularizer = n_common, n_salient, regularizer
        self.common = GaussianEncoder(n_features, n_hidden, n_common)
        self.salient = GaussianEncoder(n_features, n_hidden, n_salient)
        self.decoder = GaussianDecoder(n_common, n_salient, n_hidden, n_features, noise)
        self.discriminator = mlp(n_common + n_salient, n_hidden, 1) if regularizer == "tc" else None

    def loss(self, xb: torch.Tensor, xt: torch.Tensor, weight: float, background_salient_weight: float) -> torch.Tensor:
        """The objective above for one pair of batches; ``weight`` is λ."""
        nb = xb.shape[0]
        x = torch.cat([xb, xt])
        mu_z, lv_z = self.common(x)
        mu_s, lv_s = self.salient(x)
        z = GaussianEncoder.rsample(mu_z, lv_z)
        s_t = GaussianEncoder.rsample(mu_s[nb:], lv_s[nb:])
        s = torch.cat([torch.zeros_like(mu_s[:nb]), s_t])
        nll = self.decoder.nll(x, self.decoder.net(torch.cat([z, s], dim=1)))
        kl_z = kl_standard_normal(mu_z, lv_z)
        kl_s = kl_standard_normal(mu_s[nb:], lv_s[nb:])
        loss = (nll[:nb] + kl_z[:nb]).mean() + (nll[nb:] + kl_z[nb:] + kl_s).mean()
        if weight and self.regularizer == "mmd":
            loss = loss + weight * rbf_mmd(mu_z[nb:], mu_z[:nb])
        elif weight:
            loss = loss + weight * self.discriminator(torch.cat([z[nb:], s_t], 1)).mean()
        if background_salient_weight:
            loss = loss + background_salient_weight * mu_s[:nb].pow(2).sum(1).mean()
        return loss

    def private_loss(self, x: torch.Tensor, target: torch.Tensor, eps: torch.Tensor, prior: torch.Tensor,
                     weight: float, background_salient_weight: float) -> torch.Tensor:
        """The per-subject objective ℓ_i above (``regularizer="mmd"``), shape (n,).

        ``target`` holds t_i (float 0/1); ``eps`` of shape (n, K, n_common + n_salient) holds the
        standard normal draws of the reparameterization (z from its first K draws, one s); ``prior``
        the (M, n_common) prior draws; ``weight`` is λ.
        """
        mu_z, lv_z = self.common(x)
        mu_s, lv_s = self.salient(x)
        draws = mu_z.unsqueeze(1) + eps[..., : self.n_common] * (0.5 * lv_z).exp().unsqueeze(1)
        s = target.unsqueeze(1) * GaussianEncoder.rsample(mu_s, lv_s, eps[:, 0, self.n_common :])
        loss = (self.decoder.nll(x, self.decoder(draws[:, 0], s)) + kl_standard_normal(mu_z, lv_z)
                + target * kl_standard_normal(mu_s, lv_s))
        if background_salient_weight:
            loss = loss + (1 - target) * background_salient_weight * mu_s.pow(2).sum(1)
        if weight:
            loss = loss + weight * prior_mmd(draws, prior)
        return loss

    def discriminator_loss(self, xb: torch.Tensor, xt: torch.Tensor) -> torch.Tensor:
        """Logistic loss of D on the target batch: joint (z, s) → 1, shuffled (z, s_π) → 0."""
        with torch.no_grad():
            z = GaussianEncoder.rsample(*self.common(xt))
            s = GaussianEncoder.rsample(*self.salient(xt))
        joint = self.discriminator(torch.cat([z, s], 1))
        shuffled = self.discriminator(torch.cat([z, s[torch.randperm(len(s))]], 1))
        return F.softplus(-joint).mean() + F.softplus(shuffled).mean()
