import numpy as np
import pandas as pd
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.stats import multivariate_normal

from roisynth import load
from roisynth.synthesizers import GaussianMixtureSynthesizer

COLUMNS = [f"roi{i}" for i in range(6)]
OFFSET = np.array([1000.0, 2000, 1500, 800, 3000, 1200])  # raw units: ROI volumes with ROI-specific scales
SCALE = np.array([50.0, 120, 80, 30, 200, 60])
MEANS = np.array([[0.0] * 6, [6.0] * 6, [0, 6, 0, -6, 0, 6]])  # in units of the within-component SD
WEIGHTS = np.array([0.5, 0.3, 0.2])


def planted(n: int, seed: int) -> pd.DataFrame:
    """n rows of the planted 3-component mixture (identity covariance) in raw units."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(3, n, p=WEIGHTS)
    return pd.DataFrame(OFFSET + SCALE * (MEANS[labels] + rng.standard_normal((n, 6))), columns=COLUMNS)


@pytest.fixture(scope="module")
def fitted():
    background = planted(4500, 0)
    target = planted(600, 1) - 0.5 * SCALE  # a shifted patient cohort
    model = GaussianMixtureSynthesizer(max_components=5, random_state=0).fit(background, target)
    return model, background, target


def test_bic_recovers_planted_components(fitted):
    model, background, _ = fitted
    assert model.n_components_["background"] == 3
    assert model.bic_["background"].idxmin() == 3
    assert list(model.bic_.index) == [1, 2, 3, 4, 5] and list(model.bic_.columns) == ["background", "target"]
    means = (model.mean_ + model.scale_ * model.means_["background"] - OFFSET) / SCALE  # back to SD units
    truth, found = linear_sum_assignment(((MEANS[:, None] - means[None]) ** 2).sum(-1))
    assert np.abs(means[found] - MEANS[truth]).max() < 0.1
    np.testing.assert_allclose(model.weights_["background"][found], WEIGHTS[truth], atol=0.03)


def test_sample_moments_match_data(fitted):
    model, background, target = fitted
    for cohort, real in (("background", background), ("target", target)):
        synth = model.sample(20_000, cohort=cohort)
        assert list(synth.columns) == COLUMNS and synth.shape == (20_000, 6)
        z_real, z_synth = ((t.to_numpy() - model.mean_) / model.scale_ for t in (real, synth))
        assert np.abs(z_synth.mean(0) - z_real.mean(0)).max() < 0.03
        assert np.abs(np.cov(z_synth.T) - np.cov(z_real.T)).max() < 0.05


def test_reproducible_sampling_and_fit(fitted):
    model, background, target = fitted
    pd.testing.assert_frame_equal(model.sample(50), model.sample(50))  # model seed, as GaussianMixture.sample
    pd.testing.assert_frame_equal(model.sample(50, random_state=7), model.sample(50, random_state=7))
    assert not np.allclose(model.sample(50, random_state=7), model.sample(50, random_state=8))
    again = GaussianMixtureSynthesizer(max_components=5, random_state=0).fit(background, target)
    np.testing.assert_array_equal(again.means_["target"], model.means_["target"])
    pd.testing.assert_frame_equal(again.sample(50), model.sample(50))


def mixture_covariance(model, cohort):
    """Covariance of the fitted mixture (standardized units): Σ_k π_k (Σ_k + m_k m_kᵀ) − m̄ m̄ᵀ."""
    w, m = model.weights_[cohort], model.means_[cohort]
    covariances = model._factors(cohort) @ model._factors(cohort).transpose(0, 2, 1)
    mean = w @ m
    return np.einsum("k,kij->ij", w, covariances + m[:, :, None] * m[:, None, :]) - np.outer(mean, mean)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "tied", "spherical"])
def test_every_covariance_type_samples_its_covariance(covariance_type):
    rng = np.random.default_rng(3)
    cov = 0.6 ** np.abs(np.subtract.outer(np.arange(4), np.arange(4)))  # correlated ROIs
    labels = rng.random(3000) < 0.4
    X = 100 + 10 * (rng.multivariate_normal(np.zeros(4), cov, 3000) + 3 * labels[:, None])
    model = GaussianMixtureSynthesizer(n_components=2, covariance_type=covariance_type, random_state=0).fit(X)
    expected_shapes = {"full": (2, 4, 4), "diag": (2, 4), "tied": (4, 4), "spherical": (2,)}
    assert model.covariances_["background"].shape == expected_shapes[covariance_type]
    synth = model.sample(40_000, cohort="background", random_state=1)
    assert synth.shape == (40_000, 4) and list(synth.columns) == ["x0", "x1", "x2", "x3"]
    z = (synth.to_numpy() - model.mean_) / model.scale_
    np.testing.assert_allclose(np.cov(z.T), mixture_covariance(model, "background"), atol=0.03)
    if covariance_type in ("full", "tied"):  # these can represent the data's covariance
        np.testing.assert_allclose(np.cov(z.T), np.corrcoef(X.T), atol=0.03)


def test_score_samples_matches_scipy_for_one_component():
    rng = np.random.default_rng(4)
    cov = np.array([[4.0, 1.5, 0.5], [1.5, 9.0, -2.0], [0.5, -2.0, 2.0]]) * 100
    X = pd.DataFrame(rng.multivariate_normal([500, 900, 300], cov, 400), columns=["a", "b", "c"], index=range(10, 410))
    reg = 1e-3
    model = GaussianMixtureSynthesizer(n_components=1, reg_covar=reg, random_state=0).fit(X)
    # one component: maximum likelihood mean and (biased) covariance, reg_covar added in standardized units
    scale = X.std(ddof=1).to_numpy()
    mle = multivariate_normal(X.mean().to_numpy(), np.cov(X.T, bias=True) + reg * np.diag(scale**2))
    scores = model.score_samples(X.iloc[:50], cohort="background")
    assert isinstance(scores, pd.Series) and list(scores.index) == list(X.index[:50])
    np.testing.assert_allclose(scores.to_numpy(), mle.logpdf(X.iloc[:50].to_numpy()), rtol=1e-7)


def test_save_load_round_trip(fitted, tmp_path):
    model, background, _ = fitted
    path = tmp_path / "gmm.roisynth"
    model.save(path)
    for loaded in (GaussianMixtureSynthesizer.load(path), load(path)):
        assert isinstance(loaded, GaussianMixtureSynthesizer) and loaded.get_params() == model.get_params()
        for cohort in ("background", "target"):
            pd.testing.assert_frame_equal(loaded.sample(100, cohort=cohort), model.sample(100, cohort=cohort))
            rows = background.iloc[:20]
            pd.testing.assert_series_equal(loaded.score_samples(rows, cohort), model.score_samples(rows, cohort))
        pd.testing.assert_frame_equal(loaded.bic_, model.bic_)
        assert loaded.n_components_ == model.n_components_ and loaded.cohorts_ == model.cohorts_


def test_fit_without_target(tmp_path):
    model = GaussianMixtureSynthesizer(n_components=2, random_state=0).fit(planted(300, 5))
    assert model.cohorts_ == ("background",) and list(model.bic_.columns) == ["background"]
    assert model.sample(5, cohort="background").shape == (5, 6)
    with pytest.raises(ValueError, match="without a target cohort"):
        model.sample(5)
    model.save(tmp_path / "m.roisynth")
    loaded = GaussianMixtureSynthesizer.load(tmp_path / "m.roisynth")
    pd.testing.assert_frame_equal(loaded.sample(5, "background"), model.sample(5, "background"))


@pytest.mark.parametrize(
    "params, message",
    [
        ({"n_components": 0}, "n_components"),
        ({"n_components": "aic"}, "n_components"),
        ({"max_components": 0}, "max_components"),
        ({"covariance_type": "banana"}, "covariance_type"),
        ({"reg_covar": -1.0}, "reg_covar"),
        ({"n_init": 0}, "n_init"),
    ],
)
def test_bad_params(params, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixtureSynthesizer(**params).fit(planted(50, 0))


def test_bad_inputs():
    with pytest.raises(ValueError, match="exceeds the 12 rows of the background"):
        GaussianMixtureSynthesizer(n_components=20).fit(planted(12, 0))
    model = GaussianMixtureSynthesizer(n_components=1).fit(planted(50, 0))
    with pytest.raises(ValueError, match="n must be a positive integer"):
        model.sample(0, cohort="background")
    with pytest.raises(ValueError, match="missing"):
        model.score_samples(planted(5, 0).drop(columns="roi0"), cohort="background")
