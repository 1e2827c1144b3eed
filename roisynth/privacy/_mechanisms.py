"""The Gaussian mechanism for statistics a private fit releases besides its gradients."""

from __future__ import annotations

import math

import torch

from ._sufficient_stats import ROW_NORM


def private_mean(rows: torch.Tensor, noise_multiplier: float) -> torch.Tensor:
    r"""Mean of standardized rows by the Gaussian mechanism, each row clipped to norm R = 1.5√p.

    .. math:: \tilde\mu = \frac1n \Big(\sum_i u_i \min\big(1, R / \lVert u_i\rVert_2\big)
              + N(0, \sigma^2 R^2 I_p)\Big)

    Adding or removing one row moves the clipped sum by at most R, so the release is the Gaussian
    mechanism with noise multiplier σ (Rényi DP α / (2σ²), see :mod:`roisynth.privacy.accountant`);
    n is treated as public. R = 1.5√p is 1.5 public-scale units per feature in root mean square:
    in the public standardization of :class:`~roisynth.privacy.DifferentialPrivacy` the median
    subject of the bundled cohort sits at 0.6-0.7 and the 99th centile at 1.25 (controls) and 1.5
    (AD), so clipping changes few rows. The noise comes from torch's global generator.

    Parameters
    ----------
    rows : Tensor of shape (n, p)
        Rows in the public standardization.
    noise_multiplier : float
        σ.

    Returns
    -------
    Tensor of shape (p,)
        The noisy mean (float64).

    Examples
    --------
    >>> import torch
    >>> from roisynth.privacy._mechanisms import private_mean
    >>> rows = torch.zeros(10_000, 4, dtype=torch.float64)
    >>> bool(private_mean(rows, 1.0).abs().max() < 0.01)  # noise SD 3/10000
    True
    """
    rows = rows.double()
    bound = ROW_NORM * math.sqrt(rows.shape[1])
    norms = rows.norm(dim=1, keepdim=True)
    clipped = rows * (bound / norms.clamp_min(1e-12)).clamp(max=1.0)
    noise = torch.randn(rows.shape[1], dtype=torch.float64) * (noise_multiplier * bound)
    return (clipped.sum(0) + noise) / len(rows)
