"""SalientSubtypes: subtypes in the contrastive VAE's salient space."""

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score

from roisynth import (
    ConditionalVAE,
    ContrastiveVAE,
    GaussianMixtureSynthesizer,
    LinearContrastive,
    datasets,
    load,
)
from roisynth.subtyping import SalientSubtypes


@pytest.fixture(scope="module")
def semisynthetic():
    cn = datasets.simulate_cohort(n=1500, diagnosis={"CN": 1.0}, random_state=0)
    return datasets.make_semisynthetic(cn[["age", "sex", "icv", *datasets.roi_names()]], random_state=0)


@pytest.fixture(scope="module")
def cohorts(semisynthetic):
    return semisynthetic.background[semisynthetic.rois], semisynthetic.target[semisynthetic.rois]


@pytest.fixture(scope="module")
def vae(cohorts):
    return ContrastiveVAE(epochs=150, verbose=False, random_state=0).fit(*cohorts)


@pytest.fixture(scope="module")
def fitted(vae, cohorts):
    return SalientSubtypes(model=vae, random_state=0).fit(*cohorts)


def _matching(truth: np.ndarray, labels: np.ndarray) -> dict:
    """true subtype -> found subtype, by the Hungarian algorithm on their crosstab."""
    table = pd.crosstab(truth, labels)
    rows, cols = linear_sum_assignment(-table.to_numpy())
    return {table.index[r]: table.columns[c] for r, c in zip(rows, cols)}


# -- quality -------------------------------------------------------------------------------
def test_recovers_the_semisynthetic_subtypes(fitted, semisynthetic):
    # measured: ARI 1.0 (VAE seeds 0, 1, 2), BIC minimal at K = 3, fold ARI 1.0
    assert fitted.n_subtypes_ == 3
    assert fitted.bic_.idxmin() == 3 and list(fitted.bic_.index) == list(range(1, 7))
    assert adjusted_rand_score(semisynthetic.subtype, fitted.labels_) >= 0.95
    assert fitted.fold_ari_ >= 0.95
    assert set(fitted.salient_columns_) <= {f"s{i}" for i in range(1, 6)} and fitted.salient_columns_


def test_effect_maps_match_the_true_patterns(fitted, semisynthetic, cohorts):
    maps = fitted.effect_maps(n=1000)
    assert maps.shape == (len(semisynthetic.rois), 3) and list(maps.index) == semisynthetic.rois
    bg, tg = cohorts
    change = (tg - semisynthetic.target_healthy[semisynthetic.rois]) / bg.std()
    truth = {k: change[semisynthetic.subtype == k].mean() for k in (1, 2, 3)}
    match = _matching(semisynthetic.subtype, fitted.labels_.to_numpy())
    for k, found in match.items():
        r = {j: np.corrcoef(maps[f"subtype_{found}"], truth[j])[0, 1] for j in truth}
        assert r[k] > 0.9 and r[k] > max(v for j, v in r.items() if j != k) + 0.3  # measured r ≈ 0.97


def test_paired_samples_carry_their_subtype(fitted):
    healthy, diseased = fitted.sample_paired(1000, subtype=2)
    assert healthy.shape == diseased.shape == (1000, fitted.model_.n_features_in_)
    assert list(diseased.columns) == list(fitted.model_.feature_names_in_)
    assert (fitted.predict(diseased) == 2).mean() > 0.9  # measured 0.97
    _, mixed = fitted.sample_paired(3000)
    shares = fitted.predict(mixed).value_counts(normalize=True).sort_index()
    np.testing.assert_allclose(shares, fitted.subtype_frequencies_, atol=0.05)


def test_smilegan_sample_data(smilegan_sample):
    cn, pt, truth = smilegan_sample
    model = SalientSubtypes(model=ContrastiveVAE(epochs=150, verbose=False, random_state=0), random_state=0).fit(cn, pt)
    assert model.n_subtypes_ == 3
    assert adjusted_rand_score(truth, model.labels_) >= 0.9  # measured 0.94 (VAE seeds 1, 2: 0.93, 0.97)
    assert model.fold_ari_ >= 0.95  # measured 0.98


# -- API -----------------------------------------------------------------------------------
def test_predict_api(fitted, cohorts):
    _, tg = cohorts
    proba = fitted.predict_proba(tg)
    assert list(proba.columns) == ["subtype_1", "subtype_2", "subtype_3"] and proba.index.equals(tg.index)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    labels = fitted.predict(tg)
    np.testing.assert_array_equal(labels, proba.to_numpy().argmax(1) + 1)
    pd.testing.assert_series_equal(labels, fitted.labels_)
    np.testing.assert_allclose(proba, fitted.consensus_.proba)
    pd.testing.assert_frame_equal(fitted.transform(tg), proba)
    assert -1 <= fitted.fold_ari_ <= 1


def test_prefitted_model_is_used_as_is(vae, cohorts):
    before = {k: v.clone() for k, v in vae.module_.state_dict().items()}
    model = SalientSubtypes(model=vae, n_subtypes=2, n_folds=3, random_state=1)
    labels = model.fit_predict(None, cohorts[1])
    assert model.model_ is vae
    assert all(torch.equal(before[k], v) for k, v in vae.module_.state_dict().items())
    assert model.n_subtypes_ == 2 and model.bic_ is None and model.predict_proba(cohorts[1]).shape[1] == 2
    assert sorted(labels.unique()) == [1, 2] and model.consensus_.fold_labels.shape == (3, len(cohorts[1]))


def test_unfitted_model_is_cloned_and_fitted(cohorts):
    given = LinearContrastive(random_state=0)
    model = SalientSubtypes(model=given, random_state=0).fit(*cohorts)
    assert model.model_ is not given and not hasattr(given, "salient_loadings_")
    assert model.n_subtypes_ == 3  # measured ARI vs truth 0.99


def test_default_model(toy):
    bg, tg = toy
    model = SalientSubtypes(n_subtypes=2, n_folds=2, random_state=3).fit(bg, tg)
    assert model.model is None and isinstance(model.model_, ContrastiveVAE)
    assert model.model_.random_state == 3 and not model.model_.verbose


def test_kmeans(vae, cohorts, semisynthetic):
    model = SalientSubtypes(model=vae, method="kmeans", random_state=0).fit(*cohorts)
    assert model.n_subtypes_ == 3 and model.silhouette_.idxmax() == 3 and model.bic_ is None
    assert adjusted_rand_score(semisynthetic.subtype, model.labels_) >= 0.95  # measured 1.0
    proba = model.predict_proba(cohorts[1])
    np.testing.assert_array_equal(proba.to_numpy().argmax(1) + 1, model.labels_)
    _, diseased = model.sample_paired(500, subtype=1)
    assert (model.predict(diseased) == 1).mean() > 0.9


@pytest.mark.parametrize("method", ["gmm", "kmeans"])
def test_save_load_round_trip(vae, cohorts, tmp_path, method, fitted):
    model = fitted if method == "gmm" else \
        SalientSubtypes(model=vae, method=method, n_folds=3, random_state=0).fit(*cohorts)
    model.save(tmp_path / "s.roisynth")
    loaded = SalientSubtypes.load(tmp_path / "s.roisynth")
    assert isinstance(load(tmp_path / "s.roisynth"), SalientSubtypes)
    assert loaded.model is loaded.model_ and loaded.get_params(deep=False).keys() == model.get_params(deep=False).keys()
    pd.testing.assert_frame_equal(loaded.predict_proba(cohorts[1]), model.predict_proba(cohorts[1]))
    # the file keeps no training identifiers: the loaded labels are numbered by position
    pd.testing.assert_series_equal(loaded.labels_, model.labels_.reset_index(drop=True))
    for a, b in zip(loaded.sample_paired(40), model.sample_paired(40)):
        pd.testing.assert_frame_equal(a, b)
    for name in ("bic_", "silhouette_"):
        assert (getattr(loaded, name) is None) == (getattr(model, name) is None)
    if model.bic_ is not None:
        pd.testing.assert_series_equal(loaded.bic_, model.bic_)
    assert loaded.fold_ari_ == model.fold_ari_ and loaded.salient_columns_ == model.salient_columns_


@pytest.mark.parametrize("params, message", [
    ({"method": "hdbscan"}, "method"),
    ({"n_subtypes": 0}, "n_subtypes"),
    ({"n_subtypes": "many"}, "n_subtypes"),
    ({"max_subtypes": 1, "method": "kmeans"}, "max_subtypes"),
    ({"n_folds": 0}, "n_folds"),
    ({"fraction": 0.0}, "fraction"),
])
def test_bad_params(toy, params, message):
    with pytest.raises(ValueError, match=message):
        SalientSubtypes(**params).fit(*toy)


def test_bad_models_and_data(toy, vae, cohorts):
    bg, tg = toy
    with pytest.raises(TypeError, match="contrastive"):
        SalientSubtypes(model=GaussianMixtureSynthesizer(), max_subtypes=2).fit(bg, tg)
    conditional = ConditionalVAE(epochs=2, verbose=False, random_state=0).fit(bg, tg)
    with pytest.raises(ValueError, match="no salient columns"):
        SalientSubtypes(model=conditional, n_subtypes=2).fit(bg, tg)
    with pytest.raises(ValueError, match="pass them as target"):
        SalientSubtypes(model=vae).fit(cohorts[0])
    with pytest.raises(ValueError, match="too few"):
        SalientSubtypes(model=vae, max_subtypes=6).fit(None, cohorts[1].iloc[:60])
    fitted = SalientSubtypes(model=vae, n_subtypes=2, n_folds=2, random_state=0).fit(None, cohorts[1])
    for subtype in (0, 3, 1.5):
        with pytest.raises(ValueError, match="subtype"):
            fitted.sample_paired(5, subtype=subtype)
    with pytest.raises(ValueError, match="columns"):
        fitted.predict(cohorts[1].iloc[:, :10])
