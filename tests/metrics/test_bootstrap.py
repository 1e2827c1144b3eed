"""Bootstrap confidence intervals and noise floors."""

import numpy as np
import pandas as pd
import pytest
from joblib import parallel_config

from roisynth.metrics import bootstrap, gaussian_w2, mmd, noise_floor


def mean_difference(a, b):
    return a.mean() - b.mean()


def test_bootstrap_interval_covers_the_truth_at_the_nominal_rate():
    rng = np.random.default_rng(0)
    covered = []
    for repeat in range(200):
        a, b = rng.normal(0, 1, 40), rng.normal(1, 2, 50)  # true difference of means: -1
        result = bootstrap(mean_difference, a, b, n=400, random_state=repeat)
        assert result.low <= result.estimate <= result.high
        covered.append(result.low <= -1 <= result.high)
    assert 0.90 <= np.mean(covered) <= 0.99


def test_bootstrap_reproducible_and_independent_of_n_jobs():
    rng = np.random.default_rng(1)
    a = pd.DataFrame(rng.normal(size=(60, 3)), columns=list("abc"))
    b = pd.DataFrame(rng.normal(size=(50, 3)) + 0.3, columns=list("abc"))
    serial = bootstrap(mmd, a, b, n=120, random_state=7)
    # threads: the chunking and seeding are what is tested, and process workers would spend
    # seconds importing roisynth
    with parallel_config(backend="threading"):
        parallel = bootstrap(mmd, a, b, n=120, random_state=7, n_jobs=2)
    np.testing.assert_array_equal(serial.replicates, parallel.replicates)
    assert (serial.low, serial.high, serial.estimate) == (parallel.low, parallel.high, parallel.estimate)
    assert serial.estimate == mmd(a, b) and len(serial.replicates) == 120
    assert not np.array_equal(bootstrap(mmd, a, b, n=120, random_state=8).replicates, serial.replicates)


def test_gaussian_w2_fast_path_gives_the_generic_replicates():
    rng = np.random.default_rng(2)
    mixing = rng.normal(size=(12, 12)) / 3
    a, b = rng.normal(size=(40, 12)) @ mixing, rng.normal(size=(30, 12)) @ mixing + 0.2
    fast = bootstrap(gaussian_w2, a, b, n=60, random_state=0)
    generic = bootstrap(lambda x, y: gaussian_w2(x, y), a, b, n=60, random_state=0)
    np.testing.assert_allclose(fast.replicates, generic.replicates, rtol=1e-9)
    assert fast.estimate == gaussian_w2(a, b)
    # more columns than rows: singular covariances take the eigen-decomposition branch
    wide_a, wide_b = rng.normal(size=(8, 12)), rng.normal(size=(9, 12))
    fast = bootstrap(gaussian_w2, wide_a, wide_b, n=5, random_state=0)
    generic = bootstrap(lambda x, y: gaussian_w2(x, y), wide_a, wide_b, n=5, random_state=0)
    np.testing.assert_allclose(fast.replicates, generic.replicates, rtol=1e-6)


def test_bootstrap_rejects_bad_input():
    a = np.zeros((10, 2))
    with pytest.raises(TypeError, match="single number"):
        bootstrap(lambda x, y: x.mean(0), a, a, n=2)
    with pytest.raises(ValueError, match="ci"):
        bootstrap(mean_difference, a, a, ci=95)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        bootstrap(mean_difference, a, a, n=0)
    with pytest.raises(ValueError, match="NaN"):
        bootstrap(lambda x, y: np.nan, a, a, n=3)


def test_noise_floor_matches_two_fresh_real_samples():
    rng = np.random.default_rng(3)
    mixing = rng.normal(size=(5, 5))

    def draw(n):
        return rng.normal(size=(n, 5)) @ mixing

    train = draw(3000)
    floors = [noise_floor(gaussian_w2, train, draw(200), n=200, random_state=s) for s in range(40)]
    fresh = [gaussian_w2(draw(200), draw(200)) for _ in range(40)]
    assert np.mean(floors) == pytest.approx(np.mean(fresh), rel=0.1)
    test = draw(200)
    # n=None uses all of real_train; n = its size is a reordering, which the metric ignores
    assert noise_floor(gaussian_w2, train, test) == gaussian_w2(train, test)
    assert noise_floor(gaussian_w2, train, test, n=3000) == pytest.approx(gaussian_w2(train, test), rel=1e-9)
    with pytest.raises(ValueError, match="exceeds"):
        noise_floor(gaussian_w2, train, test, n=3001)


def test_basic_interval_corrects_the_upward_bias_of_distances():
    """W2 between samples of N(0, I) and N(c, I) in 3-D (truth |c| = 1) is biased upwards, so
    percentile intervals sit above the estimate; basic intervals contain it and cover the truth."""
    from roisynth.metrics import bootstrap, gaussian_w2

    rng = np.random.default_rng(0)
    shift = np.array([1.0, 0.0, 0.0])
    covered = {"basic": 0, "percentile": 0}
    for repeat in range(60):
        a, b = rng.normal(size=(80, 3)), rng.normal(size=(80, 3)) + shift
        for method in covered:
            result = bootstrap(gaussian_w2, a, b, n=300, random_state=repeat, method=method)
            covered[method] += result.low <= 1.0 <= result.high
            if method == "basic":
                assert result.low <= result.estimate <= result.high
    assert covered["basic"] / 60 >= 0.85
    assert covered["basic"] > covered["percentile"]


def test_centered_interval_holds_the_estimate_and_measures_its_sampling_spread():
    """In 40-D the W2 between two samples of 100 rows is dominated by sample-size bias; the
    centered interval contains the estimate and its width matches the spread of W2 over fresh
    samples of the same sizes."""
    from roisynth.metrics import bootstrap, gaussian_w2

    rng = np.random.default_rng(1)
    fresh = [gaussian_w2(rng.normal(size=(100, 40)), rng.normal(size=(100, 40)) + 0.3) for _ in range(200)]
    a, b = rng.normal(size=(100, 40)), rng.normal(size=(100, 40)) + 0.3
    result = bootstrap(gaussian_w2, a, b, n=400, random_state=0, method="centered")
    assert result.low < result.estimate < result.high
    assert bootstrap(gaussian_w2, a, b, n=400, random_state=0).low > result.estimate  # percentile misses it
    width, expected = result.high - result.low, np.quantile(fresh, 0.975) - np.quantile(fresh, 0.025)
    assert 0.5 * expected < width < 2 * expected
