"""The Rényi-DP accountant of DP-SGD against opacus' accountant and the exact Gaussian mechanism."""

import math

import numpy as np
import pytest
from scipy.stats import norm

from roisynth.privacy import epsilon, noise_multiplier, rdp_to_epsilon, subsampled_gaussian_rdp
from roisynth.privacy.accountant import MAX_NOISE_MULTIPLIER, ORDERS

pytestmark = pytest.mark.filterwarnings("ignore:Optimal order is the:UserWarning")

rdp_analysis = pytest.importorskip("opacus.accountants.analysis.rdp")
opacus_utils = pytest.importorskip("opacus.accountants.utils")

SETTINGS = [  # (q, sigma, steps, delta): Abadi et al.'s MNIST run, roisynth-sized fits, a full-batch run
    (256 / 60000, 1.1, 14063, 1e-5),
    (256 / 2100, 6.17, 820, 1 / 2100**2),
    (256 / 2100, 1.5, 2000, 1 / 2100**2),
    (0.5, 3.0, 100, 1e-6),
    (1.0, 10.0, 50, 1e-6),
]
OPACUS_ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))  # opacus' RDPAccountant.DEFAULT_ALPHAS


@pytest.mark.parametrize(("q", "sigma", "steps", "delta"), SETTINGS)
def test_epsilon_equals_opacus_at_the_same_orders(q, sigma, steps, delta):
    orders = ORDERS.tolist()
    rdp = rdp_analysis.compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=orders)
    np.testing.assert_allclose(steps * subsampled_gaussian_rdp(q, sigma), rdp, rtol=1e-9)
    reference = rdp_analysis.get_privacy_spent(orders=orders, rdp=rdp, delta=delta)[0]
    assert epsilon(q, sigma, steps, delta) == pytest.approx(reference, rel=1e-9)


@pytest.mark.parametrize(("q", "sigma", "steps", "delta"), SETTINGS)
def test_integer_orders_are_at_most_two_percent_looser_than_opacus_defaults(q, sigma, steps, delta):
    rdp = rdp_analysis.compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=OPACUS_ORDERS)
    reference = rdp_analysis.get_privacy_spent(orders=OPACUS_ORDERS, rdp=rdp, delta=delta)[0]
    ours = epsilon(q, sigma, steps, delta)
    assert reference * (1 - 1e-9) <= ours <= 1.02 * reference


def _exact_gaussian_delta(eps: float, sigma: float) -> float:
    """δ(ε) of the Gaussian mechanism with sensitivity 1 and noise σ (Balle & Wang 2018, Theorem 8)."""
    return norm.cdf(1 / (2 * sigma) - eps * sigma) - math.exp(eps) * norm.cdf(-1 / (2 * sigma) - eps * sigma)


@pytest.mark.parametrize(("sigma", "steps"), [(2.0, 1), (5.0, 10), (20.0, 100)])
def test_full_batch_epsilon_bounds_the_exact_gaussian_mechanism(sigma, steps):
    # T full-batch steps are one Gaussian mechanism with noise σ / √T: the RDP bound must hold
    # (its δ at our ε at most δ) and not be loose by more than a third.
    delta = 1e-6
    ours = epsilon(1.0, sigma, steps, delta)
    effective = sigma / math.sqrt(steps)
    assert _exact_gaussian_delta(ours, effective) <= delta
    assert _exact_gaussian_delta(ours / 1.35, effective) > delta


def test_full_batch_rdp_is_the_gaussian_formula():
    np.testing.assert_allclose(subsampled_gaussian_rdp(1.0, 3.0), ORDERS / 18)


@pytest.mark.parametrize(("target", "q", "steps", "delta"),
                         [(1.0, 256 / 2100, 410, 1 / 2100**2), (10.0, 256 / 2100, 820, 1 / 2100**2),
                          (3.0, 0.01, 1000, 1e-5)])
def test_noise_multiplier_is_the_smallest_that_meets_the_budget(target, q, steps, delta):
    sigma = noise_multiplier(target, delta, q, steps)
    assert epsilon(q, sigma, steps, delta) <= target < epsilon(q, sigma * (1 - 2e-3), steps, delta)
    reference = opacus_utils.get_noise_multiplier(target_epsilon=target, target_delta=delta, sample_rate=q,
                                                  steps=steps, accountant="rdp", epsilon_tolerance=1e-3)
    assert reference * 0.99 <= sigma <= reference * 1.03  # opacus' fractional orders allow a little less noise


def test_a_budget_no_noise_meets_is_refused():
    q, steps, delta = 1.0, 10_000, 1e-6
    with pytest.raises(ValueError, match=r"epsilon=0\.5 cannot be met: 10000 steps"):
        noise_multiplier(0.5, delta, q, steps)
    assert epsilon(q, MAX_NOISE_MULTIPLIER, steps, delta) > 0.5


@pytest.mark.parametrize(("call", "message"), [
    (lambda: epsilon(0.0, 1.0, 10, 1e-5), "sampling_rate"),
    (lambda: epsilon(0.1, 0.0, 10, 1e-5), "noise_multiplier"),
    (lambda: epsilon(0.1, 1.0, 0, 1e-5), "steps"),
    (lambda: epsilon(0.1, 1.0, 10, 1.5), "delta"),
    (lambda: rdp_to_epsilon([1.0], 0.0, [2]), "delta"),
    (lambda: noise_multiplier(float("inf"), 1e-5, 0.1, 10), "target_epsilon"),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
