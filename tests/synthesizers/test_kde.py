import numpy as np
import pandas as pd
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from roisynth import load
from roisynth.exceptions import TrainingDataWarning
from roisynth.synthesizers import KDESynthesizer, log_kde

COLUMNS = list("abcde")
MU = np.array([100.0, 200, 300, 400, 500])
SD = np.array([10.0, 20, 15, 5, 30])
CORR = 0.5 ** np.abs(np.subtract.outer(np.arange(5), np.arange(5)))


def gaussian(n: int, seed: int) -> pd.DataFrame:
    """n rows of a correlated 5-D Gaussian in raw units."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(MU + SD * rng.multivariate_normal(np.zeros(5), CORR, n), columns=COLUMNS)


def by_sex(n: int, share_female: float, seed: int) -> pd.DataFrame:
    """ROIs whose mean differs by sex (males +3 SD on every ROI), with sex and site columns."""
    rng = np.random.default_rng(seed)
    female = rng.random(n) < share_female
    rois = gaussian(n, seed + 1) + 3 * SD * ~female[:, None]
    return rois.assign(sex=np.where(female, "F", "M"), site=rng.choice([1, 2], n))


@pytest.fixture(scope="module")
def large():
    data = gaussian(2500, 0)
    return KDESynthesizer(random_state=0).fit(data), data


@pytest.fixture(scope="module")
def stratified():
    background, target = (
        by_sex(n, share, seed).drop(columns="site") for n, share, seed in ((1200, 0.3, 10), (600, 0.6, 20))
    )
    return KDESynthesizer(strata="sex", random_state=0).fit(background, target), background, target


def test_log_kde_is_exact():
    rng = np.random.default_rng(1)
    points, queries, bandwidths = rng.standard_normal((40, 3)), 3 * rng.standard_normal((7, 3)), [0.02, 0.3, 2.0]
    expected = [
        [logsumexp([multivariate_normal(p, h * h * np.eye(3)).logpdf(q) for p in points]) - np.log(40) for q in queries]
        for h in bandwidths
    ]
    np.testing.assert_allclose(log_kde(points, queries, bandwidths), expected, rtol=1e-9)


def test_cv_bandwidth_shrinks_with_n(large):
    model, _ = large
    small = KDESynthesizer(random_state=0).fit(gaussian(100, 1))
    assert model.bandwidth_["background"] < 0.85 * small.bandwidth_["background"]
    curve = model.cv_results_
    assert len(curve) == 16 and curve["selected"].sum() == 1
    best = curve.loc[curve["selected"]].iloc[0]
    assert best["bandwidth"] == model.bandwidth_["background"]
    assert best["mean_log_likelihood"] == curve["mean_log_likelihood"].max()


def test_large_sample_matches_truth(large):
    model, data = large
    h = model.bandwidth_["background"]
    synth = model.sample(20_000, cohort="background")
    assert list(synth.columns) == COLUMNS
    z = (synth.to_numpy() - MU) / SD
    assert np.abs(z.mean(0)).max() < 0.06
    # a Gaussian KDE's covariance is the data's plus h² I (h in background-SD units)
    scale = model.scale_ / SD
    np.testing.assert_allclose(np.cov(z.T), CORR + h**2 * np.diag(scale**2), atol=0.08)
    z_data = model._standardize(data.to_numpy())
    np.testing.assert_allclose(
        np.cov(model._standardize(synth.to_numpy()).T), np.cov(z_data.T) + h**2 * np.eye(5), atol=0.04
    )


def test_reproducible(large):
    model, data = large
    pd.testing.assert_frame_equal(model.sample(30, "background"), model.sample(30, "background"))
    pd.testing.assert_frame_equal(
        model.sample(30, "background", random_state=3), model.sample(30, "background", random_state=3)
    )
    assert not np.allclose(
        model.sample(30, "background", random_state=3), model.sample(30, "background", random_state=4)
    )
    again = KDESynthesizer(random_state=0).fit(data)
    pd.testing.assert_frame_equal(again.cv_results_, model.cv_results_)
    pd.testing.assert_frame_equal(again.sample(30, "background"), model.sample(30, "background"))


def test_fixed_bandwidth_and_no_target():
    model = KDESynthesizer(bandwidth=0.25, random_state=0).fit(gaussian(300, 2))
    assert model.cohorts_ == ("background",) and model.cv_results_ is None
    assert model.bandwidth_.to_dict() == {"background": 0.25}
    with pytest.raises(ValueError, match="without a target cohort"):
        model.sample(5)


def test_user_bandwidth_grid():
    model = KDESynthesizer(bandwidths=[0.05, 0.2, 0.5, 3.0], cv=4, random_state=0).fit(gaussian(400, 6))
    assert model.cv_results_["bandwidth"].tolist() == [0.05, 0.2, 0.5, 3.0]
    assert model.bandwidth_["background"] in (0.2, 0.5)  # 0.05 overfits, 3.0 oversmooths


def test_strata_proportions_and_distributions(stratified):
    model, background, target = stratified
    assert model.stratum_sizes_.to_dict() == {
        (cohort, sex): int((table["sex"] == sex).sum())
        for cohort, table in (("background", background), ("target", target))
        for sex in "FM"
    }
    assert set(model.bandwidth_.index) == set(model.stratum_sizes_.index)
    for cohort, real in (("background", background), ("target", target)):
        synth = model.sample(6000, cohort=cohort)
        assert list(synth.columns) == ["sex", *COLUMNS]
        assert abs((synth["sex"] == "F").mean() - (real["sex"] == "F").mean()) < 0.025
        for sex in "FM":  # each stratum follows its own distribution (males are +3 SD)
            synth_mean = synth.loc[synth["sex"] == sex, COLUMNS].mean()
            real_mean = real.loc[real["sex"] == sex, COLUMNS].mean()
            assert (np.abs(synth_mean - real_mean) / SD).max() < 0.1


def test_stratum_selection(stratified):
    model, _, target = stratified
    males = model.sample(3000, cohort="target", stratum={"sex": "M"})
    assert (males["sex"] == "M").all()
    assert (np.abs(males[COLUMNS].mean() - target.loc[target["sex"] == "M", COLUMNS].mean()) / SD).max() < 0.1
    with pytest.raises(ValueError, match=r"sex='X' is not a target stratum; known values: \['F', 'M'\]"):
        model.sample(5, stratum={"sex": "X"})
    with pytest.raises(ValueError, match="unknown column"):
        model.sample(5, stratum={"site": 1})
    with pytest.raises(TypeError, match="dict"):
        model.sample(5, stratum="F")
    with pytest.raises(ValueError, match="needs a model fitted with strata"):
        KDESynthesizer(bandwidth=0.3).fit(gaussian(50, 0)).sample(5, "background", stratum={"sex": "F"})


def test_strata_input_errors():
    background = by_sex(200, 0.5, 30)
    tiny = pd.concat([background, by_sex(5, 1.0, 31).assign(sex="X")], ignore_index=True)
    with pytest.raises(ValueError, match="background stratum sex='X' has 5 rows, fewer than min_stratum_size=10"):
        KDESynthesizer(strata="sex").fit(tiny)
    with pytest.raises(ValueError, match=r"target lacks the strata column\(s\) \['site'\]"):
        KDESynthesizer(strata=["sex", "site"]).fit(background, background.drop(columns="site"))
    with pytest.raises(ValueError, match="strata column 'sex' has missing values"):
        KDESynthesizer(strata="sex").fit(background.assign(sex=background["sex"].where(background.index != 3)))
    with pytest.raises(TypeError, match="must be a DataFrame holding the strata"):
        KDESynthesizer(strata="sex").fit(background[COLUMNS].to_numpy())
    with pytest.raises(TypeError, match="non-numeric"):  # strata columns not declared
        KDESynthesizer().fit(background)


def test_pca_keeps_correlation_structure():
    rng = np.random.default_rng(5)
    loadings = rng.normal(size=(2, 8))
    X = 1000 + 50 * (rng.standard_normal((2000, 2)) @ loadings + 0.05 * rng.standard_normal((2000, 8)))
    model = KDESynthesizer(n_components=0.99, random_state=0).fit(X)
    assert model.pca_components_.shape == (2, 8) and model.pca_explained_variance_ratio_.sum() >= 0.99
    synth = model.sample(20_000, cohort="background").to_numpy()
    # isotropic h² on 2 scores distorts a little
    np.testing.assert_allclose(np.corrcoef(synth.T), np.corrcoef(X.T), atol=0.06)
    z = model._standardize(synth)  # samples lie in the kept principal subspace
    np.testing.assert_allclose(z - z @ model.pca_components_.T @ model.pca_components_, 0, atol=1e-9)


def test_save_load_with_strata_and_pca(tmp_path):
    background, target = by_sex(400, 0.4, 40), by_sex(200, 0.5, 50)
    model = KDESynthesizer(strata=["sex", "site"], n_components=3, random_state=0).fit(background, target)
    path = tmp_path / "kde.roisynth"
    with pytest.warns(TrainingDataWarning, match="holds the 600 training rows"):
        model.save(path)
    for loaded in (KDESynthesizer.load(path), load(path)):
        assert isinstance(loaded, KDESynthesizer) and loaded.get_params() == model.get_params()
        for cohort in ("background", "target"):
            synth = loaded.sample(200, cohort=cohort)
            pd.testing.assert_frame_equal(synth, model.sample(200, cohort=cohort))
            assert synth["site"].dtype == np.int64 and isinstance(synth["sex"].iloc[0], str)
        stratum = {"sex": "F", "site": 2}
        pd.testing.assert_frame_equal(loaded.sample(50, stratum=stratum), model.sample(50, stratum=stratum))
        pd.testing.assert_series_equal(loaded.bandwidth_, model.bandwidth_)
        pd.testing.assert_frame_equal(loaded.cv_results_, model.cv_results_)
        np.testing.assert_array_equal(loaded.pca_components_, model.pca_components_)


@pytest.mark.parametrize(
    "params, error, message",
    [
        ({"bandwidth": 0}, ValueError, "bandwidth"),
        ({"bandwidth": "silverman"}, ValueError, "bandwidth"),
        ({"bandwidths": [0.1, -1]}, ValueError, "bandwidths"),
        ({"bandwidths": "wide"}, ValueError, "bandwidths"),
        ({"cv": 1}, ValueError, "cv=1 is not valid"),
        ({"n_components": 1.5}, ValueError, "n_components"),
        ({"n_components": 9}, ValueError, r"n_components=9 exceeds"),
        ({"min_stratum_size": 0}, ValueError, "min_stratum_size"),
        ({"strata": 5}, TypeError, "strata"),
    ],
)
def test_bad_params(params, error, message):
    with pytest.raises(error, match=message):
        KDESynthesizer(**params).fit(gaussian(30, 0))
