"""Small MLP building blocks."""

from __future__ import annotations

import torch
from torch import nn

LEAKY_SLOPE = 0.2
LOGVAR_RANGE = (-12.0, 8.0)


def mlp(n_in: int, n_hidden: int, n_out: int) -> nn.Sequential:
    """Two linear layers with a LeakyReLU between them (the seed paper's shallow MLP).

    x ↦ W₂ σ(W₁ x + b₁) + b₂ with σ the LeakyReLU of negative slope 0.2.

    Parameters
    ----------
    n_in : int
        Input features.
    n_hidden : int
        Hidden units.
    n_out : int
        Output features.

    Returns
    -------
    torch.nn.Sequential
        ``Linear(n_in, n_hidden), LeakyReLU(0.2), Linear(n_hidden, n_out)``.

    Examples
    --------
    >>> import torch
    >>> from roisynth.nn import mlp
    >>> net = mlp(4, 8, 2)
    >>> net(torch.zeros(3, 4)).shape
    torch.Size([3, 2])
    """
    return nn.Sequential(nn.Linear(n_in, n_hidden), nn.LeakyReLU(LEAKY_SLOPE), nn.Linear(n_hidden, n_out))


class GaussianEncoder(nn.Module):
    """Amortized diagonal Gaussian posterior q(u|x) = N(mu(x), diag(exp(logvar(x)))).

    One :func:`mlp` outputs (mu, logvar); ``logvar`` is clamped to [−12, 8] for stability.
    Calling the module returns ``(mu, logvar)``, each of shape (n_rows, n_latent).

    Parameters
    ----------
    n_in : int
        Input features.
    n_hidden : int
        Hidden units of the MLP.
    n_latent : int
        Latent dimensions.

    Examples
    --------
    >>> import torch
    >>> from roisynth.nn import GaussianEncoder
    >>> encoder = GaussianEncoder(4, 8, 2)
    >>> mu, logvar = encoder(torch.zeros(3, 4))
    >>> mu.shape, logvar.shape
    (torch.Size([3, 2]), torch.Size([3, 2]))
    >>> GaussianEncoder.rsample(torch.zeros(1, 2), torch.zeros(1, 2), eps=torch.ones(1, 2))
    tensor([[1., 1.]])
    """

    def __init__(self, n_in: int, n_hidden: int, n_latent: int):
        super().__init__()
        self.n_latent = n_latent
        self.net = mlp(n_in, n_hidden, 2 * n_latent)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(x).split(self.n_latent, dim=1)
        return mu, logvar.clamp(*LOGVAR_RANGE)

    @staticmethod
    def rsample(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
        """Reparameterized draw u = mu + exp(logvar / 2) * eps, eps ~ N(0, I) unless given."""
        return mu + (torch.randn_like(mu) if eps is None else eps) * (0.5 * logvar).exp()
