"""Private pipelines (issue 20, item 2): preprocessing, cohort effects and covariate models fitted from
Gaussian releases of their sufficient statistics, accounted with the synthesizer's DP-SGD."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import BaseEstimator, TransformerMixin

import roisynth
from roisynth import ContrastiveVAE, CovariateResidualizer, Harmonizer, SynthesisPipeline, datasets, make_pipeline
from roisynth.covariate_model import CovariateModel
from roisynth.covariate_model import fit_private as fit_private_covariates
from roisynth.privacy import DifferentialPrivacy, epsilon, noise_multiplier
from roisynth.privacy._sufficient_stats import ROW_NORM, GaussianReleases, covariate_ranges, solve_moments
from roisynth.release import _guarantee, describe_model, release

ROIS = datasets.roi_names()[:6]
COVARIATES = ["age", "sex", "icv"]
AGE = {"age": (55.0, 90.0)}  # the simulator's design range: public
QUICK = {"n_hidden": 16, "epochs": 2, "batch_size": 64, "verbose": False}


@pytest.fixture(scope="module")
def cohort():
    table = datasets.load_example()
    return table[["site", *COVARIATES, "diagnosis", *ROIS]]


@pytest.fixture(scope="module")
def cohorts(cohort):
    return (cohort[cohort.diagnosis == "CN"].iloc[:300].reset_index(drop=True),
            cohort[cohort.diagnosis == "AD"].iloc[:200].reset_index(drop=True))


def private_pipeline(epsilon=3.0, seed=0, steps=None, **budget):
    privacy = DifferentialPrivacy(epsilon=epsilon, covariate_bounds=AGE, **budget)
    steps = [CovariateResidualizer()] if steps is None else steps
    return make_pipeline(*steps, ContrastiveVAE(random_state=seed, privacy=privacy, **QUICK)).set_params(
        rois=ROIS, random_state=seed)


@pytest.fixture(scope="module")
def fitted(cohorts):
    return private_pipeline().fit(*cohorts)


def releases(sigma, seed=0, **bounds):
    return GaussianReleases(sigma, DifferentialPrivacy(epsilon=1.0, covariate_bounds={**AGE, **bounds}), seed)


def inside(table):
    """The rows whose covariates and ROI row lie within the clipping bounds (nothing clipped)."""
    ranges = covariate_ranges(COVARIATES, AGE)
    values = roisynth.utils.covariates.covariate_matrix(table, COVARIATES)
    center, scale = DifferentialPrivacy(epsilon=1.0).standardization(ROIS)
    norms = np.linalg.norm((table[ROIS].to_numpy() - center) / scale, axis=1)
    keep = ((values >= ranges[:, 0]) & (values <= ranges[:, 1])).all(axis=1) & (norms <= ROW_NORM * math.sqrt(6))
    return table[keep].reset_index(drop=True)


# -- the statistics: sensitivity and noise ------------------------------------------------------
def test_one_subject_moves_each_release_by_at_most_its_sensitivity(cohorts):
    table = cohorts[0].copy()
    extreme = table.iloc[[0]].assign(age=119.0, icv=2.4e6, **{c: 1e5 for c in ROIS})  # outside every bound
    mechanism = releases(0.0)
    stats = []
    for rows in (table, pd.concat([table, extreme], ignore_index=True)):
        x, _, _ = mechanism.design(rows, COVARIATES, "table")
        u, _, _ = mechanism.roi_rows(rows[ROIS].to_numpy(), ROIS)
        stats.append(mechanism.moments(x, u, np.zeros(len(rows), dtype=int), 1))
    (gram, cross, gram_sd, cross_sd), (gram2, cross2, _, _) = stats
    assert gram_sd == cross_sd == 0.0
    k, p = len(COVARIATES), len(ROIS)
    moved_gram, moved_cross = np.linalg.norm(gram2 - gram), np.linalg.norm(cross2 - cross)
    assert moved_gram <= 1 + k + 1e-9 and moved_cross <= math.sqrt(1 + k) * ROW_NORM * math.sqrt(p) + 1e-9
    # clipped, and the bounds are nearly reached
    assert moved_gram > 0.5 * (1 + k) and moved_cross > 0.5 * math.sqrt(1 + k) * ROW_NORM * math.sqrt(p)
    assert mechanism.released == [0.0] * 4      # two fits of two releases each


class Recording(GaussianReleases):
    """The mechanism with a record of every statistic before its noise, and its sensitivity."""

    def release(self, statistic, sensitivity, symmetric=False):
        self.record = (statistic, sensitivity)
        return super().release(statistic, sensitivity, symmetric)


def test_covariate_model_release_moves_by_at_most_one_plus_d(cohorts):
    table = cohorts[0][["site", *COVARIATES]]
    extreme = table.iloc[[0]].assign(age=119.0, icv=2.4e6)
    recorded = []
    for rows in (table, pd.concat([table, extreme], ignore_index=True)):
        mechanism = Recording(0.0, DifferentialPrivacy(epsilon=1.0, covariate_bounds=AGE), 0)
        fit_private_covariates([CovariateModel(categorical=["site", "sex"])], [rows], mechanism)
        recorded.append(mechanism.record)
    (before, sensitivity), (after, _) = recorded
    assert sensitivity == 3.0                                    # x = (1, age~, icv~), ||x||² <= 1 + d
    assert 0.5 * sensitivity < np.linalg.norm(after - before) <= sensitivity + 1e-9


def test_noise_sd_of_the_coefficients_is_the_one_observed():
    rng = np.random.default_rng(0)
    n, p = 4000, 5
    x = np.column_stack([np.ones(n), rng.uniform(-1, 1, (n, 2))])
    u = x @ rng.normal(size=(3, p)) * 0.1 + rng.normal(size=(n, p)) * 0.1
    draws, predicted = [], None
    for seed in range(300):
        mechanism = releases(1.0, seed)
        gram, cross, gram_sd, cross_sd = mechanism.moments(x, u, np.zeros(n, dtype=int), 1)
        beta, predicted = solve_moments(gram[0], cross[0], gram_sd, cross_sd)
        draws.append(beta)
    observed = np.std(draws, axis=0).mean(axis=1)
    np.testing.assert_allclose(observed, predicted, rtol=0.15)


# -- the private steps against the ordinary ones ------------------------------------------------
def test_at_large_epsilon_the_private_residualizer_is_the_ordinary_one(cohorts):
    table = inside(cohorts[0])
    ordinary = CovariateResidualizer(rois=ROIS).fit(table)
    private = CovariateResidualizer(rois=ROIS)._fit_private(table, releases(1e-9))
    np.testing.assert_allclose(private.coef_, ordinary.coef_, rtol=1e-5)
    np.testing.assert_allclose(private.covariate_mean_, ordinary.covariate_mean_, rtol=1e-7)
    np.testing.assert_allclose(private.intercept_, ordinary.intercept_, rtol=1e-7)
    pd.testing.assert_frame_equal(private.transform(table), ordinary.transform(table), rtol=1e-6)


def test_the_residualizers_error_is_of_the_order_the_noise_predicts_and_shrinks_with_it(cohorts):
    table = inside(cohorts[0])
    ordinary = CovariateResidualizer(rois=ROIS).fit(table)
    errors, relative = {}, {}
    for sigma in (0.25, 1.0):
        fits = [CovariateResidualizer(rois=ROIS)._fit_private(table, releases(sigma, seed)) for seed in range(20)]
        error = np.array([fit.coef_ - ordinary.coef_ for fit in fits])
        errors[sigma] = np.sqrt(np.mean(np.square(error)))
        relative[sigma] = np.sqrt(np.mean(np.square(error / np.array([fit.coef_noise_sd_ for fit in fits]))))
    assert 2.5 < errors[1.0] / errors[0.25] < 5.5       # about 4: the noise SD is proportional to σ (1/ε at fixed n)
    assert all(0.2 < r < 1.5 for r in relative.values())  # in units of the predicted noise SD (shrinkage: below 1)


def test_at_large_epsilon_private_linear_combat_is_the_ordinary_fit(cohorts):
    table = inside(pd.concat(cohorts, ignore_index=True))
    ordinary = Harmonizer(smooth=(), covariates=COVARIATES, rois=ROIS).fit(table)
    private = Harmonizer(smooth=(), covariates=COVARIATES, rois=ROIS)._fit_private(table, releases(1e-9))
    np.testing.assert_allclose(private.model_["B_hat"], ordinary.model_["B_hat"], rtol=1e-5)
    np.testing.assert_allclose(private.model_["stand_mean"], ordinary.model_["stand_mean"], rtol=1e-7)
    # mean-only: the site shifts are the plain per-site means, delta* = 1 (ComBat's shift without its EB)
    shift = private.model_["gamma_star"] * np.sqrt(private.model_["var_pooled"]).T
    np.testing.assert_allclose(shift, ordinary.model_["B_hat"][:4] - ordinary.model_["stand_mean"].T, atol=1e-4)
    assert (private.model_["delta_star"] == 1).all()
    np.testing.assert_allclose(private.inverse_transform(private.transform(table))[ROIS], table[ROIS])


def test_private_covariate_model_recovers_the_cells_and_keeps_to_public_ranges(cohorts):
    table = cohorts[0][["site", *COVARIATES]]
    model, = fit_private_covariates([CovariateModel(categorical=["site", "sex"])], [table], releases(1e-9))
    frequencies = table.groupby(["site", "sex"]).size() / len(table)
    np.testing.assert_allclose(model.cell_probabilities_, [frequencies[cell] for cell in model.cells_], rtol=1e-6)
    for cell, mean in zip(model.cells_, model.means_ * model.scale_ + model.center_):
        rows = table[(table.site == cell[0]) & (table.sex == cell[1])]
        np.testing.assert_allclose(mean, rows[["age", "icv"]].mean(), rtol=2e-3)  # + κ ≈ 0 pseudo-subjects
    np.testing.assert_array_equal(model.bounds_, covariate_ranges(["age", "icv"], AGE))
    drawn = CovariateModel.from_json(model.to_json()).sample(500, random_state=0)
    assert drawn.age.between(55, 90).all() and set(drawn.sex) == {"F", "M"}


# -- the pipeline: budget, refusals, seeds, files -------------------------------------------------
def test_the_whole_chain_is_accounted_within_epsilon(fitted, cohorts):
    n = sum(len(t) for t in cohorts)
    eps, delta = fitted.privacy_spent_
    assert delta == 1 / n**2 and 0.99 * 3.0 <= eps <= 3.0
    k = fitted.preprocessing_releases_
    assert k == 2 + 2 + 1  # residualizer, the two cohorts' effects (one release pair), the covariate models
    sigma = fitted.preprocessing_noise_multiplier_
    synthesizer = fitted.synthesizer
    assert synthesizer.privacy.composed_with == (sigma,) * k
    single = noise_multiplier(0.2 * 3.0, delta, 1.0, 1)              # preprocessing_share = 0.2
    assert sigma == pytest.approx(math.sqrt(k) * single)
    assert epsilon(1.0, sigma, 1, delta, (sigma,) * (k - 1)) <= 0.2 * 3.0  # the preprocessing alone: its share
    q, steps = 2 * 64 / n, math.ceil(2 / (2 * 64 / n))
    means = (synthesizer.means_noise_multiplier_,)
    assert eps == pytest.approx(epsilon(q, synthesizer.noise_multiplier_, steps, delta, (sigma,) * k + means))
    without = epsilon(q, synthesizer.noise_multiplier_, steps, delta, means)
    assert without < eps                                                 # the preprocessing is paid for
    alone = ContrastiveVAE(random_state=0, privacy=DifferentialPrivacy(epsilon=3.0), **QUICK).fit(
        *(t[ROIS] for t in cohorts))
    assert synthesizer.noise_multiplier_ > alone.noise_multiplier_      # DP-SGD is noisier to leave room


@pytest.mark.parametrize(("steps", "message"), [
    ([Harmonizer()], r"step 'harmonizer': Harmonizer\(smooth=\['age'\]\) fits a GAM smooth.*Harmonizer\(smooth=\(\)\)"),
    ([type("Scaler", (TransformerMixin, BaseEstimator), {"fit": lambda self, X, y=None: self,
                                                         "transform": lambda self, X: X,
                                                         "inverse_transform": lambda self, X: X})()],
     r"step 'scaler' \(Scaler\) has no private fit"),
])
def test_steps_that_cannot_learn_privately_are_refused_before_training(steps, message, cohorts):
    pipeline = private_pipeline(steps=steps)
    with pytest.raises(ValueError, match=message):
        pipeline.fit(*cohorts)
    assert not hasattr(pipeline, "steps_") and not hasattr(pipeline.synthesizer, "module_")


def test_budget_settings_are_checked(cohorts):
    with pytest.raises(ValueError, match=r"preprocessing_share must be in \[0, 1\), got 1"):
        DifferentialPrivacy(epsilon=1.0, preprocessing_share=1)
    with pytest.raises(ValueError, match=r"covariate_bounds\['age'\]"):
        DifferentialPrivacy(epsilon=1.0, covariate_bounds={"age": (90, 55)})
    with pytest.raises(ValueError, match=r"preprocessing_share=0\) leaves no budget for \['covariateresidualizer'\]"):
        private_pipeline(preprocessing_share=0).fit(*cohorts)
    with pytest.raises(ValueError, match=r"covariate\(s\) \['education'\] have no public range.*covariate_bounds"):
        covariate_ranges(["age", "education"])


def test_seeded_private_pipelines_are_bit_identical(cohorts):
    first, second, other = (private_pipeline(seed=s).fit(*cohorts) for s in (0, 0, 1))
    residualizers = [p.steps_[0][1] for p in (first, second, other)]
    np.testing.assert_array_equal(residualizers[0].coef_, residualizers[1].coef_)
    assert not np.array_equal(residualizers[0].coef_, residualizers[2].coef_)
    assert first.covariate_models_["target"].to_json() == second.covariate_models_["target"].to_json()
    for key, value in first.synthesizer.module_.state_dict().items():
        assert torch.equal(value, second.synthesizer.module_.state_dict()[key]), key
    for a, b in zip(first.sample_paired(40), second.sample_paired(40)):
        pd.testing.assert_frame_equal(a, b)


def test_file_keeps_the_private_pipeline(fitted, cohorts, tmp_path):
    fitted.save(tmp_path / "pipe.roisynth")
    for loaded in (SynthesisPipeline.load(tmp_path / "pipe.roisynth"), roisynth.load(tmp_path / "pipe.roisynth")):
        assert loaded.privacy_spent_ == fitted.privacy_spent_
        assert loaded.preprocessing_noise_multiplier_ == fitted.preprocessing_noise_multiplier_
        assert loaded.preprocessing_releases_ == fitted.preprocessing_releases_
        assert loaded.synthesizer.privacy == fitted.synthesizer.privacy
        np.testing.assert_array_equal(loaded.steps_[0][1].coef_noise_sd_, fitted.steps_[0][1].coef_noise_sd_)
        pd.testing.assert_frame_equal(loaded.sample(30, random_state=3), fitted.sample(30, random_state=3))
        pd.testing.assert_frame_equal(loaded.counterfactual(cohorts[1].iloc[:5]),
                                      fitted.counterfactual(cohorts[1].iloc[:5]))


def test_release_json_carries_the_spent_budget_of_the_whole_chain(fitted, cohort, tmp_path):
    described = describe_model(fitted)
    dp = described["differential_privacy"]
    assert (dp["epsilon"], dp["delta"]) == fitted.privacy_spent_
    assert dp["preprocessing"]["gaussian_releases"] == 5 and dp["preprocessing"]["share"] == 0.2
    assert _guarantee(fitted) == f" — an (ε = {dp['epsilon']:.3g}, δ = 4e-06)-differentially private model"
    train = cohort[cohort.diagnosis.isin(["CN", "AD"])].iloc[:500]
    holdout = cohort[cohort.diagnosis.isin(["CN", "AD"])].iloc[500:700]
    summary = release(tmp_path / "release", train=train, holdout=holdout, model=fitted, target="AD", n=100,
                      n_attacks=50, n_bootstrap=0, override="test of the release file")
    written = json.loads((tmp_path / "release" / "release.json").read_text())
    assert written["model"]["differential_privacy"] == summary["model"]["differential_privacy"] == json.loads(
        json.dumps(dp))
    report = (tmp_path / "release" / "report.html").read_text()    # the released table, described with its model
    assert f"(\u03b5 = {dp['epsilon']:.4g}, \u03b4 = {dp['delta']:.3g})-" in report
    assert "not differentially private" not in report and "cannot state" not in report
