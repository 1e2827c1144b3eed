"""SynthesisPipeline: raw multi-site tables in, synthetic subjects in mm³ with covariates out."""

import numpy as np
import pandas as pd
import pytest

from roisynth import ContrastiveVAE, datasets
from roisynth.pipeline import make_pipeline
from roisynth.preprocessing import CovariateResidualizer, Harmonizer

ROIS = ["Hippocampus_L", "Hippocampus_R", "Amygdala_L", "Amygdala_R", "EntorhinalArea_L", "EntorhinalArea_R",
        "Precuneus_L", "Precuneus_R", "Frontal_WM_L", "Frontal_WM_R",
        "SuperiorFrontalGyrus_L", "SuperiorFrontalGyrus_R"]


def _slope(table, roi, covariate="age"):
    X = np.column_stack([np.ones(len(table)), table[covariate], (table["sex"] == "M").astype(float), table["icv"]])
    return np.linalg.lstsq(X, table[roi].to_numpy(float), rcond=None)[0][1]


@pytest.fixture(scope="module")
def cohort():
    table = datasets.load_example()
    return table[["participant_id", "site", "age", "sex", "icv", "diagnosis", *ROIS]]


@pytest.fixture(scope="module")
def fitted(cohort):
    cn, pt = cohort[cohort.diagnosis == "CN"], cohort[cohort.diagnosis != "CN"]
    pipe = make_pipeline(
        Harmonizer(covariates=("age", "sex", "icv"), smooth=()),
        CovariateResidualizer(),
        ContrastiveVAE(epochs=150, verbose=False, random_state=0),
    )
    return pipe.fit(cn, pt)


def test_residualizer_round_trip_and_removes_covariate_effects(cohort):
    cn = cohort[cohort.diagnosis == "CN"]
    step = CovariateResidualizer(rois=ROIS).fit(cn)
    adjusted = step.transform(cohort)
    assert abs(_slope(adjusted[adjusted.diagnosis == "CN"], "Hippocampus_L")) < 1e-8
    back = step.inverse_transform(adjusted)
    np.testing.assert_allclose(back[ROIS].to_numpy(), cohort[ROIS].to_numpy(), rtol=1e-10)
    # the intercept is kept: adjusted CN volumes have the CN mean
    np.testing.assert_allclose(adjusted.loc[adjusted.diagnosis == "CN", ROIS].mean(), cn[ROIS].mean(), rtol=1e-10)


def test_residualizer_errors_name_the_column(cohort):
    with pytest.raises(ValueError, match="'icv'"):
        CovariateResidualizer(rois=ROIS).fit(cohort.drop(columns="icv"))
    bad = cohort.copy()
    bad.loc[bad.index[3], "age"] = np.nan
    with pytest.raises(ValueError, match="'age' has missing values in rows"):
        CovariateResidualizer(rois=ROIS).fit(bad)
    with pytest.raises(ValueError, match="'sex' has values \\['x'\\]"):
        CovariateResidualizer(rois=ROIS).fit(cohort.assign(sex="x"))


def test_preprocessing_round_trip_is_exact(fitted, cohort):
    harmonizer, residualizer = (step for _, step in fitted.steps_[:-1])
    forward = residualizer.transform(harmonizer.transform(cohort))
    back = harmonizer.inverse_transform(residualizer.inverse_transform(forward))
    np.testing.assert_allclose(back[ROIS].to_numpy(), cohort[ROIS].to_numpy(), rtol=1e-6)
    pd.testing.assert_frame_equal(back.drop(columns=ROIS), cohort.drop(columns=ROIS))


def test_synthetic_output_has_covariates_and_mm3(fitted, cohort):
    healthy, disease = fitted.sample_paired(500, random_state=0)
    for table in (healthy, disease):
        assert list(table.columns) == ["site", "age", "sex", "icv", *ROIS]
        assert (table[ROIS] > 0).all().all()
    pd.testing.assert_frame_equal(healthy[["site", "age", "sex", "icv"]], disease[["site", "age", "sex", "icv"]])
    assert set(healthy["site"]) <= set(cohort["site"])
    # disease shrinks the hippocampus of the same people
    assert (disease["Hippocampus_L"] < healthy["Hippocampus_L"]).mean() > 0.8


def test_synthetic_cohorts_keep_the_age_trend_and_sex_difference(fitted, cohort):
    cn = cohort[cohort.diagnosis == "CN"]
    synthetic = fitted.sample(3000, cohort="background", random_state=1)
    for roi in ("Hippocampus_L", "Frontal_WM_R"):
        assert _slope(synthetic, roi) == pytest.approx(_slope(cn, roi), rel=0.15)
    real_gap = cn.groupby("sex")["Hippocampus_L"].mean().diff().iloc[-1]
    synthetic_gap = synthetic.groupby("sex")["Hippocampus_L"].mean().diff().iloc[-1]
    assert synthetic_gap == pytest.approx(real_gap, rel=0.25)


def test_given_covariates_one_site_or_harmonized(fitted, cohort):
    people = cohort.iloc[:40][["site", "age", "sex", "icv"]]
    healthy, _ = fitted.sample_paired(covariates=people, random_state=0)
    pd.testing.assert_frame_equal(healthy[["site", "age", "sex", "icv"]], people.reset_index(drop=True))
    site = str(cohort["site"].iloc[0])
    at_site = fitted.sample(100, covariates=people, site=site, random_state=0)
    harmonized = fitted.sample(100, covariates=people, site="harmonized", random_state=0)
    assert (at_site["site"] == site).all() and (harmonized["site"] == "harmonized").all()
    with pytest.raises(ValueError, match="not one of the training sites"):
        fitted.sample(5, site="Mars")


def test_counterfactual_keeps_each_persons_covariates(fitted, cohort):
    patients = cohort[cohort.diagnosis == "AD"].iloc[:50]
    twins = fitted.counterfactual(patients, to="background")
    assert list(twins.columns) == list(patients.columns)
    pd.testing.assert_frame_equal(twins.drop(columns=ROIS), patients.drop(columns=ROIS))
    gain = twins["Hippocampus_L"] / patients["Hippocampus_L"] - 1
    assert gain.mean() > 0.05 and (gain > 0).mean() > 0.7  # some AD subjects have minimal atrophy


def test_warns_when_a_removed_covariate_was_not_harmonized(cohort):
    pipe = make_pipeline(Harmonizer(covariates=("age", "sex"), smooth=()), CovariateResidualizer(),
                         ContrastiveVAE(epochs=1, verbose=False))
    cn = cohort[cohort.diagnosis == "CN"]
    with pytest.warns(UserWarning, match=r"\['icv'\] are removed after harmonization"):
        pipe.fit(cn, cohort[cohort.diagnosis != "CN"])


def test_bad_pipeline_input(cohort):
    with pytest.raises(TypeError, match="last step"):
        make_pipeline(CovariateResidualizer()).fit(cohort, cohort)
    pipe = make_pipeline(CovariateResidualizer(), ContrastiveVAE(epochs=1, verbose=False))
    with pytest.raises(ValueError, match="lacks the column"):
        pipe.fit(cohort.drop(columns="icv"), cohort)
    with pytest.raises(TypeError, match="DataFrame"):
        pipe.fit(cohort[ROIS].to_numpy(), None)


# -- shareable by construction (issue 16): generated covariates, interactions, conditions ---------------------
QUASI_IDENTIFIERS = ["site", "age", "sex", "icv"]


def test_no_synthetic_subject_carries_a_real_quasi_identifier(fitted, cohort):
    healthy, disease = fitted.sample_paired(2000, random_state=3)
    real = set(cohort[QUASI_IDENTIFIERS].itertuples(index=False, name=None))
    assert not real & set(healthy[QUASI_IDENTIFIERS].itertuples(index=False, name=None))
    assert not healthy.age.isin(cohort.age).any() and not healthy.icv.isin(cohort.icv).any()
    # the generated covariates still follow the patients' own distribution
    patients = cohort[cohort.diagnosis != "CN"]
    assert healthy.age.mean() == pytest.approx(patients.age.mean(), abs=0.6)
    assert (healthy.sex == "F").mean() == pytest.approx((patients.sex == "F").mean(), abs=0.04)


def test_conditional_sampling_in_the_pipeline(fitted):
    women = fitted.sample(300, conditions={"sex": "F", "age": (70, 80), "site": "site2"}, random_state=4)
    assert set(women.sex) == {"F"} and set(women.site) == {"site2"} and women.age.between(70, 80).all()
    healthy, disease = fitted.sample_paired(conditions=pd.DataFrame({"age": [62.0, 88.0]}), random_state=4)
    assert healthy.age.tolist() == disease.age.tolist() == [62.0, 88.0]
    with pytest.raises(ValueError, match="outside the training support"):
        fitted.sample(5, conditions={"age": 110})
    with pytest.raises(ValueError, match="covariates .* or conditions, not both"):
        fitted.sample(5, covariates=healthy[QUASI_IDENTIFIERS], conditions={"sex": "F"})


@pytest.mark.parametrize("interactions", [True, False])
def test_age_by_disease_interaction_survives(interactions):
    from roisynth import GaussianMixtureSynthesizer

    healthy, patients = datasets.make_age_interaction(random_state=0)
    rois = list(healthy.columns[3:])
    pipe = make_pipeline(CovariateResidualizer(), GaussianMixtureSynthesizer(max_components=1, random_state=0))
    pipe.set_params(rois=rois, interactions=interactions, random_state=0).fit(healthy, patients)
    synthetic = {c: pipe.sample(8000, cohort=c, random_state=i) for i, c in enumerate(("background", "target"))}
    slope = {c: _slope(t, rois[0]) for c, t in synthetic.items()}
    interaction = slope["target"] - slope["background"]
    if interactions:   # the truth is -12 mm³/year; within 20 %
        assert interaction == pytest.approx(-12.0, rel=0.2)
    else:              # without cohort effects the interaction is lost (the behaviour before issue 16)
        assert abs(interaction) < 3.0
    assert slope["background"] == pytest.approx(-10.0, rel=0.2)


def test_numeric_site_labels_stay_categories():
    from roisynth import GaussianMixtureSynthesizer

    healthy, patients = datasets.make_age_interaction(400, random_state=1)
    sites = np.array([101, 205, 307, 411, 512, 613, 714, 815, 916, 1017, 1118, 1219])   # 12 numeric site codes
    healthy, patients = (t.assign(site=sites[np.arange(len(t)) % len(sites)]) for t in (healthy, patients))
    pipe = make_pipeline(Harmonizer(covariates=("age", "sex", "icv"), smooth=()), CovariateResidualizer(),
                         GaussianMixtureSynthesizer(max_components=1, random_state=0))
    pipe.set_params(rois=list(healthy.columns[3:7]), random_state=0).fit(healthy, patients)
    drawn = pipe.sample(500, cohort="background", random_state=0)
    assert set(drawn.site) <= set(sites) and "site" in pipe.covariate_models_["background"].categorical_


def test_conditions_need_covariate_columns():
    from roisynth import LinearContrastive, SynthesisPipeline

    cohort = datasets.load_example()
    pipe = SynthesisPipeline([("model", LinearContrastive(n_common=1, n_salient=1, random_state=0))], rois=ROIS[:4],
                             random_state=0).fit(cohort[cohort.diagnosis == "CN"], cohort[cohort.diagnosis != "CN"])
    assert pipe.sample(3).shape == (3, 4)
    for conditions in ({"age": (70, 80)}, pd.DataFrame({"age": [70.0]})):
        with pytest.raises(ValueError, match="conditions need covariate columns"):
            pipe.sample(conditions=conditions, n=None if isinstance(conditions, pd.DataFrame) else 5)
