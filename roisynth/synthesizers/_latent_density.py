"""Where synthetic latent codes come from: a Gaussian mixture fitted to the aggregate posterior.

A VAE's decoder is trained on codes drawn from q(u|x) of real subjects, and their aggregate
(1/N) Σ_i q(u|x_i) can sit far from the N(0, I) prior (e.g. patients' salient codes shifted to
one side). Sampling from the prior then makes synthetic patients too healthy. Following
ex-post density estimation (Ghosh et al. 2020), we fit a Gaussian mixture, its number of
components chosen by BIC, to draws from the aggregate posterior and sample from that.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.mixture import GaussianMixture


class LatentMixture:
    """A full-covariance Gaussian mixture that samples with torch generators."""

    def __init__(self, weights: torch.Tensor, means: torch.Tensor, factors: torch.Tensor):
        self.weights, self.means, self.factors = weights, means, factors  # factors: Cholesky of covariances

    @classmethod
    def fit(cls, codes: np.ndarray, max_components: int = 8, random_state: int = 0) -> LatentMixture:
        """Select 1..max_components by BIC on ``codes`` (rows = draws of the latent vector)."""
        best, best_bic = None, np.inf
        for k in range(1, max_components + 1):
            gmm = GaussianMixture(k, covariance_type="full", reg_covar=1e-5, random_state=random_state).fit(codes)
            bic = gmm.bic(codes)
            if bic < best_bic:
                best, best_bic = gmm, bic
        as_tensor = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
        return cls(as_tensor(best.weights_), as_tensor(best.means_), as_tensor(np.linalg.cholesky(best.covariances_)))

    @property
    def n_components(self) -> int:
        return len(self.weights)

    def sample(self, n: int, generator: torch.Generator, out: torch.Tensor | None = None) -> torch.Tensor:
        """``n`` draws u = mean_c + L_c ε with c ~ Categorical(weights), ε ~ N(0, I)."""
        out = torch.empty(n, self.means.shape[1]) if out is None else out[:n]
        torch.randn(n, self.means.shape[1], generator=generator, out=out)
        component = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        for c in range(self.n_components):
            rows = (component == c).nonzero().squeeze(1)
            if len(rows):
                out[rows] = torch.addmm(self.means[c], out[rows], self.factors[c].T)
        return out

    def state(self, prefix: str) -> dict[str, torch.Tensor]:
        return {f"{prefix}.weights": self.weights, f"{prefix}.means": self.means, f"{prefix}.factors": self.factors}

    @classmethod
    def from_state(cls, tensors: dict[str, torch.Tensor], prefix: str) -> LatentMixture:
        return cls(*(tensors[f"{prefix}.{name}"].float() for name in ("weights", "means", "factors")))
