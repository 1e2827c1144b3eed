"""CausalROIModel: exact abduction–prediction, recovered causal effects, sampling, files, errors."""

import numpy as np
import pandas as pd
import pytest

from roisynth.synthesizers import CausalROIModel

ROIS = ["Hippocampus_L", "Hippocampus_R", "Putamen_L", "Thalamus_L"]
AD_EFFECT = np.array([0.85, 0.85, 1.0, 1.0])  # AD: -15 % hippocampi, other ROIs unchanged
AGE_SLOPE = -0.005  # log-volume change per year (about -0.5 %/year) in every ROI


def simulate(n: int, seed: int) -> pd.DataFrame:
    """Known SCM: age, sex roots; P(AD) rises with age; log ROI = a + 0.8 log ICV + age + AD effects + noise."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(55, 90, n)
    male = rng.random(n) < 0.5
    ad = rng.random(n) < 1 / (1 + np.exp(-(age - 72) / 6))
    log_icv = np.log(1.4e6) + 0.1 * male + 0.08 * rng.standard_normal(n)
    corr = 0.5 + 0.5 * np.eye(len(ROIS))
    noise = 0.06 * rng.standard_normal((n, len(ROIS))) @ np.linalg.cholesky(corr).T
    log_rois = (
        np.log([3500, 3600, 5000, 7000])
        + 0.8 * (log_icv[:, None] - np.log(1.4e6))
        + AGE_SLOPE * (age[:, None] - 70)
        + ad[:, None] * np.log(AD_EFFECT)
        + noise
    )
    covariates = pd.DataFrame(
        {
            "id": [f"sub-{i}" for i in range(n)],
            "age": age,
            "sex": np.where(male, "M", "F"),
            "icv": np.exp(log_icv),
            "diagnosis": np.where(ad, "AD", "CN"),
        }
    )
    return pd.concat([covariates, pd.DataFrame(np.exp(log_rois), columns=ROIS)], axis=1)


@pytest.fixture(scope="module")
def data():
    return simulate(2000, 0)


def cohorts(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return table[table.diagnosis == "CN"], table[table.diagnosis != "CN"]


@pytest.fixture(scope="module")
def model(data):
    return CausalROIModel(transforms=1, n_hidden=32, epochs=150, verbose=False, random_state=0).fit(*cohorts(data))


def test_observed_intervention_returns_observations(model, data):
    cf = model.counterfactual(data, do={"diagnosis": data.diagnosis, "age": data.age})
    np.testing.assert_allclose(cf[ROIS].to_numpy(), data[ROIS].to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(cf.icv.to_numpy(), data.icv.to_numpy(), rtol=1e-10)
    pd.testing.assert_frame_equal(cf[["id", "sex", "diagnosis"]], data[["id", "sex", "diagnosis"]])


def test_abduction_prediction_round_trip(model, data):
    """u = T(x | pa) is standard normal under the model, and T⁻¹(u | pa) gives x back exactly."""
    u_icv, u_rois = model.abduct(data)
    assert abs(u_rois.to_numpy().mean()) < 0.1 and abs(u_rois.to_numpy().std() - 1) < 0.1
    assert abs(u_icv.to_numpy().std() - 1) < 0.1
    there = model.counterfactual(data, do={"diagnosis": "AD"})
    back = model.counterfactual(there, do={"diagnosis": data.diagnosis})
    np.testing.assert_allclose(back[ROIS].to_numpy(), data[ROIS].to_numpy(), rtol=1e-10)


def test_counterfactual_effect_of_diagnosis(model, data):
    cn = data[data.diagnosis == "CN"]
    cf = model.counterfactual(cn, do={"diagnosis": "AD"})
    change = (cf[ROIS] / cn[ROIS]).mean().to_numpy()
    assert (cf.diagnosis == "AD").all()
    np.testing.assert_array_equal(cf.age, cn.age)  # non-descendants unchanged
    np.testing.assert_array_equal(cf.icv, cn.icv)
    np.testing.assert_allclose(change[:2] - 1, AD_EFFECT[:2] - 1, rtol=0.1)  # -15 % within 10 %
    np.testing.assert_allclose(change[2:], 1, atol=0.015)  # unaffected ROIs: below 10 % of 15 %


def test_counterfactual_effect_of_age(model, data):
    cf = model.counterfactual(data, do={"age": data.age + 10})
    np.testing.assert_allclose(cf.age - data.age, 10)
    np.testing.assert_array_equal(cf.diagnosis, data.diagnosis)  # the label keeps its observed value
    change = (cf[ROIS] / data[ROIS]).mean().to_numpy()
    np.testing.assert_allclose(change - 1, np.expm1(10 * AGE_SLOPE), rtol=0.1)
    both = model.counterfactual(data[data.diagnosis == "CN"], do={"age": 80, "diagnosis": "AD"})
    assert (both.age == 80).all() and (both.diagnosis == "AD").all()


def test_sampling_reproduces_moments_and_is_reproducible(model, data):
    synth = model.sample(4000)
    assert list(synth.columns) == ["age", "sex", "icv", "diagnosis", *ROIS]
    log_real, log_synth = np.log(data[["icv", *ROIS]]), np.log(synth[["icv", *ROIS]])
    np.testing.assert_allclose(log_synth.mean(), log_real.mean(), atol=0.01)
    np.testing.assert_allclose(log_synth.std(), log_real.std(), rtol=0.1)
    assert abs(synth.age.mean() - data.age.mean()) < 1.0
    assert abs((synth.sex == "M").mean() - (data.sex == "M").mean()) < 0.03
    assert abs((synth.diagnosis == "AD").mean() - (data.diagnosis == "AD").mean()) < 0.03
    np.testing.assert_allclose(np.corrcoef(log_synth[ROIS].T), np.corrcoef(log_real[ROIS].T), atol=0.1)
    pd.testing.assert_frame_equal(model.sample(50), model.sample(50))
    assert not model.sample(50, random_state=1).equals(model.sample(50, random_state=2))
    assert (model.sample(50, cohort="background").diagnosis == "CN").all()
    assert (model.sample(50, cohort="target").diagnosis == "AD").all()
    assert (model.sample(50, do={"diagnosis": "AD", "age": 60}).age == 60).all()
    healthy, disease = model.sample_paired(20)
    assert (healthy.diagnosis == "CN").all() and (disease.diagnosis == "AD").all()
    np.testing.assert_array_equal(healthy.age, disease.age)


def test_save_load_round_trip(model, data, tmp_path):
    model.save(tmp_path / "m.roisynth")
    loaded = CausalROIModel.load(tmp_path / "m.roisynth")
    pd.testing.assert_frame_equal(loaded.sample(30), model.sample(30))
    pd.testing.assert_frame_equal(loaded.counterfactual(data[:30], do={"diagnosis": "AD"}),
                                  model.counterfactual(data[:30], do={"diagnosis": "AD"}))
    assert loaded.history_["rois"].best_epoch == model.history_["rois"].best_epoch


def test_fit_stacks_background_then_target_and_labels_tables_without_diagnosis(data):
    cn, pt = cohorts(data[:300])
    quick = {"transforms": 0, "epochs": 2, "verbose": False, "random_state": 3}
    stacked = CausalROIModel(**quick).fit(cn, pt)
    assert stacked.classes_ == ["AD", "CN"] and stacked.cohorts_ == ("background", "target")
    unlabelled = CausalROIModel(**quick).fit(cn.drop(columns="diagnosis"), pt.drop(columns="diagnosis"))
    assert unlabelled.classes_ == ["CN", "patient"]
    assert set(unlabelled.sample(50, "target").diagnosis) == {"patient"}
    healthy_only = CausalROIModel(**quick).fit(cn)
    assert healthy_only.cohorts_ == ("background",) and healthy_only.feature_names_in_.tolist() == ROIS


def test_clear_errors(model, data):
    with pytest.raises(ValueError, match="cannot intervene on 'Hippocampus_L'"):
        model.counterfactual(data, do={"Hippocampus_L": 1.0})
    with pytest.raises(ValueError, match="cannot intervene on 'weight'"):
        model.counterfactual(data, do={"weight": 1.0})
    with pytest.raises(ValueError, match=r"unknown diagnosis level\(s\) \['MCI'\]"):
        model.counterfactual(data, do={"diagnosis": "MCI"})
    with pytest.raises(ValueError, match=r"missing column\(s\) \['icv'\]"):
        model.counterfactual(data.drop(columns="icv"), do={"diagnosis": "AD"})
    with pytest.raises(ValueError, match="needs an intervention"):
        model.counterfactual(data)
    with pytest.raises(ValueError, match="3 values for 2000 subjects"):
        model.counterfactual(data, do={"age": [70, 71, 72]})
    cn, pt = cohorts(data)
    with pytest.raises(ValueError, match=r"background rows .* have diagnosis \['AD'\], not the healthy level 'CN'"):
        CausalROIModel().fit(data, pt)
    with pytest.raises(ValueError, match=r"background has no column\(s\) \['ICV'\]"):
        CausalROIModel(epochs=1, covariates=("age", "sex", "ICV")).fit(cn, pt)
    with pytest.raises(ValueError, match=r"target has no column\(s\) \['Thalamus_L'\]"):
        CausalROIModel(epochs=1).fit(cn, pt.drop(columns="Thalamus_L"))
    with pytest.raises(ValueError, match="covariates must name the"):
        CausalROIModel(epochs=1, covariates=("age", "sex")).fit(cn, pt)
    with pytest.raises(TypeError, match="background must be a pandas DataFrame"):
        CausalROIModel().fit(cn[ROIS].to_numpy())
