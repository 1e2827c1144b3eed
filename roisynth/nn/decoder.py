"""The Gaussian decoder shared by the neural synthesizers: p(x | u, c) = N(f(u, c), Σ)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .layers import LEAKY_SLOPE, mlp
from .losses import _LOG_2PI, gaussian_nll

NOISES = ("full", "diagonal", "none")


class GaussianDecoder(nn.Module):
    r"""Two-layer MLP mean f(u, c) and a learned observation covariance Σ.

    The code has two parts: u (``n_shared`` dims, e.g. the common latent z) and c
    (``n_condition`` dims: the salient latent s of the contrastive VAE, or the cohort label
    of the conditional VAE). Background subjects are decoded with c = 0, so f(u, 0) and
    f(u, c) are the same synthetic person healthy and diseased.

    Σ is learned through its precision's Cholesky factor, Σ⁻¹ = U Uᵀ with U lower-triangular
    and positive diagonal exp(−log_scale): with ``noise="full"`` U is dense (residual
    correlations such as left/right homologues that a small latent cannot carry), with
    ``noise="diagonal"`` Σ = diag(exp(2·log_scale)). ``noise="none"`` is the seed paper's
    mean-only decoder: Σ = I is fixed (the NLL is ½‖x − f‖² plus a constant, i.e. an MSE
    reconstruction) and :meth:`observe` returns the means f(u, c) without noise.

    Calling the module returns the mean f(u, c) of shape (n_rows, n_features).

    Parameters
    ----------
    n_shared : int
        Dimensions of u.
    n_condition : int
        Dimensions of c.
    n_hidden : int
        Hidden units of the mean's MLP.
    n_features : int
        Observed features.
    noise : {"full", "diagonal", "none"}, default="full"
        Dense, diagonal or fixed (Σ = I, samples are the means) observation covariance.

    Examples
    --------
    >>> import torch
    >>> from roisynth.nn import GaussianDecoder
    >>> decoder = GaussianDecoder(n_shared=2, n_condition=1, n_hidden=8, n_features=3)
    >>> mean = decoder(torch.zeros(4, 2))  # background: c = 0
    >>> mean.shape
    torch.Size([4, 3])
    >>> [round(v, 4) for v in decoder.nll(mean, mean).tolist()[:2]]  # Σ = I at initialization
    [2.7568, 2.7568]
    """

    def __init__(self, n_shared: int, n_condition: int, n_hidden: int, n_features: int, noise: str = "full"):
        super().__init__()
        if noise not in NOISES:
            raise ValueError(f"noise={noise!r} is not one of {list(NOISES)}")
        self.n_shared, self.n_condition, self.noise = n_shared, n_condition, noise
        self.net = mlp(n_shared + n_condition, n_hidden, n_features)
        if noise == "none":
            self.register_buffer("log_scale", torch.zeros(n_features))
        else:
            self.log_scale = nn.Parameter(torch.zeros(n_features))
        self.precision_tril = nn.Parameter(torch.zeros(n_features, n_features)) if noise == "full" else None

    def precision_factor(self) -> torch.Tensor:
        """U with Σ⁻¹ = U Uᵀ (lower-triangular; diagonal exp(−log_scale))."""
        diagonal = torch.diag(torch.exp(-self.log_scale))
        return diagonal if self.precision_tril is None else diagonal + self.precision_tril.tril(-1)

    def noise_factor(self) -> torch.Tensor:
        """A = U⁻¹, so that ε A with ε ~ N(0, I) (row vectors) has covariance Σ."""
        if self.precision_tril is None:
            return torch.diag(self.log_scale.exp())
        eye = torch.eye(len(self.log_scale), dtype=self.log_scale.dtype)
        return torch.linalg.solve_triangular(self.precision_factor(), eye, upper=False)

    def nll(self, x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        """−log N(x | mean, Σ) per row = ½‖(x − mean) U‖² − log det U + (p/2) log 2π."""
        if self.precision_tril is None:
            return gaussian_nll(x, mean, self.log_scale)
        r = (x - mean) @ self.precision_factor()
        return 0.5 * (r * r).sum(1) + self.log_scale.sum() + 0.5 * x.shape[1] * _LOG_2PI

    def forward(self, u: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """Mean f(u, c); ``c=None`` decodes as background (c = 0)."""
        if c is None:
            c = u.new_zeros(u.shape[0], self.n_condition)
        return self.net(torch.cat([u, c], dim=1))

    def observe(
        self,
        u: torch.Tensor,
        c: torch.Tensor | None,
        eps: torch.Tensor,
        out: tuple[torch.Tensor | None, torch.Tensor | None],
        scale: torch.Tensor | None = None,
        shift: torch.Tensor | None = None,
        offsets: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        """Write x_B = f(u, 0) + b_B + εA and x_T = f(u, c) + b_T + εA (mapped to scale·x + shift)
        into ``out``: :meth:`sampler` for one chunk (see there for the arguments)."""
        self.sampler(out[0] is not None, out[1] is not None, scale, shift, offsets)(u, c, eps, out)

    def sampler(
        self,
        background: bool,
        target: bool,
        scale: torch.Tensor | None = None,
        shift: torch.Tensor | None = None,
        offsets: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> Callable[..., None]:
        """``draw(u, c, eps, out)`` writing x_B = f(u, 0) + b_B + εA and x_T = f(u, c) + b_T + εA
        (mapped to scale·x + shift) into ``out`` = (out_B or None, out_T or None).

        ``background``/``target`` say which outputs every call fills. The same (u, ε) gives both
        members of a synthetic pair. ``offsets`` = (b_B, b_T), per-feature intercepts added to the
        two outputs (None: no offsets). The affine map and the target's (or the only requested
        output's) offset are folded into the last layer, and the noise factor A (a triangular
        solve) is computed once here, not per chunk; ``draw`` overwrites ``eps``, so sampling
        millions of rows costs two GEMMs per chunk (three with noise), one vector add when both
        outputs carry different offsets, and no temporaries of the output's size. With
        ``noise="none"`` ``eps`` is ignored: the outputs are the means.
        """
        first, last = self.net[0], self.net[2]
        offset_b, offset_t = (None, None) if offsets is None else offsets
        folded = offset_t if target else offset_b
        weight, bias = last.weight.T, last.bias if folded is None else last.bias + folded
        if scale is not None:
            weight, bias = weight * scale, bias * scale + shift
        if self.noise == "none":
            factor = None
        elif self.precision_tril is None:
            factor = self.log_scale.exp() if scale is None else self.log_scale.exp() * scale
        else:
            factor = self.noise_factor() if scale is None else self.noise_factor() * scale
        gap = None
        if background and target and offsets is not None:
            gap = (offset_b - offset_t) if scale is None else (offset_b - offset_t) * scale
        shared_weight, condition_weight = first.weight[:, : self.n_shared], first.weight[:, self.n_shared :].T

        def draw(u: torch.Tensor, c: torch.Tensor | None, eps: torch.Tensor,
                 out: tuple[torch.Tensor | None, torch.Tensor | None]) -> None:
            out_b, out_t = out
            if factor is None:
                base = bias
            elif factor.dim() == 1:
                base = eps.mul_(factor).add_(bias)
            else:
                base = torch.addmm(bias, eps, factor)
            pre = F.linear(u, shared_weight, first.bias)
            if out_b is not None:
                torch.addmm(base, F.leaky_relu(pre, LEAKY_SLOPE), weight, out=out_b)
                if gap is not None:
                    out_b.add_(gap)
            if out_t is not None:
                hidden = F.leaky_relu(torch.addmm(pre, c, condition_weight), LEAKY_SLOPE)
                torch.addmm(base, hidden, weight, out=out_t)

        return draw
