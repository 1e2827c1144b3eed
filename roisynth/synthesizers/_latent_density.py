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
        """``n`` draws u = mean_c + L_c ε with c ~ Categorical(weights), ε ~ N(0, I).

        The normals ε are drawn first, then the components, from ``generator``. Every draw is
        mapped by every component (mean + factor, one n × k·d product) and each row keeps its own
        component's: four calls per chunk instead of a masked product per component.
        """
        d = self.means.shape[1]
        out = torch.empty(n, d) if out is None else out[:n]
        torch.randn(n, d, generator=generator, out=out)
        component = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        stacked = self.factors.transpose(1, 2).permute(1, 0, 2).reshape(d, -1)  # [L_1ᵀ | … | L_kᵀ], d × k·d
        mapped = torch.addmm(self.means.reshape(-1), out, stacked)
        if self.n_components == 1:
            return out.copy_(mapped)
        return out.copy_(mapped.view(n, self.n_components, d)[torch.arange(n), component])

    def state(self, prefix: str) -> dict[str, torch.Tensor]:
        return {f"{prefix}.weights": self.weights, f"{prefix}.means": self.means, f"{prefix}.factors": self.factors}

    @classmethod
    def from_state(cls, tensors: dict[str, torch.Tensor], prefix: str, width: int | None = None) -> LatentMixture:
        """The mixture saved by :meth:`state` under ``prefix``, checked: a ``ValueError`` says what is wrong.

        Weights must be non-negative and sum to 1, the means (k, d) and the Cholesky factors
        (k, d, d) must match them (and ``width`` = d where given), everything finite, and the
        factors' diagonals positive.
        """
        weights, means, factors = (tensors[f"{prefix}.{name}"].float() for name in ("weights", "means", "factors"))
        k = weights.shape[0] if weights.dim() == 1 else None
        if k is None or k < 1:
            raise ValueError(f"{prefix}.weights has shape {tuple(weights.shape)}, not (n_components,)")
        d = means.shape[1] if means.dim() == 2 else None
        if d is None or means.shape[0] != k or d < 1:
            raise ValueError(f"{prefix}.means has shape {tuple(means.shape)}, not ({k}, n_latent) for {k} weights")
        if width is not None and d != width:
            raise ValueError(f"{prefix}.means has {d} latent dimensions where the model's codes have {width}")
        if tuple(factors.shape) != (k, d, d):
            raise ValueError(f"{prefix}.factors has shape {tuple(factors.shape)}, not {(k, d, d)}")
        for name, value in (("weights", weights), ("means", means), ("factors", factors)):
            if not torch.isfinite(value).all():
                raise ValueError(f"{prefix}.{name} holds NaN or infinite values")
        if (weights < 0).any() or abs(weights.double().sum().item() - 1) > 1e-4:
            raise ValueError(f"{prefix}.weights must be non-negative and sum to 1 (they sum to "
                             f"{weights.double().sum().item():.6g}, smallest {weights.min().item():.6g})")
        if not (factors.diagonal(dim1=1, dim2=2) > 0).all():
            raise ValueError(f"{prefix}.factors are not Cholesky factors: their diagonals must be positive")
        return cls(weights, means, factors)
