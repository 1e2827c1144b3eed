"""The seed paper's semi-synthetic benchmark: the model must recover the planted truth.

One full fit (paper setting, early stopping) on simulated CN split into background and
targets with Table 1 atrophy, 1050 training subjects per cohort, scored on held-out rows.
"""

import pytest

from roisynth import ContrastiveVAE, datasets
from roisynth.evaluation import semisynthetic_scores


@pytest.fixture(scope="module")
def scores():
    cn = datasets.simulate_cohort(n=3000, diagnosis={"CN": 1.0}, random_state=0)
    data = datasets.make_semisynthetic(cn[["age", "sex", "icv", *datasets.roi_names()]], random_state=0)
    return semisynthetic_scores(ContrastiveVAE(random_state=0, verbose=False), data, n_train=1050)


def test_paired_difference_recovers_the_atrophy_map(scores):
    assert scores["effect_r"] >= 0.9


def test_synthetic_atrophy_has_the_real_size(scores):
    assert 0.75 <= scores["effect_scale"] <= 1.25


def test_healthy_twins_are_closer_to_the_truth_than_the_patients(scores):
    assert scores["twin_rmse_ratio"] <= 0.7


def test_common_space_does_not_carry_the_disease(scores):
    assert scores["common_auc"] <= 0.6


def test_salient_space_separates_the_subtypes(scores):
    assert scores["salient_completeness"] >= 0.4


@pytest.mark.parametrize("cohort", ["background", "target"])
def test_synthetic_data_are_as_close_to_held_out_data_as_real_data(scores, cohort):
    assert scores[f"w2_{cohort}_ratio"] <= 1.5
