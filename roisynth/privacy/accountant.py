r"""Rényi-DP accounting of DP-SGD: the Poisson-subsampled Gaussian mechanism composed over steps.

One DP-SGD step adds N(0, σ²C²) noise to the sum of per-example gradients clipped to norm C,
over a batch in which every training example takes part independently with probability q
(Poisson sampling). Its Rényi divergence of integer order α between neighbouring data sets
(one example added or removed) is at most (Mironov, Talwar & Zhang 2019, *Rényi Differential
Privacy of the Sampled Gaussian Mechanism*, Section 3.3)

.. math::
    \varepsilon_\alpha = \frac{1}{\alpha - 1} \log A_\alpha, \qquad
    A_\alpha = \sum_{i=0}^{\alpha} \binom{\alpha}{i} q^i (1 - q)^{\alpha - i}
               \exp\Big(\frac{i^2 - i}{2\sigma^2}\Big),

which for q = 1 is the Gaussian mechanism's α / (2σ²). Rényi DP composes additively, so T steps
spend T ε_α (plus α / (2σ_k²) for each further Gaussian mechanism with noise multiplier σ_k on
the same data, such as the noisy cohort means of a private fit), and (α, T ε_α)-RDP implies
(ε, δ)-DP with (Balle et al. 2020, *Hypothesis testing interpretations and Rényi differential
privacy*, Theorem 21)

.. math::
    \varepsilon = \min_\alpha\; T\varepsilon_\alpha + \log\frac{\alpha - 1}{\alpha}
                  - \frac{\log\delta + \log\alpha}{\alpha - 1}.

Only integer orders 2..256 are used: any set of orders gives a valid bound, and the integer
sum is exact and short (opacus' accountant adds fractional orders and so finds ε a few percent
smaller; ``tests/privacy`` checks both against each other).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy.special import gammaln, logsumexp

ORDERS = np.arange(2, 257)
#: The largest noise multiplier :func:`noise_multiplier` considers: beyond it the noise of a step
#: is over a hundred times the clipped gradient of an example, and training learns nothing.
MAX_NOISE_MULTIPLIER = 100.0


def _check_rate(sampling_rate: float, noise_multiplier: float, steps: int) -> None:
    if not 0 < sampling_rate <= 1:
        raise ValueError(f"sampling_rate must be in (0, 1], got {sampling_rate!r}")
    if not noise_multiplier > 0:
        raise ValueError(f"noise_multiplier must be positive, got {noise_multiplier!r}")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")


def subsampled_gaussian_rdp(sampling_rate: float, noise_multiplier: float, orders=ORDERS) -> np.ndarray:
    r"""RDP ε_α of one step of the Poisson-subsampled Gaussian mechanism, at integer orders α.

    Parameters
    ----------
    sampling_rate : float
        q, the probability that an example takes part in a step, in (0, 1].
    noise_multiplier : float
        σ, the noise standard deviation over the clipping norm.
    orders : array-like of int, default=ORDERS
        The orders α ≥ 2.

    Returns
    -------
    ndarray of shape (len(orders),)
        ε_α (module docstring; α / (2σ²) when q = 1).

    Examples
    --------
    >>> from roisynth.privacy import subsampled_gaussian_rdp
    >>> subsampled_gaussian_rdp(1.0, 2.0, [2, 4]).tolist()  # α / (2σ²)
    [0.25, 0.5]
    """
    _check_rate(sampling_rate, noise_multiplier, 1)
    orders = np.asarray(orders)
    if orders.dtype.kind not in "iu" or (orders < 2).any():
        raise ValueError("orders must be integers >= 2")
    if sampling_rate == 1:
        return orders / (2 * noise_multiplier**2)
    alpha, i = orders[:, None].astype(float), np.arange(orders.max() + 1, dtype=float)[None, :]
    terms = (_log_binomials(int(orders.max()))[orders] + i * math.log(sampling_rate)
             + (alpha - i) * math.log1p(-sampling_rate) + (i * i - i) / (2 * noise_multiplier**2))
    return logsumexp(terms, axis=1) / (orders - 1)


@functools.cache
def _log_binomials(max_order: int) -> np.ndarray:
    """log C(α, i) for α, i in 0..max_order (−inf where i > α), read-only."""
    alpha, i = np.arange(max_order + 1.0)[:, None], np.arange(max_order + 1.0)[None, :]
    with np.errstate(invalid="ignore"):  # gammaln at negative integers where i > α, masked next
        table = np.where(i <= alpha, gammaln(alpha + 1) - gammaln(i + 1) - gammaln(alpha - i + 1), -np.inf)
    table.flags.writeable = False
    return table


def rdp_to_epsilon(rdp, delta: float, orders=ORDERS) -> float:
    """The (ε, δ)-DP guarantee implied by RDP ``rdp`` at ``orders`` (Balle et al. 2020, Theorem 21).

    Parameters
    ----------
    rdp : array-like of shape (len(orders),)
        RDP ε_α of the whole composition at each order.
    delta : float
        δ in (0, 1).
    orders : array-like of int, default=ORDERS
        The orders α of ``rdp``.

    Returns
    -------
    float
        The smallest ε over the orders (module docstring).

    Examples
    --------
    >>> from roisynth.privacy import rdp_to_epsilon
    >>> round(rdp_to_epsilon([0.5], 1e-5, [2]), 4)  # 0.5 + log(1/2) - log(2e-5)
    10.6266
    """
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta!r}")
    alpha, rdp = np.asarray(orders, dtype=float), np.asarray(rdp, dtype=float)
    eps = rdp + np.log1p(-1 / alpha) - (math.log(delta) + np.log(alpha)) / (alpha - 1)
    return float(max(np.nanmin(eps), 0.0))


def epsilon(sampling_rate: float, noise_multiplier: float, steps: int, delta: float, gaussian: tuple = ()) -> float:
    """ε of ``steps`` DP-SGD steps with Poisson rate ``sampling_rate`` and ``noise_multiplier`` at ``delta``,
    composed with a Gaussian mechanism of noise multiplier σ_k for each σ_k in ``gaussian``.

    Parameters
    ----------
    sampling_rate : float
        q in (0, 1].
    noise_multiplier : float
        σ > 0.
    steps : int
        T, the number of steps.
    delta : float
        δ in (0, 1).
    gaussian : tuple of float, default=()
        Noise multipliers of further (unsampled) Gaussian mechanisms of sensitivity 1.

    Returns
    -------
    float
        ε of the composition (module docstring).

    Examples
    --------
    >>> from roisynth.privacy import epsilon
    >>> round(epsilon(256 / 60000, 1.1, 14063, 1e-5), 2)  # Abadi et al.'s MNIST setting, 60 epochs
    2.6
    """
    _check_rate(sampling_rate, noise_multiplier, steps)
    rdp = steps * subsampled_gaussian_rdp(sampling_rate, noise_multiplier)
    return rdp_to_epsilon(rdp + sum(subsampled_gaussian_rdp(1.0, sigma) for sigma in gaussian), delta)


def noise_multiplier(target_epsilon: float, delta: float, sampling_rate: float, steps: int, gaussian: tuple = (),
                     tolerance: float = 1e-3) -> float:
    """The smallest σ (to ``tolerance``, relative) whose ``steps`` steps spend at most ``target_epsilon``
    (together with the Gaussian mechanisms ``gaussian``, see :func:`epsilon`).

    Bisection on σ: ε decreases with σ.

    Parameters
    ----------
    target_epsilon : float
        The budget ε > 0.
    delta : float
        δ in (0, 1).
    sampling_rate : float
        q in (0, 1].
    steps : int
        T.
    gaussian : tuple of float, default=()
        Noise multipliers of further Gaussian mechanisms composed with the steps.
    tolerance : float, default=1e-3
        Relative precision of σ.

    Returns
    -------
    float
        σ with ``epsilon(sampling_rate, σ, steps, delta) <= target_epsilon``.

    Raises
    ------
    ValueError
        When even σ = ``MAX_NOISE_MULTIPLIER`` spends more than ``target_epsilon``, naming the
        ε it would spend.

    Examples
    --------
    >>> from roisynth.privacy import epsilon, noise_multiplier
    >>> sigma = noise_multiplier(3.0, 1e-5, 0.01, 1000)
    >>> round(sigma, 2), epsilon(0.01, sigma, 1000, 1e-5) <= 3.0
    (0.87, True)
    """
    if not target_epsilon > 0 or not math.isfinite(target_epsilon):
        raise ValueError(f"target_epsilon must be a positive finite number, got {target_epsilon!r}")
    high = MAX_NOISE_MULTIPLIER
    spent = epsilon(sampling_rate, high, steps, delta, gaussian)
    if spent > target_epsilon:
        raise ValueError(
            f"epsilon={target_epsilon:g} cannot be met: {steps} steps at sampling rate {sampling_rate:.4g} spend "
            f"epsilon={spent:.3g} (delta={delta:.3g}) even with noise {high:g} times the clipping norm; "
            "train fewer epochs, use larger batches or more subjects, or allow a larger epsilon")
    low = 0.01
    while epsilon(sampling_rate, low, steps, delta, gaussian) <= target_epsilon:
        high, low = low, low / 2
    while high - low > tolerance * high:
        middle = (low + high) / 2
        within = epsilon(sampling_rate, middle, steps, delta, gaussian) <= target_epsilon
        low, high = (low, middle) if within else (middle, high)
    return high
