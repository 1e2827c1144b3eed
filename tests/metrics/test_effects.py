"""Effects, counterfactual error, representations, detection and utility on planted data."""

import numpy as np
import pandas as pd
import pytest

from roisynth.metrics import (
    cohens_d,
    decoupling_auc,
    detection_auc,
    effect_error,
    effect_map_correlation,
    effect_maps,
    effect_scale,
    roi_tests,
    spurious_effects,
    subtype_recovery,
    tstr,
    twin_error,
)

ROIS = [f"roi{i}" for i in range(20)]
PLANTED = {"roi0": -1.0, "roi3": -0.6, "roi7": 0.8}  # Cohen's d of patients vs controls


def cohort(rng, n, effect=None):
    """Independent unit-variance ROIs (in SD units of 50 mm³ around 3000) with a planted shift."""
    shift = pd.Series(0.0, index=ROIS) if effect is None else pd.Series(effect).reindex(ROIS, fill_value=0.0)
    return pd.DataFrame((rng.normal(size=(n, len(ROIS))) + shift.to_numpy()) * 50 + 3000, columns=ROIS)


def test_cohens_d_recovers_planted_effects():
    rng = np.random.default_rng(0)
    controls, patients = cohort(rng, 3000), cohort(rng, 2000, PLANTED)
    d = cohens_d(patients, controls)
    assert list(d.index) == ROIS
    expected = pd.Series(PLANTED).reindex(ROIS, fill_value=0.0)
    np.testing.assert_allclose(d, expected, atol=0.07)
    assert cohens_d(controls, patients)["roi0"] == pytest.approx(-d["roi0"])


def test_roi_tests_reject_only_planted_rois():
    rng = np.random.default_rng(1)
    controls, patients = cohort(rng, 150), cohort(rng, 120, PLANTED)
    table = roi_tests(patients, controls)
    assert set(table.index[table.reject]) == set(PLANTED)
    assert (table.loc[list(PLANTED), "t"] * pd.Series(PLANTED) > 0).all()  # signs follow the effects
    assert (table.p_adjusted >= table.p).all()
    bonferroni = roi_tests(patients, controls, correction="bonferroni")
    np.testing.assert_allclose(bonferroni.p_adjusted, np.minimum(table.p * len(ROIS), 1))
    with pytest.raises(ValueError, match="correction"):
        roi_tests(patients, controls, correction="holm-sidak-typo")


def test_effect_map_correlation_real_vs_synthetic():
    rng = np.random.default_rng(2)
    real = cohort(rng, 400, PLANTED), cohort(rng, 400)
    faithful = cohort(rng, 400, PLANTED), cohort(rng, 400)
    wrong = cohort(rng, 400, {"roi12": -1.0}), cohort(rng, 400)
    assert effect_map_correlation(*real, *faithful) > 0.9
    assert effect_map_correlation(*real, *wrong) < 0.2


def test_synthetic_copies_of_the_training_data_are_perfectly_faithful():
    rng = np.random.default_rng(7)
    train, held_out = (cohort(rng, 150), cohort(rng, 120, PLANTED)), (cohort(rng, 400), cohort(rng, 400, PLANTED))
    assert effect_scale(*train, *train) == pytest.approx(1.0)
    error = effect_error(*train, *train, reference=held_out)
    assert error["ratio"] == pytest.approx(1.0) and error["rmse"] == error["train_rmse"] > 0
    null = [r for r in ROIS if r not in PLANTED]
    spurious = spurious_effects(*train, *train, unaffected=null)
    assert spurious["synthetic"] == spurious["train"] == pytest.approx(cohens_d(train[1], train[0])[null].abs().mean())


def test_halving_every_effect_halves_the_scale_and_is_worse_than_the_training_data():
    rng = np.random.default_rng(8)
    truth = pd.Series(PLANTED).reindex(ROIS, fill_value=0.0)
    train = cohort(rng, 300), cohort(rng, 300, PLANTED)
    halved = cohort(rng, 20_000), cohort(rng, 20_000, {k: v / 2 for k, v in PLANTED.items()})
    faithful = cohort(rng, 20_000), cohort(rng, 20_000, PLANTED)
    assert effect_scale(*train, *halved) == pytest.approx(0.5, abs=0.06)
    assert effect_scale(*train, *faithful) == pytest.approx(1.0, abs=0.12)
    # the truth given as d (a Series, in any order) or as an array: the same figure
    assert effect_error(*train, *halved, reference=truth[::-1])["ratio"] == pytest.approx(
        effect_error(*train, *halved, reference=truth.to_numpy())["ratio"])
    assert effect_error(*train, *halved, reference=truth)["ratio"] > 1.5  # ≈ 0.16 / 0.08
    # a large faithful cohort has only its own small sampling noise: closer to the truth than 300 real rows
    assert effect_error(*train, *faithful, reference=truth)["ratio"] < 0.5
    maps = effect_maps(*train, *halved, reference=truth)
    assert list(maps.columns) == ["train", "synthetic", "reference"] and list(maps.index) == ROIS
    np.testing.assert_allclose(maps["synthetic"], truth / 2, atol=0.05)


def test_spurious_effects_on_a_planted_null():
    rng = np.random.default_rng(9)
    null = pd.Series([r not in PLANTED for r in ROIS], index=ROIS)
    train = cohort(rng, 1000), cohort(rng, 1000, PLANTED)
    leaky = cohort(rng, 1000), cohort(rng, 1000, PLANTED | {r: 0.15 for r in ROIS[10:]})
    faithful = cohort(rng, 1000), cohort(rng, 1000, PLANTED)
    noise = np.sqrt(2 / 1000) * np.sqrt(2 / np.pi)  # E|d| of a null ROI at 1000 per group
    leaked, clean = spurious_effects(*train, *leaky, unaffected=null), spurious_effects(*train, *faithful, null)
    assert leaked["train"] == clean["train"] == pytest.approx(noise, rel=0.35)
    assert clean["synthetic"] == pytest.approx(noise, rel=0.35)
    assert leaked["synthetic"] > 2 * leaked["train"]
    assert spurious_effects(*train, *leaky, null.to_numpy()) == leaked  # a boolean mask by position
    assert spurious_effects(*train, *leaky, list(null.index[null])) == leaked  # or the names


def test_effect_metrics_name_the_bad_argument():
    rng = np.random.default_rng(10)
    train = cohort(rng, 50), cohort(rng, 50, PLANTED)
    with pytest.raises(ValueError, match="min_effect=5.0"):
        effect_scale(*train, *train, min_effect=5.0)
    with pytest.raises(ValueError, match="min_effect"):
        effect_scale(*train, *train, min_effect=-1)
    with pytest.raises(ValueError, match="reference must hold one d per column"):
        effect_error(*train, *train, reference=np.zeros(3))
    with pytest.raises(ValueError, match=r"reference has no d for column\(s\) \['roi0'"):
        effect_error(*train, *train, reference=pd.Series(0.0, index=ROIS[1:]))
    with pytest.raises(ValueError, match="undefined"):
        effect_error(*train, *train, reference=train)
    with pytest.raises(ValueError, match=r"unaffected names unknown column\(s\) \['Pons'\]"):
        spurious_effects(*train, *train, unaffected=["roi1", "Pons"])
    with pytest.raises(ValueError, match="unaffected selects no column"):
        spurious_effects(*train, *train, unaffected=np.zeros(len(ROIS), bool))
    with pytest.raises(ValueError, match="synth_target"):
        effect_scale(*train, train[0], train[1].iloc[:, :5])


def test_twin_error_against_known_truth():
    rng = np.random.default_rng(3)
    truth = cohort(rng, 50)
    twins, observed = truth + 10.0, truth - 40.0  # errors of 10 and 40 mm³ in every cell
    assert twin_error(twins, truth) == pytest.approx({"rmse": 10.0})
    assert twin_error(twins, truth, observed) == pytest.approx({"rmse": 10.0, "observed_rmse": 40.0, "ratio": 0.25})
    with pytest.raises(ValueError, match="different index"):
        twin_error(twins.iloc[::-1], truth)
    with pytest.raises(ValueError, match="rows must correspond"):
        twin_error(twins.to_numpy()[:10], truth.to_numpy())


def test_decoupling_auc_and_subtype_recovery_on_planted_latents():
    rng = np.random.default_rng(4)
    labels = np.repeat([0, 1, 2], 100)  # background, subtype 1, subtype 2
    z = rng.normal(size=(300, 4))  # a common space that ignores the cohort
    entangled = z + 2.0 * (labels > 0)[:, None]
    assert decoupling_auc(z, labels > 0, random_state=0) == pytest.approx(0.5, abs=0.1)
    assert decoupling_auc(entangled, labels > 0, random_state=0) > 0.95
    centres = np.array([[0, 0], [4, 0], [0, 4]])
    s = centres[labels] + rng.normal(size=(300, 2)) * 0.5
    recovered = subtype_recovery(s, labels, random_state=0)
    assert recovered["completeness"] > 0.9 and recovered["ari"] > 0.9
    scrambled = subtype_recovery(s, rng.permutation(labels), random_state=0)
    assert abs(scrambled["ari"]) < 0.05
    with pytest.raises(ValueError, match="one entry per row"):
        decoupling_auc(z, labels[:10])


def test_detection_auc_half_for_same_distribution_one_for_shift():
    rng = np.random.default_rng(5)
    real, same, shifted = cohort(rng, 300), cohort(rng, 300), cohort(rng, 300, dict.fromkeys(ROIS, 1.0))
    assert detection_auc(real, same, random_state=0) == pytest.approx(0.5, abs=0.08)
    # mean shift of 1 SD in 20 independent ROIs: the Bayes AUC is Phi(sqrt(20 / 2)) > 0.999
    assert detection_auc(real, shifted, random_state=0) > 0.98
    assert detection_auc(real, shifted, classifier="gradient_boosting", random_state=0) > 0.9
    with pytest.raises(ValueError, match="classifier"):
        detection_auc(real, same, classifier="svm")


def test_tstr_matches_trtr_for_true_draws_and_is_chance_without_signal():
    rng = np.random.default_rng(6)
    real = cohort(rng, 300), cohort(rng, 300, PLANTED)
    synthetic = cohort(rng, 300), cohort(rng, 300, PLANTED)
    scores = tstr(*synthetic, *real, random_state=0)
    assert scores["trtr_auc"] > 0.8
    assert scores["tstr_auc"] == pytest.approx(scores["trtr_auc"], abs=0.04)
    assert scores["ratio"] == pytest.approx(scores["tstr_auc"] / scores["trtr_auc"])
    no_signal = tstr(cohort(rng, 300), cohort(rng, 300), cohort(rng, 300), cohort(rng, 300), random_state=0)
    assert no_signal["tstr_auc"] == pytest.approx(0.5, abs=0.1)
    assert no_signal["trtr_auc"] == pytest.approx(0.5, abs=0.1)
