r"""Noise schedule, DDIM sampling and exact DDIM inversion (our own loops; MONAI supplies ᾱ).

Forward process (DDPM, ``scaled_linear_beta``: √β linear from √β_start to √β_end over T steps):
x_t = √ᾱ_t x_0 + √(1 - ᾱ_t) ε, ᾱ_t = ∏_{s ≤ t} (1 - β_s).

DDIM (η = 0) on S of the T timesteps, t_i = i ⌊T/S⌋ (i = 0..S-1), ᾱ of "before t_0" = 1:
with ε = ε_θ(x_t, t),

.. math::  \hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\varepsilon) / \sqrt{\bar\alpha_t}, \qquad
           x_{prev} = \sqrt{\bar\alpha_{prev}}\,\hat x_0 + \sqrt{1-\bar\alpha_{prev}}\,\varepsilon
           = a\,x_t + b\,\varepsilon,

a = √(ᾱ_prev/ᾱ_t), b = √(1-ᾱ_prev) - √(ᾱ_prev (1-ᾱ_t)/ᾱ_t). Inversion runs the same map
backwards, x_t = (x_prev - b ε_θ(x_t, t)) / a, which is implicit in x_t: the usual inversion
uses ε_θ(x_prev, t) instead, leaving an O(step) error that regeneration does not undo. Here each
step is solved by fixed-point iteration x_t^{(k+1)} = (x_prev - b ε_θ(x_t^{(k)}, t)) / a from
x_t^{(0)} built with ε_θ(x_prev, t); at its fixed point the DDIM step from x_t lands exactly on
x_prev, so inversion followed by sampling under the same condition returns the latent (up to
the iteration's residual, which :meth:`DDIMSchedule.invert` reports).

MONAI's ``DDIMScheduler.reversed_step`` steps past the last timestep and uses the
approximation above, hence this module.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .config import DiffusionConfig

NoiseFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""ε_θ(x, t): latents (B, ...) and a (B,) long tensor of timesteps -> predicted noise."""


class DDIMSchedule:
    """ᾱ_t of the training schedule and the DDIM maps that use it."""

    def __init__(self, config: DiffusionConfig):
        from monai.networks.schedulers import DDPMScheduler

        ddpm = DDPMScheduler(num_train_timesteps=config.train_timesteps, schedule="scaled_linear_beta",
                             beta_start=config.beta_start, beta_end=config.beta_end)
        self.num_train_timesteps = config.train_timesteps
        self.alphas_cumprod = ddpm.alphas_cumprod.to(torch.float64)

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t = √ᾱ_t x_0 + √(1-ᾱ_t) ε (per-sample t)."""
        abar = self.alphas_cumprod.to(x0.device)[t].to(x0.dtype).view(-1, *([1] * (x0.dim() - 1)))
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def timesteps(self, steps: int) -> list[int]:
        """The S ascending DDIM timesteps t_i = i ⌊T/S⌋."""
        if not 1 <= steps <= self.num_train_timesteps:
            raise ValueError(f"steps must be in 1..{self.num_train_timesteps}, got {steps}")
        ratio = self.num_train_timesteps // steps
        return [i * ratio for i in range(steps)]

    def _coefficients(self, t: int, t_prev: int | None) -> tuple[float, float]:
        """(a, b) of x_prev = a x_t + b ε; ``t_prev`` None means the clean end (ᾱ = 1)."""
        abar_t = float(self.alphas_cumprod[t])
        abar_prev = 1.0 if t_prev is None else float(self.alphas_cumprod[t_prev])
        a = (abar_prev / abar_t) ** 0.5
        b = (1 - abar_prev) ** 0.5 - (abar_prev * (1 - abar_t) / abar_t) ** 0.5
        return a, b

    def step(self, eps: torch.Tensor, t: int, x_t: torch.Tensor, t_prev: int | None) -> torch.Tensor:
        """One deterministic DDIM step x_t -> x_prev (t_prev None: to x_0)."""
        a, b = self._coefficients(t, t_prev)
        return a * x_t + b * eps

    @staticmethod
    def _batch_t(t: int, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)

    @torch.no_grad()
    def sample(self, eps_fn: NoiseFn, x_T: torch.Tensor, steps: int) -> torch.Tensor:
        """DDIM from x_{t_{S-1}} down to x_0."""
        ts = self.timesteps(steps)
        x = x_T
        for i in reversed(range(steps)):
            t_prev = ts[i - 1] if i > 0 else None
            x = self.step(eps_fn(x, self._batch_t(ts[i], x)), ts[i], x, t_prev)
        return x

    @torch.no_grad()
    def invert(self, eps_fn: NoiseFn, x0: torch.Tensor, steps: int, iterations: int = 5,
               tol: float = 1e-5) -> tuple[torch.Tensor, float]:
        """x_0 -> x_{t_{S-1}} such that :meth:`sample` maps it back to x_0 (see the module
        docstring), with at most ``iterations`` fixed-point refinements per step, fewer once
        the step's residual r = max|a x_t + b ε_θ(x_t, t) - x_prev| = a max|x_t - x_t^{next}|
        is below ``tol``. Returns (x_T, the largest final residual over the steps)."""
        ts = self.timesteps(steps)
        x_prev, worst = x0, 0.0
        for i in range(steps):
            t, t_prev = ts[i], (ts[i - 1] if i > 0 else None)
            a, b = self._coefficients(t, t_prev)
            bt = self._batch_t(t, x_prev)
            x_t = (x_prev - b * eps_fn(x_prev, bt)) / a
            for k in range(iterations + 1):
                refined = (x_prev - b * eps_fn(x_t, bt)) / a
                residual = a * float((refined - x_t).abs().max())
                if residual < tol or k == iterations:
                    break
                x_t = refined
            worst = max(worst, residual)
            x_prev = x_t
        return x_prev, worst
