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
