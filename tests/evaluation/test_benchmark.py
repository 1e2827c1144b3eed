"""roisynth.evaluation: every synthesizer under a name, scored on the semi-synthetic benchmark."""

import numpy as np
import pytest

from roisynth import datasets
from roisynth.base import BaseSynthesizer
from roisynth.evaluation._benchmark import QUICK_EPOCHS, benchmark_models, run_semisynthetic


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


@pytest.fixture(scope="module")
def scores():
    cn = datasets.simulate_cohort(n=700, diagnosis={"CN": 1.0}, random_state=1)
    data = datasets.make_semisynthetic(cn[["age", "sex", "icv", *datasets.roi_names()]], random_state=1)
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
