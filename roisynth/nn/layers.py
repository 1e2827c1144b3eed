"""Small MLP building blocks."""

from __future__ import annotations

import torch
from torch import nn

LEAKY_SLOPE = 0.2
LOGVAR_RANGE = (-12.0, 8.0)


def mlp(n_in: int, n_hidden: int, n_out: int) -> nn.Sequential:
    """Two linear layers with a LeakyReLU between them (the seed paper's shallow MLP)."""
    return nn.Sequential(nn.Linear(n_in, n_hidden), nn.LeakyReLU(LEAKY_SLOPE), nn.Linear(n_hidden, n_out))


class GaussianEncoder(nn.Module):
    """Amortized diagonal Gaussian posterior q(u|x) = N(mu(x), diag(exp(logvar(x))))."""

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
