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
    r"""ᾱ_t of the training schedule and the DDIM maps that use it.

    The training schedule is MONAI's ``DDPMScheduler`` with ``schedule="scaled_linear_beta"``:
    over T = ``config.train_timesteps`` steps,

    .. math::  \beta_t = \left(\sqrt{\beta_{start}} + \tfrac{t}{T-1}
               (\sqrt{\beta_{end}} - \sqrt{\beta_{start}})\right)^2, \qquad
               \bar\alpha_t = \prod_{s \le t} (1 - \beta_s), \qquad t = 0, \dots, T-1.

    :meth:`add_noise` is the forward process, :meth:`step` one deterministic DDIM step (η = 0),
    :meth:`sample` and :meth:`invert` the DDIM loops over S of the T timesteps (see the module
    docstring for the maths of each).

    Parameters
    ----------
    config : DiffusionConfig
        Gives ``train_timesteps``, ``beta_start`` and ``beta_end``.

    Attributes
    ----------
    num_train_timesteps : int
        T.
    alphas_cumprod : Tensor of float64, shape (T,)
        ᾱ_t (computed by MONAI in float32, held in float64).

    Examples
    --------
    >>> from roisynth.imaging import get_config
    >>> from roisynth.imaging.ddim import DDIMSchedule
    >>> schedule = DDIMSchedule(get_config("16"))
    >>> schedule.num_train_timesteps, tuple(schedule.alphas_cumprod.shape)
    (1000, (1000,))
    >>> round(float(schedule.alphas_cumprod[0]), 4), round(float(schedule.alphas_cumprod[-1]), 4)
    (0.9985, 0.0001)
    """

    def __init__(self, config: DiffusionConfig):
        from monai.networks.schedulers import DDPMScheduler

        ddpm = DDPMScheduler(num_train_timesteps=config.train_timesteps, schedule="scaled_linear_beta",
                             beta_start=config.beta_start, beta_end=config.beta_end)
        self.num_train_timesteps = config.train_timesteps
        self.alphas_cumprod = ddpm.alphas_cumprod.to(torch.float64)

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        r"""Forward process: noise clean samples to timestep t.

        .. math::  x_t = \sqrt{\bar\alpha_t}\, x_0 + \sqrt{1 - \bar\alpha_t}\, \varepsilon,

        with each sample's own t (ᾱ_t cast to ``x0``'s device and dtype).

        Parameters
        ----------
        x0 : Tensor, shape (B, ...)
            Clean samples (latents).
        noise : Tensor, shape (B, ...)
            ε, of ``x0``'s shape.
        t : long Tensor, shape (B,)
            Timesteps in 0 .. T - 1, one per sample.

        Returns
        -------
        Tensor, shape (B, ...)
            x_t, of ``x0``'s shape and dtype.

        Examples
        --------
        >>> import torch
        >>> from roisynth.imaging import get_config
        >>> from roisynth.imaging.ddim import DDIMSchedule
        >>> schedule = DDIMSchedule(get_config("16"))
        >>> x_t = schedule.add_noise(torch.ones(2, 3), torch.zeros(2, 3), torch.tensor([0, 999]))
        >>> x_t[:, 0].round(decimals=4)  # √ᾱ_0 and √ᾱ_999
        tensor([0.9992, 0.0119])
        """
        abar = self.alphas_cumprod.to(x0.device)[t].to(x0.dtype).view(-1, *([1] * (x0.dim() - 1)))
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def timesteps(self, steps: int) -> list[int]:
        """The S ascending DDIM timesteps t_i = i ⌊T/S⌋, i = 0 .. S - 1.

        Parameters
        ----------
        steps : int
            S, in 1 .. T (otherwise a ``ValueError``).

        Returns
        -------
        list of int
            t_0 = 0 < t_1 < ... < t_{S-1}.

        Examples
        --------
        >>> from roisynth.imaging import get_config
        >>> from roisynth.imaging.ddim import DDIMSchedule
        >>> DDIMSchedule(get_config("16")).timesteps(5)
        [0, 200, 400, 600, 800]
        """
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
        r"""One deterministic DDIM step x_t -> x_prev (η = 0).

        .. math::  x_{prev} = a\, x_t + b\, \varepsilon, \qquad
                   a = \sqrt{\bar\alpha_{prev} / \bar\alpha_t}, \qquad
                   b = \sqrt{1 - \bar\alpha_{prev}} - \sqrt{\bar\alpha_{prev} (1 - \bar\alpha_t) / \bar\alpha_t},

        i.e. x̂_0 from (x_t, ε) re-noised to t_prev, with ᾱ_prev = 1 when ``t_prev`` is None.

        Parameters
        ----------
        eps : Tensor
            ε_θ(x_t, t), of ``x_t``'s shape.
        t : int
            Timestep of ``x_t``.
        x_t : Tensor
            Current samples.
        t_prev : int or None
            Timestep to step to (the previous DDIM timestep); None steps to the clean end x_0.

        Returns
        -------
        Tensor
            x_prev, of ``x_t``'s shape.

        Examples
        --------
        >>> import torch
        >>> from roisynth.imaging import get_config
        >>> from roisynth.imaging.ddim import DDIMSchedule
        >>> schedule = DDIMSchedule(get_config("16"))
        >>> schedule.step(torch.zeros(1), 800, torch.ones(1), 600).round(decimals=4)  # ε = 0: a x_t
        tensor([3.3521])
        """
        a, b = self._coefficients(t, t_prev)
        return a * x_t + b * eps

    @staticmethod
    def _batch_t(t: int, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)

    @torch.no_grad()
    def sample(self, eps_fn: NoiseFn, x_T: torch.Tensor, steps: int, keep: torch.Tensor | None = None,
               trajectory: list[torch.Tensor] | None = None) -> torch.Tensor:
        r"""DDIM sampling from x_{t_{S-1}} down to x_0.

        Applies :meth:`step` with ε = ``eps_fn``(x, t_i) for i = S - 1, ..., 0, stepping from
        t_i to t_{i-1} and, at i = 0, to x_0 (ᾱ = 1). Runs without gradients.

        Blended (local) sampling: with a mask m = ``keep`` and the factual ``trajectory``
        (x^f_0, x^f_{t_0}, ..., from :meth:`invert`), every step ends with

        .. math::  x_{prev} \leftarrow m\, x_{prev} + (1 - m)\, x^f_{prev},

        so where m = 0 the trajectory is the factual one.

        Parameters
        ----------
        eps_fn : callable
            ε_θ(x, t): samples (B, ...) and a (B,) long tensor of timesteps -> predicted noise
            of ``x``'s shape (:data:`NoiseFn`).
        x_T : Tensor, shape (B, ...)
            Starting samples at timestep t_{S-1} (noise, or the output of :meth:`invert`).
        steps : int
            S, the number of DDIM steps (:meth:`timesteps`).
        keep : Tensor, default=None
            m, broadcastable to ``x_T`` (1: generate, 0: keep the factual latent); needs
            ``trajectory``.
        trajectory : list of Tensor, default=None
            The S + 1 factual latents x^f_0, x^f_{t_0}, ..., x^f_{t_{S-1}} (:meth:`invert`'s).

        Returns
        -------
        Tensor, shape (B, ...)
            x_0.

        Examples
        --------
        >>> import torch
        >>> from roisynth.imaging import get_config
        >>> from roisynth.imaging.ddim import DDIMSchedule
        >>> schedule = DDIMSchedule(get_config("16"))
        >>> x0 = schedule.sample(lambda x, t: 0.1 * x, torch.ones(2, 4), steps=5)  # a toy ε_θ
        >>> x0.shape
        torch.Size([2, 4])
        """
        if (keep is None) != (trajectory is None) or (trajectory is not None and len(trajectory) != steps + 1):
            raise ValueError("blended sampling needs both keep and the steps + 1 latents of the factual trajectory")
        ts = self.timesteps(steps)
        x = x_T
        for i in reversed(range(steps)):
            t_prev = ts[i - 1] if i > 0 else None
            x = self.step(eps_fn(x, self._batch_t(ts[i], x)), ts[i], x, t_prev)
            if keep is not None:
                x = keep * x + (1 - keep) * trajectory[i]
        return x

    @torch.no_grad()
    def invert(self, eps_fn: NoiseFn, x0: torch.Tensor, steps: int, iterations: int = 5,
               tol: float = 1e-5, trajectory: list | None = None) -> tuple[torch.Tensor, float]:
        r"""Exact DDIM inversion: x_0 -> x_{t_{S-1}} such that :meth:`sample` maps it back to x_0.

        Each step t_{i-1} -> t_i (i = 0 .. S - 1, from the clean end) solves the implicit
        equation x_prev = a x_t + b ε_θ(x_t, t) of :meth:`step` for x_t by fixed-point iteration

        .. math::  x_t^{(k+1)} = (x_{prev} - b\, \varepsilon_\theta(x_t^{(k)}, t)) / a,

        started from x_t^{(0)} = (x_prev - b ε_θ(x_prev, t)) / a (the usual, approximate DDIM
        inversion), with at most ``iterations`` refinements, fewer once the step's residual
        r = max|a x_t + b ε_θ(x_t, t) - x_prev| = a max|x_t^{(k+1)} - x_t^{(k)}| is below
        ``tol`` (see the module docstring). Runs without gradients. The iteration converges if
        |b| / a times ε_θ's Lipschitz constant is below 1 (the map is then a contraction); the
        residual says how close it came.

        Parameters
        ----------
        eps_fn : callable
            ε_θ(x, t), as in :meth:`sample` (use the same one to regenerate).
        x0 : Tensor, shape (B, ...)
            Clean samples (latents).
        steps : int
            S, the number of DDIM steps (:meth:`timesteps`).
        iterations : int, default=5
            Most fixed-point refinements per step (0: the usual approximate inversion).
        tol : float, default=1e-5
            Residual below which a step stops refining.
        trajectory : list, default=None
            When given, filled with x_0, x_{t_0}, ..., x_{t_{S-1}} (for blended :meth:`sample`).

        Returns
        -------
        x_T : Tensor, shape (B, ...)
            x_{t_{S-1}}.
        residual : float
            The largest final residual r over the steps.

        Examples
        --------
        >>> import torch
        >>> from roisynth.imaging import get_config
        >>> from roisynth.imaging.ddim import DDIMSchedule
        >>> schedule = DDIMSchedule(get_config("16"))
        >>> eps_fn = lambda x, t: 0.1 * x  # a toy ε_θ
        >>> x0 = torch.linspace(-1, 1, 8, dtype=torch.float64).view(2, 4)
        >>> x_T, residual = schedule.invert(eps_fn, x0, steps=5)
        >>> residual < 1e-5, bool((schedule.sample(eps_fn, x_T, steps=5) - x0).abs().max() < 1e-4)
        (True, True)
        >>> naive, _ = schedule.invert(eps_fn, x0, steps=5, iterations=0)
        >>> round(float((schedule.sample(eps_fn, naive, steps=5) - x0).abs().max()), 2)
        0.27
        """
        ts = self.timesteps(steps)
        x_prev, worst = x0, 0.0
        path = [] if trajectory is None else trajectory
        path.append(x0)
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
            path.append(x_t)
        return x_prev, worst
