"""Surreal-GAN (Yang, Wen & Davatzikos, ICLR 2022) as torch modules: the maths, apart from the estimator.

Healthy rows x and patient rows y live in the CN-normalized space (CN mean 1, SD 0.1 per ROI).
A mapping f(x, r) turns a healthy subject into a patient whose K disease patterns have
severities r ∈ [0, 1]^K (the R-indices); a discriminator D tells real patients from mapped
healthy subjects; an inverse network g recovers r from f(x, r), so that g(y) gives the R-indices
of real patients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import mlp


class PatternMapping(nn.Module):
    r"""f(x, r) = x + Σ_k c_k(x, r_k): the change of a healthy subject under K patterns of severities r.

    Each pattern's change is a severity curve times a subject-specific direction,

    .. math:: c_k(x, r_k) = \phi_k(r_k)\, v_k(x),\qquad
              \phi_k(r) = r^{\exp(a_k)},\qquad v_k(x) = W_2^{(k)} \sigma_L(W_1 x) + b_k,

    (σ_L LeakyReLU, W_1 shared by the patterns). φ_k is increasing with φ_k(0) = 0 and
    φ_k(1) = 1, so the method's two constraints on the mapping hold by construction: a subject
    with r = 0 is unchanged (the reference's "CN loss"), and the size of every ROI's change
    |c_k(x, r)| grows with r (its monotonicity loss). Overlap between patterns is penalized by
    :meth:`SurrealGANModule.orthogonality`.

    Parameters
    ----------
    n_features : int
        Observed features (ROIs).
    n_patterns : int
        Number of patterns K.
    n_hidden : int
        Hidden units of the directions v_k.

    Examples
    --------
    >>> import torch
    >>> from roisynth.nn.surrealgan import PatternMapping
    >>> mapping = PatternMapping(n_features=3, n_patterns=2, n_hidden=8)
    >>> x = torch.ones(4, 3)
    >>> mapping(x, torch.rand(4, 2)).shape, bool((mapping(x, torch.zeros(4, 2)) == x).all())
    (torch.Size([4, 3]), True)
    """

    def __init__(self, n_features: int, n_patterns: int, n_hidden: int):
        super().__init__()
        self.n_features, self.n_patterns = n_features, n_patterns
        self.directions = mlp(n_features, n_hidden, n_patterns * n_features)
        self.log_exponent = nn.Parameter(torch.zeros(n_patterns))

    @torch.no_grad()
    def start_from(self, patterns: torch.Tensor) -> None:
        """Start from fixed patterns: v_k(x) ≈ ``patterns[k]`` (K × p; the output bias), the subject-specific part
        scaled down tenfold."""
        last = self.directions[-1]
        last.weight.mul_(0.1)
        last.bias.copy_(patterns.reshape(-1))

    def changes(self, x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """c_k(x, r_k) of every row and pattern, shape (n, K, n_features)."""
        v = self.directions(x).view(len(x), self.n_patterns, self.n_features)
        severity = r.clamp(0, 1) ** self.log_exponent.exp()
        return severity.unsqueeze(2) * v

    def forward(self, x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return x + self.changes(x, r).sum(1)


class SurrealGANModule(nn.Module):
    r"""Mapping f, inverse g (R-indices in [0, 1]) and discriminator D (one logit) of Surreal-GAN.

    For healthy rows x, patient rows y and severities r ~ Uniform[0, 1]^K, ỹ = f(x, r).
    D minimizes the logistic loss

    .. math:: \mathcal L_D = \tfrac12\big[\overline{\mathrm{softplus}(-D(y))}
              + \overline{\mathrm{softplus}(D(\tilde y))}\big]

    and (f, g) minimize the non-saturating GAN loss plus the method's regularizers

    .. math:: \mathcal L_{f,g} = \overline{\mathrm{softplus}(-D(\tilde y))}
              + \zeta\,\overline{\lVert g(\tilde y) - r \rVert_2^2} / K
              + \mu\,\overline{\lVert \tilde y - x \rVert_1} / p
              + \lambda\,\big\lVert \hat C \hat C^\top - I_K \big\rVert_F^2 / K^2

    with g(y) = sigmoid(MLP(y)) the inverse (reconstruction of r), and Ĉ the rows
    mean_batch |c_k(x, r_k)| normalized to unit length (orthogonality: the patterns touch
    different ROIs; the reference's orthogonal loss). Monotonicity and a null change at r = 0
    hold by construction (:class:`PatternMapping`). The Lipschitz constraint of the reference,
    weight clipping of f and g to [−κ, κ], is :meth:`clip`.

    Parameters
    ----------
    n_features : int
        Observed features (ROIs).
    n_patterns : int
        Number of patterns K.
    n_hidden : int
        Hidden units of f, g and D.

    Examples
    --------
    >>> import torch
    >>> from roisynth.nn import seeded
    >>> from roisynth.nn.surrealgan import SurrealGANModule
    >>> with seeded(0):
    ...     module = SurrealGANModule(n_features=3, n_patterns=2, n_hidden=8)
    ...     x, y, r = torch.ones(4, 3), 0.9 * torch.ones(4, 3), torch.rand(4, 2)
    ...     loss = module.generator_loss(x, r, recon_weight=1.0, change_weight=1.0, ortho_weight=1.0)
    >>> r_hat = module.r_indices(y)
    >>> r_hat.shape, bool(((r_hat > 0) & (r_hat < 1)).all())
    (torch.Size([4, 2]), True)
    """

    def __init__(self, n_features: int, n_patterns: int, n_hidden: int):
        super().__init__()
        self.n_patterns = n_patterns
        self.mapping = PatternMapping(n_features, n_patterns, n_hidden)
        self.inverse = mlp(n_features, n_hidden, n_patterns)
        self.discriminator = mlp(n_features, n_hidden, 1)

    def orthogonality(self, changes: torch.Tensor) -> torch.Tensor:
        """‖Ĉ Ĉᵀ − I‖²_F / K² of the batch's mean absolute change per pattern (``changes``: n × K × p)."""
        mean = F.normalize(changes.abs().mean(0), dim=1, eps=1e-8)
        return (mean @ mean.T - torch.eye(self.n_patterns)).pow(2).mean()

    def generator_loss(self, x, r, recon_weight: float, change_weight: float, ortho_weight: float) -> torch.Tensor:
        """L_{f,g} for healthy rows ``x`` and severities ``r`` (n × K)."""
        changes = self.mapping.changes(x, r)
        fake = x + changes.sum(1)
        loss = F.softplus(-self.discriminator(fake)).mean()
        loss = loss + recon_weight * (torch.sigmoid(self.inverse(fake)) - r).pow(2).mean()
        loss = loss + change_weight * (fake - x).abs().mean()
        return loss + ortho_weight * self.orthogonality(changes)

    def discriminator_loss(self, x, y, r) -> torch.Tensor:
        """L_D on real patients ``y`` and mapped healthy rows f(x, r) (f held fixed)."""
        with torch.no_grad():
            fake = self.mapping(x, r)
        return 0.5 * (F.softplus(-self.discriminator(y)).mean() + F.softplus(self.discriminator(fake)).mean())

    @torch.no_grad()
    def clip(self, bound: float) -> None:
        """Clip every weight of f and g to [−bound, bound] (the reference's Lipschitz constraint)."""
        for p in (*self.mapping.directions.parameters(), *self.inverse.parameters()):
            p.clamp_(-bound, bound)

    @torch.no_grad()
    def r_indices(self, y: torch.Tensor) -> torch.Tensor:
        """R-indices g(y) ∈ (0, 1)^K of patient rows ``y``."""
        return torch.sigmoid(self.inverse(y))
