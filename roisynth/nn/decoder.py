"""The Gaussian decoder shared by the neural synthesizers: p(x | u, c) = N(f(u, c), Σ)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
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
        into ``out``: :meth:`sampler` for one chunk (see there for the arguments), its BLAS on
        torch's intra-op thread count (:func:`blas_threads`)."""
        with blas_threads():
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
        two outputs (None: no offsets). The affine map and the offsets are folded into the last
        layer's weight and each output's bias, and the noise factor A (a triangular solve) is
        computed once here, not per chunk. ``draw`` overwrites ``eps`` with εA in place by a
        triangular matrix product (BLAS ``trmm``: A = U⁻¹ is lower-triangular, so half the work of
        a dense product), writes εA + bias into each output and adds the last layer's GEMM to it in
        place (BLAS ``gemm`` with β = 1): no temporaries of the output's size. SciPy's BLAS runs
        with as many threads as it was given: call ``draw`` inside :func:`blas_threads`. With
        ``noise="none"`` ``eps`` is ignored: the outputs are the means.
        """
        from scipy.linalg.blas import get_blas_funcs

        first, last = self.net[0], self.net[2]
        with torch.no_grad():
            weight = last.weight.detach().T if scale is None else last.weight.detach().T * scale
            biases = []
            for wanted, offset in ((background, None if offsets is None else offsets[0]),
                                   (target, None if offsets is None else offsets[1])):
                bias = last.bias.detach() if offset is None else last.bias.detach() + offset
                biases.append((bias if scale is None else bias * scale + shift).numpy() if wanted else None)
            if self.noise == "none":
                factor = None
            elif self.precision_tril is None:
                factor = self.log_scale.detach().exp() if scale is None else self.log_scale.detach().exp() * scale
                factor = factor.numpy()
            else:  # Fortran order: the layout trmm reads without a copy
                factor = self.noise_factor() if scale is None else self.noise_factor() * scale
                factor = np.asfortranarray(factor.numpy())
            shared_weight = first.weight.detach()[:, : self.n_shared]
            condition_weight = first.weight.detach()[:, self.n_shared :].T
            first_bias = first.bias.detach()
        # rows are C-ordered: out (k × p) is outᵀ (p × k) in BLAS's column order, so out += H W is
        # outᵀ += Wᵀ Hᵀ and ε ← ε A is εᵀ ← Aᵀ εᵀ; the transposes below are views, not copies
        weight_t = np.ascontiguousarray(weight.numpy()).T
        gemm, trmm = get_blas_funcs(("gemm", "trmm"), dtype=weight_t.dtype)

        def draw(u: torch.Tensor, c: torch.Tensor | None, eps: torch.Tensor,
                 out: tuple[torch.Tensor | None, torch.Tensor | None]) -> None:
            if len(u) == 0:
                return
            with torch.no_grad():
                noise = _rows(eps)
                if factor is not None and factor.ndim == 2:
                    _in_place(trmm(1.0, factor, noise.T, side=0, lower=1, trans_a=1, overwrite_b=1), noise.T)
                elif factor is not None:
                    np.multiply(noise, factor, out=noise)
                pre = F.linear(u.detach(), shared_weight, first_bias)
                for side, tensor in enumerate(out):
                    if tensor is None:
                        continue
                    hidden = pre if side == 0 else torch.addmm(pre, c.detach(), condition_weight)
                    hidden = F.leaky_relu(hidden, LEAKY_SLOPE).numpy()
                    rows = _rows(tensor, writable=True)
                    if factor is None:
                        rows[...] = biases[side]
                    else:
                        np.add(noise, biases[side], out=rows)
                    _in_place(gemm(1.0, weight_t, hidden.T, beta=1.0, c=rows.T, overwrite_c=1), rows.T)
                    if not np.may_share_memory(rows, tensor.numpy()):
                        tensor.copy_(torch.from_numpy(rows))

        return draw


def _rows(tensor: torch.Tensor, writable: bool = False) -> np.ndarray:
    """``tensor`` as a C-contiguous array sharing its memory, or a fresh one (filled with its
    values unless ``writable``, which asks only for a place to write) when it cannot."""
    if tensor.is_contiguous():
        return tensor.numpy()
    return np.empty(tuple(tensor.shape), dtype=tensor.numpy().dtype) if writable else tensor.contiguous().numpy()


def _in_place(result: np.ndarray, target: np.ndarray) -> None:
    """Make sure a BLAS call asked to overwrite ``target`` did (f2py copies what it cannot use as is)."""
    if result is not target and not np.may_share_memory(result, target):
        target[...] = result


_CONTROLLER = None


@contextmanager
def blas_threads(n: int | None = None) -> Iterator[None]:
    """Run the BLAS libraries loaded by NumPy and SciPy (OpenBLAS) with ``n`` threads, torch's
    intra-op thread count by default (what :func:`roisynth.nn.threads` sets), restoring them after.

    Generation multiplies with SciPy's BLAS (:meth:`GaussianDecoder.sampler`), which otherwise
    starts one thread per core whatever the model's ``n_threads``.
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        import scipy.linalg.blas  # noqa: F401  (loaded first, so that the controller sees it)
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    with _CONTROLLER.limit(limits=torch.get_num_threads() if n is None else n, user_api="blas"):
        yield
