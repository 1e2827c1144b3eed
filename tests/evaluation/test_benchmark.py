"""roisynth.evaluation: every synthesizer under a name, scored on the semi-synthetic benchmark."""

import numpy as np
import pytest

from roisynth import LinearContrastive, datasets
from roisynth.base import BaseSynthesizer
from roisynth.evaluation import effect_scores, semisynthetic_scores
from roisynth.evaluation._benchmark import QUICK_EPOCHS, benchmark_models, run_semisynthetic, table_a1


def test_every_model_is_a_fresh_seeded_synthesizer():
    models = benchmark_models(random_state=3, quick=True)
    assert {type(m).__name__ for m in models.values()} == {
        "ContrastiveVAE", "ConditionalVAE", "LinearContrastive", "GaussianMixtureSynthesizer", "KDESynthesizer"}
    for model in models.values():
        assert isinstance(model, BaseSynthesizer) and model.random_state == 3
        assert not hasattr(model, "feature_names_in_")
        if "epochs" in model.get_params():
            assert model.epochs == QUICK_EPOCHS
    assert [m.mmd_weight for n, m in models.items() if n.startswith("ContrastiveVAE λ")] == [10.0, 0.0, 5.0, 15.0]


EFFECTS = ["effect_scale_d", "effect_error_ratio", "spurious_d", "spurious_d_train"]
PAIRED_EFFECTS = ["paired_effect_scale_d", "paired_effect_error_ratio", "paired_spurious_d"]


@pytest.fixture(scope="module")
def data():
    cn = datasets.simulate_cohort(n=700, diagnosis={"CN": 1.0}, random_state=1)
    return datasets.make_semisynthetic(cn[["age", "sex", "icv", *datasets.roi_names()]], random_state=1)


@pytest.fixture(scope="module")
def scores(data):
    models = {k: v for k, v in benchmark_models().items() if k in ("LinearContrastive", "GaussianMixture (BIC)")}
    return run_semisynthetic(models, data, n_train=250, seeds=(0, 1), progress=None)


def test_scores_every_model_and_seed_and_marks_what_a_model_cannot_do(scores):
    assert list(scores.index) == [(m, s) for m in ("LinearContrastive", "GaussianMixture (BIC)") for s in (0, 1)]
    gmm, linear = scores.loc["GaussianMixture (BIC)"], scores.loc["LinearContrastive"]
    assert gmm[["effect_r", "twin_rmse_ratio", "common_auc"]].isna().all().all()
    assert np.isfinite(gmm[["w2_background_ratio", "w2_target_ratio", "fit_seconds", "sample_seconds"]]).all().all()
    # the linear model pairs: its mean paired difference is the cohort mean difference, so the
    # recovered atrophy map follows the truth closely even on 250 subjects per cohort
    assert (linear["effect_r"] > 0.9).all() and (linear["twin_rmse_ratio"] < 1).all()


def test_effect_figures_of_every_model(scores):
    gmm, linear = scores.loc["GaussianMixture (BIC)"], scores.loc["LinearContrastive"]
    assert gmm[PAIRED_EFFECTS].isna().all().all() and np.isfinite(linear[EFFECTS + PAIRED_EFFECTS]).all().all()
    for model in (gmm, linear):  # both models reproduce the size of the effects they were shown
        assert ((model["effect_scale_d"] > 0.8) & (model["effect_scale_d"] < 1.2)).all()
        assert ((model["effect_error_ratio"] > 0.3) & (model["effect_error_ratio"] < 2)).all()
        # noise alone at 250 per group: E|d| = sqrt(2 / 250) * sqrt(2 / pi) = 0.07 on the unaffected ROIs
        assert ((model["spurious_d_train"] > 0.04) & (model["spurious_d_train"] < 0.11)).all()
        assert (model["spurious_d"] < 2 * model["spurious_d_train"]).all()
    table = table_a1(scores)
    assert {"effect scale (d)", "effect error ratio", "paired effect error ratio",
            "spurious |d| (training data)"} <= set(table.columns)


def test_privacy_risks_are_recorded_for_every_model(scores):
    risks = ["singling_out_univariate", "singling_out_multivariate", "linkability"]
    assert np.isfinite(scores[risks + [f"{r}_low" for r in risks] + [f"{r}_high" for r in risks]]).all().all()
    assert sum(c.startswith("inference_") and c.endswith("_low") for c in scores) == 3
    assert (scores["exact_rows"] == 0).all()
    table = table_a1(scores)
    for column in ("singling-out risk [95% CI]", "linkability risk [95% CI]", "inference risk, worst ROI [95% CI]"):
        assert table[column].str.fullmatch(r"[\d.]+ \[[\d.]+, [\d.]+\]").all(), column
    assert table["exact copies (rows, cells)"].str.startswith("0, ").all()


class TrainingRows:
    """A "synthesizer" returning its training rows: the training effects exactly, paired too."""

    can_pair = True

    def __init__(self, train):
        self.train = dict(zip(("background", "target"), train))

    def sample(self, n, cohort="target", random_state=None):
        return self.train[cohort].iloc[:n]

    def sample_paired(self, n, random_state=None):
        return self.train["background"].iloc[:n], self.train["target"].iloc[:n]


def test_effect_scores_of_the_training_rows_are_those_of_the_training_data(data):
    rois = data.rois
    train, held_out = (data.background[rois].iloc[:300], data.target[rois].iloc[:300]), (
        data.background[rois].iloc[300:], data.target[rois].iloc[300:])
    unaffected = (data.factors == 0).all()
    scores = effect_scores(TrainingRows(train), train, reference=held_out, unaffected=unaffected, n_sample=300)
    for prefix in ("", "paired_"):
        assert scores[f"{prefix}effect_scale_d"] == pytest.approx(1.0)
        assert scores[f"{prefix}effect_error_ratio"] == pytest.approx(1.0)
        assert scores[f"{prefix}spurious_d"] == pytest.approx(scores["spurious_d_train"])
    assert 0 < scores["spurious_d_train"] < 0.15
    bare = effect_scores(TrainingRows(train), train, n_sample=300)
    assert np.isnan([bare["effect_error_ratio"], bare["spurious_d"], bare["paired_spurious_d"]]).all()


def test_semisynthetic_training_sizes_per_cohort(data):
    scores = semisynthetic_scores(LinearContrastive(random_state=0), data, n_train=(100, 190), n_sample=100,
                                  n_effect=500)
    assert 0.7 < scores["effect_scale_d"] < 1.3 and 0.7 < scores["paired_effect_scale_d"] < 1.3
    with pytest.raises(ValueError, match="leaves 0 held-out target rows of 350"):
        semisynthetic_scores(LinearContrastive(), data, n_train=(100, 350))
    with pytest.raises(ValueError, match="n_train must be an integer >= 10 or a"):
        semisynthetic_scores(LinearContrastive(), data, n_train=(100,))
