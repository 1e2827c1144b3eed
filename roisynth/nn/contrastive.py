"""The contrastive VAE as a torch module: the maths, apart from the estimator that trains it."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import LEAKY_SLOPE, GaussianEncoder, mlp
from .losses import _LOG_2PI, gaussian_nll, kl_standard_normal, rbf_mmd


class ContrastiveVAEModule(nn.Module):
    r"""Contrastive VAE with a learned observation covariance.

    Common encoder q(z|x), salient encoder q(s|x) and one decoder p(x|z,s) = N(f(z, s), Σ).
    Background rows are decoded with s = 0. Σ is learned through its precision's Cholesky
    factor, Σ⁻¹ = U Uᵀ with U lower-triangular and positive diagonal exp(−log_scale): with
    ``noise="full"`` U is dense (residual correlations such as left/right homologues that a
    5-dimensional z cannot carry), with ``noise="diagonal"`` Σ = diag(exp(2·log_scale)).
    For a background batch B and a target batch T the loss is

    .. math::
        \mathcal L = \overline{\mathrm{NLL}(x_B | f(z, 0)) + \mathrm{KL}_z}^{B}
                   + \overline{\mathrm{NLL}(x_T | f(z, s)) + \mathrm{KL}_z + \mathrm{KL}_s}^{T}
                   + \lambda\,\mathrm{MMD}^2(z_T, z_B)
                   + \gamma\,\overline{\lVert \mu_s(x_B) \rVert^2}^{B}

    The last term (as in MM-cVAE, Weinberger et al. 2022) keeps the salient posterior of
    healthy subjects at zero, so salient codes measure disease expression.
    """

    def __init__(self, n_features: int, n_common: int, n_salient: int, n_hidden: int, noise: str = "full"):
        super().__init__()
        if noise not in ("full", "diagonal"):
            raise ValueError(f"noise={noise!r} is not 'full' or 'diagonal'")
        self.n_common, self.n_salient = n_common, n_salient
        self.common = GaussianEncoder(n_features, n_hidden, n_common)
        self.salient = GaussianEncoder(n_features, n_hidden, n_salient)
        self.decoder = mlp(n_common + n_salient, n_hidden, n_features)
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

    def decode(self, z: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of p(x|z, s); ``s=None`` decodes as background (s = 0)."""
        if s is None:
            s = z.new_zeros(z.shape[0], self.n_salient)
        return self.decoder(torch.cat([z, s], dim=1))

    def observe(
        self,
        z: torch.Tensor,
        s: torch.Tensor | None,
        eps: torch.Tensor,
        out: tuple[torch.Tensor | None, torch.Tensor | None],
        scale: torch.Tensor | None = None,
        shift: torch.Tensor | None = None,
    ) -> None:
        """Write x_B = f(z, 0) + εA and x_T = f(z, s) + εA (mapped to scale·x + shift) into ``out``.

        The same (z, ε) gives both members of a synthetic pair. The affine map is folded into
        the last layer and ``eps`` is overwritten, so sampling millions of rows costs two
        GEMMs per chunk and no temporaries of the output's size.
        """
        first, last = self.decoder[0], self.decoder[2]
        weight, bias = last.weight.T, last.bias
        if scale is not None:
            weight, bias = weight * scale, bias * scale + shift
        if self.precision_tril is None:
            sigma = self.log_scale.exp() if scale is None else self.log_scale.exp() * scale
            base = eps.mul_(sigma).add_(bias)
        else:
            factor = self.noise_factor() if scale is None else self.noise_factor() * scale
            base = torch.addmm(bias, eps, factor)
        pre = F.linear(z, first.weight[:, : self.n_common], first.bias)
        out_b, out_t = out
        if out_b is not None:
            torch.addmm(base, F.leaky_relu(pre, LEAKY_SLOPE), weight, out=out_b)
        if out_t is not None:
            hidden = F.leaky_relu(torch.addmm(pre, s, first.weight[:, self.n_common :].T), LEAKY_SLOPE)
            torch.addmm(base, hidden, weight, out=out_t)

    def loss(
        self, xb: torch.Tensor, xt: torch.Tensor, mmd_weight: float, background_salient_weight: float
    ) -> torch.Tensor:
        nb = xb.shape[0]
        x = torch.cat([xb, xt])
        mu_z, lv_z = self.common(x)
        mu_s, lv_s = self.salient(x)
        z = GaussianEncoder.rsample(mu_z, lv_z)
        s_t = GaussianEncoder.rsample(mu_s[nb:], lv_s[nb:])
        s = torch.cat([torch.zeros_like(mu_s[:nb]), s_t])
        nll = self.nll(x, self.decoder(torch.cat([z, s], dim=1)))
        kl_z = kl_standard_normal(mu_z, lv_z)
        kl_s = kl_standard_normal(mu_s[nb:], lv_s[nb:])
        loss = (nll[:nb] + kl_z[:nb]).mean() + (nll[nb:] + kl_z[nb:] + kl_s).mean()
        if mmd_weight:
            loss = loss + mmd_weight * rbf_mmd(mu_z[nb:], mu_z[:nb])
        if background_salient_weight:
            loss = loss + background_salient_weight * mu_s[:nb].pow(2).sum(1).mean()
        return loss
