"""Distribution distances: Gaussian W2 closed forms, exact and sliced W2, MMD, marginals, correlations."""

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp

from roisynth.metrics import (
    GaussianReference,
    correlation_similarity,
    gaussian_w2,
    marginal_distances,
    mmd,
    sliced_wasserstein,
    wasserstein,
)


def sample_with_moments(mean, cov, n, seed):
    """n rows whose sample mean and unbiased sample covariance are exactly ``mean`` and ``cov``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(mean)))
    x -= x.mean(0)
    x = x @ np.linalg.inv(np.linalg.cholesky(np.atleast_2d(np.cov(x, rowvar=False)))).T  # now cov(x) = I
    return x @ np.linalg.cholesky(cov).T + mean


def test_gaussian_w2_one_dimensional_closed_form():
    # W2(N(m1, s1^2), N(m2, s2^2))^2 = (m1 - m2)^2 + (s1 - s2)^2
    a = sample_with_moments(np.array([1.0]), np.array([[4.0]]), 50, 0)
    b = sample_with_moments(np.array([-2.0]), np.array([[0.25]]), 70, 1)
    assert gaussian_w2(a, b) == pytest.approx(np.sqrt(3**2 + 1.5**2), rel=1e-10)


def test_gaussian_w2_commuting_covariances_closed_form():
    # A = Q diag(alpha) Q^T, B = Q diag(beta) Q^T: W2^2 = |m_a - m_b|^2 + sum (sqrt(alpha) - sqrt(beta))^2
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    alpha, beta = np.array([1.0, 4.0, 9.0, 0.25, 2.0]), np.array([4.0, 1.0, 9.0, 1.0, 0.5])
    ma, mb = rng.normal(size=5), rng.normal(size=5)
    a = sample_with_moments(ma, q @ np.diag(alpha) @ q.T, 40, 3)
    b = sample_with_moments(mb, q @ np.diag(beta) @ q.T, 60, 4)
    expected = np.sqrt(((ma - mb) ** 2).sum() + ((np.sqrt(alpha) - np.sqrt(beta)) ** 2).sum())
    assert gaussian_w2(a, b) == pytest.approx(expected, rel=1e-9)
    assert GaussianReference(a).distance(b) == pytest.approx(expected, rel=1e-9)
    # the diagonal case (Q = I) too
    a, b = sample_with_moments(ma, np.diag(alpha), 40, 5), sample_with_moments(mb, np.diag(beta), 60, 6)
    assert gaussian_w2(a, b) == pytest.approx(expected, rel=1e-9)


def test_gaussian_w2_equals_pot_and_handles_singular_covariances():
    import ot

    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(50, 8)) @ rng.normal(size=(8, 8)), rng.normal(size=(40, 8)) + 1
    pot = ot.gaussian.bures_wasserstein_distance(a.mean(0), b.mean(0), np.cov(a.T), np.cov(b.T))
    assert gaussian_w2(a, b) == pytest.approx(pot, rel=1e-10)
    assert gaussian_w2(b, a) == pytest.approx(pot, rel=1e-10)
    # fewer rows than columns: rank-deficient covariances (POT's square roots give NaN here)
    wide_a, wide_b = rng.normal(size=(6, 10)), rng.normal(size=(7, 10)) + 0.5
    assert gaussian_w2(wide_a, wide_b) == pytest.approx(GaussianReference(wide_a).distance(wide_b), rel=1e-7)
    assert gaussian_w2(wide_a, wide_a) == pytest.approx(0, abs=1e-6)


def test_tables_are_matched_by_column_name_and_checked():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(30, 4)) * [1, 2, 3, 4], columns=list("abcd"))
    assert gaussian_w2(df, df[list("dcba")]) == pytest.approx(0, abs=1e-7)
    assert gaussian_w2(df, df.to_numpy()) == pytest.approx(0, abs=1e-7)
    with pytest.raises(ValueError, match=r"missing \['d'\]"):
        gaussian_w2(df, df.rename(columns={"d": "e"}))
    with pytest.raises(ValueError, match="NaN"):
        mmd(df, df.mask(df > 3))
    with pytest.raises(ValueError, match="rows"):
        sliced_wasserstein(df, df.iloc[:0])
    with pytest.raises(TypeError, match="non-numeric"):
        marginal_distances(df, df.assign(a="x"))


def brute_force_w2(a, b):
    return np.sqrt(min(((a - b[list(p)]) ** 2).sum(1).mean() for p in itertools.permutations(range(len(b)))))


def test_exact_wasserstein_equals_best_assignment_and_bounds_sliced():
    rng = np.random.default_rng(1)
    for _ in range(3):
        a, b = rng.normal(size=(6, 3)), rng.normal(size=(6, 3)) + [1.0, 0.0, 0.0]
        exact = wasserstein(a, b)
        assert exact == pytest.approx(brute_force_w2(a, b), rel=1e-9)
        # projections are 1-Lipschitz, so every projected W2 is <= W2
        sliced = sliced_wasserstein(a, b, n_projections=100, random_state=0)
        assert 0 < sliced <= exact + 1e-12
    assert wasserstein(a, a) == pytest.approx(0, abs=1e-6)  # sqrt of round-off
    assert sliced_wasserstein(a, b, random_state=3) == sliced_wasserstein(a, b, random_state=3)


def test_sliced_wasserstein_of_a_shift():
    # a shift by c: every projected W2 is |theta . c|, so SW2^2 = |c|^2 E[theta_1^2] = |c|^2 / d
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 4))
    shift = np.array([2.0, 0.0, 0.0, 0.0])
    assert sliced_wasserstein(a, a + shift, n_projections=4000, random_state=0) == pytest.approx(1.0, rel=0.05)


def test_mmd_zero_for_same_distribution_larger_for_shift_and_symmetric():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 5)), rng.normal(size=(300, 5))
    shifted = rng.normal(size=(300, 5)) + 0.5
    same, far = mmd(a, b), mmd(a, shifted)
    assert abs(same) < 0.005
    assert far > 0.05
    assert mmd(shifted, a) == pytest.approx(far, rel=1e-12)
    assert mmd(a, b, unbiased=False) > same  # the V-statistic is biased upwards
    assert mmd(a, a + 2.0) > far  # grows with the shift


def test_marginal_distances_per_column():
    rng = np.random.default_rng(0)
    a = pd.DataFrame(rng.normal(size=(80, 3)), columns=["x", "y", "z"])
    b = a + [0.0, 1.5, 0.0]
    b["z"] = rng.normal(size=80) * 3
    table = marginal_distances(a, b)
    assert list(table.index) == ["x", "y", "z"]
    # a translation moves every quantile by the shift: W1 = |shift|
    assert table.loc["x", "wasserstein"] == pytest.approx(0, abs=1e-12)
    assert table.loc["y", "wasserstein"] == pytest.approx(1.5, rel=1e-9)
    reference = ks_2samp(a["z"], b["z"])
    assert table.loc["z", "ks_statistic"] == pytest.approx(reference.statistic)
    assert table.loc["z", "ks_pvalue"] == pytest.approx(reference.pvalue)
    assert table.loc["x", "ks_pvalue"] == pytest.approx(1.0)


def test_correlation_similarity():
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(6, 6))
    a, b = rng.normal(size=(2000, 6)) @ mixing, rng.normal(size=(2000, 6)) @ mixing
    similar = correlation_similarity(a, b)
    assert similar["r"] > 0.98 and similar["frobenius"] < 0.3
    assert correlation_similarity(a, a) == pytest.approx({"r": 1.0, "frobenius": 0.0}, abs=1e-12)
    independent = correlation_similarity(a, rng.normal(size=(2000, 6)))
    assert independent["frobenius"] > 1.0
    with pytest.raises(ValueError, match="constant"):
        correlation_similarity(a, np.c_[b[:, :5], np.ones(2000)])
