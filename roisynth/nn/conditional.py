"""The conditional VAE (Sohn et al. 2015) as a torch module: the maths, apart from the estimator."""

from __future__ import annotations

import torch
from torch import nn

from .decoder import GaussianDecoder
from .layers import GaussianEncoder
from .losses import kl_standard_normal, prior_mmd, rbf_mmd


class ConditionalVAEModule(nn.Module):
    r"""Label-conditioned VAE: encoder q(z|x, y), decoder p(x|z, y) = N(f(z, y), Σ).

    y is the cohort label (0 healthy background, 1 patient target), given to the encoder as
    an extra input column and to the :class:`~roisynth.nn.decoder.GaussianDecoder` as its
    one-dimensional condition c = y. For a background batch B and a target batch T the loss is

    .. math::
        \mathcal L = \overline{\mathrm{NLL}(x_B | f(z, 0)) + \mathrm{KL}_z}^{B}
                   + \overline{\mathrm{NLL}(x_T | f(z, 1)) + \mathrm{KL}_z}^{T}
                   + \lambda\,\mathrm{MMD}^2\big(\mu_z(x_T, 1), \mu_z(x_B, 0)\big)

    with z ~ q(z|x, y) and KL_z = KL(q(z|x, y) ‖ N(0, I)). λ = 0 is the plain cVAE. The encoder
    sees y, so it can also write the cohort into z, and then the decoder need not read y: the
    label's effect f(z, 1) − f(z, 0) shrinks in decoded pairs. λ > 0 discourages this by
    matching the patients' posterior means to the healthy subjects'.

    Under differential privacy :meth:`private_loss` trains the per-subject objective
    NLL + KL_z + λ MMD²(q(z|x_i, y_i), N(0, I)), the batch MMD replaced by each subject's
    MMD to the prior (:func:`~roisynth.nn.losses.prior_mmd`; see
    :class:`~roisynth.nn.contrastive.ContrastiveVAEModule` for why).

    Parameters
    ----------
    n_features : int
        Observed features.
    n_latent : int
        Dimensions of z.
    n_hidden : int
        Hidden units of the encoder and decoder MLPs.
    noise : {"full", "diagonal"}, default="full"
        Observation covariance of the decoder.

    Examples
    --------
    >>> import torch
    >>> from roisynth.nn.conditional import ConditionalVAEModule
    >>> from roisynth.nn import seeded
    >>> with seeded(0):
    ...     module = ConditionalVAEModule(n_features=3, n_latent=2, n_hidden=8)
    ...     loss = module.loss(torch.randn(5, 3), torch.randn(4, 3), mmd_weight=10.0)
    >>> loss.shape, bool(torch.isfinite(loss))
    (torch.Size([]), True)
    """

    def __init__(self, n_features: int, n_latent: int, n_hidden: int, noise: str = "full"):
        super().__init__()
        self.n_latent = n_latent
        self.encoder = GaussianEncoder(n_features + 1, n_hidden, n_latent)
        self.decoder = GaussianDecoder(n_latent, 1, n_hidden, n_features, noise)

    def posterior(self, x: torch.Tensor, y: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log-variance) of q(z|x, y) for rows ``x`` that all carry the label ``y``."""
        return self.encoder(torch.cat([x, x.new_full((x.shape[0], 1), float(y))], dim=1))

    def loss(self, xb: torch.Tensor, xt: torch.Tensor, mmd_weight: float) -> torch.Tensor:
        """The objective above for one pair of batches; ``mmd_weight`` is λ."""
        nb = xb.shape[0]
        x = torch.cat([xb, xt])
        y = torch.cat([xb.new_zeros(nb, 1), xt.new_ones(xt.shape[0], 1)])
        mu, logvar = self.encoder(torch.cat([x, y], dim=1))
        z = GaussianEncoder.rsample(mu, logvar)
        per_row = self.decoder.nll(x, self.decoder(z, y)) + kl_standard_normal(mu, logvar)
        loss = per_row[:nb].mean() + per_row[nb:].mean()
        if mmd_weight:
            loss = loss + mmd_weight * rbf_mmd(mu[nb:], mu[:nb])
        return loss

    def private_loss(self, x: torch.Tensor, target: torch.Tensor, eps: torch.Tensor, prior: torch.Tensor,
                     mmd_weight: float) -> torch.Tensor:
        """The per-subject objective above, shape (n,): ``target`` holds the labels y_i (float 0/1),
        ``eps`` of shape (n, K, n_latent) the reparameterization draws (z is the first of each row's
        K), ``prior`` the (M, n_latent) prior draws; ``mmd_weight`` is λ."""
        y = target.unsqueeze(1)
        mu, logvar = self.encoder(torch.cat([x, y], dim=1))
        draws = mu.unsqueeze(1) + eps * (0.5 * logvar).exp().unsqueeze(1)
        loss = self.decoder.nll(x, self.decoder(draws[:, 0], y)) + kl_standard_normal(mu, logvar)
        if mmd_weight:
            loss = loss + mmd_weight * prior_mmd(draws, prior)
        return loss
