import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import adjusted_rand_score

from roisynth import GaussianMixtureSynthesizer, KDESynthesizer, datasets
from roisynth.subtyping import SmileGAN


@pytest.fixture(scope="module")
def semi():
    cohort = datasets.simulate_cohort(n=1500, diagnosis={"CN": 1.0}, random_state=0)
    return datasets.make_semisynthetic(cohort, random_state=0)


@pytest.fixture(scope="module")
def fitted(semi):
    cn, pt = semi.background[semi.rois], semi.target[semi.rois]
    return SmileGAN(max_retries=1, verbose=False, random_state=0).fit(cn, pt)


def twenty_rois(semi) -> list[str]:
    """Hippocampus (shared by subtypes 1 and 2) and six ROIs unique to each subtype's pattern."""
    unique = {k: [r for r in rois if all(r not in semi.patterns[j] for j in semi.patterns if j != k)]
              for k, rois in semi.patterns.items()}
    return ["Hippocampus_R", "Hippocampus_L"] + [r for k in sorted(unique) for r in unique[k][:6]]


def test_recovers_semisynthetic_subtypes(fitted, semi):
    assert adjusted_rand_score(semi.subtype, fitted.labels_) >= 0.95  # 1.000 measured; the issue asks 0.8
    assert fitted.labels_.index.equals(semi.target.index) and set(fitted.labels_) == {1, 2, 3}
    # predict on the training patients reproduces the consensus labels
    assert (fitted.predict(semi.target[semi.rois]) == fitted.labels_).mean() > 0.99
    proba = fitted.predict_proba(semi.target[semi.rois])
    assert list(proba.columns) == ["subtype_1", "subtype_2", "subtype_3"]
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-6)


def test_twenty_rois_with_fold_consensus(semi):
    rois = twenty_rois(semi)
    assert len(rois) == 20
    model = SmileGAN(n_folds=3, max_iter=2000, verbose=False, random_state=0)
    model.fit(semi.background[rois], semi.target[rois])
    assert adjusted_rand_score(semi.subtype, model.labels_) >= 0.9  # 0.980 measured; the issue asks 0.8
    assert model.consensus_.fold_labels.shape == (3, len(semi.target))
    assert model.fold_ari_ == pytest.approx(model.consensus_.mean_ari) and model.fold_ari_ >= 0.7
    assert len(model.converged_) == len(model.retries_) == 3


def test_unlearnable_patients_warn_and_return():
    """Patients that are CN noise with max_iter far too small: bounded retries, then a warning."""
    rng = np.random.default_rng(0)
    cn, pt = rng.normal(100, 10, (80, 5)), rng.normal(100, 10, (80, 5))
    model = SmileGAN(max_iter=20, eval_every=10, max_retries=2, n_folds=2, verbose=False, random_state=0)
    with pytest.warns(ConvergenceWarning, match="fold 0: assignments still changing"):
        model.fit(cn, pt)
    assert model.retries_[0] == 2 and model.converged_ == [False, False]


def test_paired_samples_change_the_subtype_pattern(fitted, semi):
    for k in (1, 2, 3):
        # consensus subtype whose training patients are mostly true subtype k
        label = np.bincount(fitted.labels_[semi.subtype == k]).argmax()
        healthy, patient = fitted.sample_paired(2000, subtype=label)
        assert (healthy.index == label).all() and list(patient.columns) == semi.rois
        change = ((patient - healthy).mean() / semi.background[semi.rois].std()).abs()
        inside = change[semi.patterns[k]].mean()
        assert inside > 3 * change.drop(semi.patterns[k]).mean(), k
        # healthy halves are synthetic CN: none is a training row, and they match the CN per ROI
        cn = semi.background[semi.rois]
        assert not healthy.merge(cn, how="left", indicator=True)["_merge"].eq("both").any()
        assert ((healthy.mean() - cn.mean()) / cn.std()).abs().max() < 0.15
        np.testing.assert_allclose(healthy.std() / cn.std(), 1, atol=0.15)
    healthy, patient = fitted.sample_paired(3000)
    shares = np.bincount(patient.index, minlength=4)[1:] / 3000
    np.testing.assert_allclose(shares, np.bincount(fitted.labels_)[1:] / len(fitted.labels_), atol=0.04)


def test_counterfactual_and_reproducibility(fitted, semi):
    cn = semi.background[semi.rois].iloc[:5]
    twin = fitted.counterfactual(cn, to="target", subtype=2)
    assert twin.index.equals(cn.index) and list(twin.columns) == semi.rois
    pd.testing.assert_frame_equal(fitted.counterfactual(cn, subtype=2), twin)
    assert (fitted.predict(twin) == 2).all()
    a = fitted.sample_paired(50, subtype=1)
    b = fitted.sample_paired(50, subtype=1)
    pd.testing.assert_frame_equal(a[1], b[1])
    assert not fitted.sample_paired(50, subtype=1, random_state=1)[0].equals(a[0])


def test_save_load_round_trip(fitted, semi, tmp_path):
    path = tmp_path / "smilegan.roisynth"
    fitted.save(path)
    loaded = SmileGAN.load(path)
    pt = semi.target[semi.rois]
    pd.testing.assert_frame_equal(loaded.predict_proba(pt), fitted.predict_proba(pt))
    # the file keeps no training identifiers: the loaded labels are numbered by position
    pd.testing.assert_series_equal(loaded.labels_, fitted.labels_.reset_index(drop=True))
    for a, b in zip(loaded.sample_paired(20), fitted.sample_paired(20)):
        pd.testing.assert_frame_equal(a, b)
    assert loaded.get_params() == fitted.get_params() and loaded.converged_ == fitted.converged_
    assert isinstance(loaded.background_model_, GaussianMixtureSynthesizer)


def test_background_model_is_the_given_synthesizer_and_is_saved(semi, tmp_path):
    cn, pt = semi.background[semi.rois].iloc[:300], semi.target[semi.rois].iloc[:300]
    given = GaussianMixtureSynthesizer(n_components=2, covariance_type="diag", random_state=3)
    model = SmileGAN(n_subtypes=2, max_iter=20, max_retries=0, background_model=given, verbose=False,
                     random_state=0)
    with pytest.warns(ConvergenceWarning):
        model.fit(cn, pt)
    assert model.background_model is given and not hasattr(given, "weights_")  # cloned, not fitted in place
    assert model.background_model_.get_params() == given.get_params() and model.background_model_.n_components_ == {
        "background": 2}
    model.save(tmp_path / "m.roisynth")
    loaded = SmileGAN.load(tmp_path / "m.roisynth")
    assert loaded.background_model.get_params() == given.get_params()
    for a, b in zip(loaded.sample_paired(30, random_state=1), model.sample_paired(30, random_state=1)):
        pd.testing.assert_frame_equal(a, b)
    with pytest.raises(ValueError, match="background_model=KDESynthesizer stores its training rows"):
        SmileGAN(background_model=KDESynthesizer()).fit(cn, pt)


def test_bad_input(fitted, semi):
    cn, pt = semi.background[semi.rois], semi.target[semi.rois]
    with pytest.raises(ValueError, match=r"pass the patients as target"):
        SmileGAN().fit(cn)
    with pytest.raises(ValueError, match="missing"):
        SmileGAN().fit(cn, pt.drop(columns=semi.rois[0]))
    with pytest.raises(ValueError, match="NaN"):
        SmileGAN().fit(cn, pt.assign(**{semi.rois[0]: np.nan}))
    with pytest.raises(TypeError, match="non-numeric"):
        SmileGAN().fit(cn.assign(site="a"), pt.assign(site="a"))
    with pytest.raises(ValueError, match="n_subtypes"):
        SmileGAN(n_subtypes=1).fit(cn, pt)
    with pytest.raises(ValueError, match="fraction"):
        SmileGAN(fraction=0).fit(cn, pt)
    with pytest.raises(ValueError, match="subtype"):
        fitted.sample_paired(5, subtype=4)
    with pytest.raises(ValueError, match="subtype"):
        fitted.counterfactual(cn.iloc[:3], subtype=[1, 2])
    with pytest.raises(ValueError, match="to='background' is not one of"):
        fitted.counterfactual(cn.iloc[:3], to="background")
    with pytest.raises(ValueError, match="missing"):
        fitted.predict(pt.iloc[:, :10])


@pytest.mark.xdist_group("smilegan_sample")  # a long fit: runs beside this file's other tests
def test_recovers_reference_sample_data(smilegan_sample):
    cn, pt, truth = smilegan_sample
    model = SmileGAN(max_retries=1, verbose=False, random_state=0).fit(cn, pt)
    assert adjusted_rand_score(truth, model.labels_) >= 0.95  # 1.000 measured; the issue asks 0.8
