"""Privacy metrics flag a synthesizer that copies its training rows and pass fresh draws."""

import numpy as np
import pandas as pd
import pytest

from roisynth.metrics import distance_to_closest_record, membership_inference_auc, nndr

D = 12


@pytest.fixture(scope="module")
def population():
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(D, D)) / 2 + np.eye(D)
    columns = [f"roi{i}" for i in range(D)]
    return lambda n: pd.DataFrame(rng.normal(size=(n, D)) @ mixing * 100 + 5000, columns=columns)


def test_a_synthesizer_returning_its_training_rows_is_flagged(population):
    train, holdout = population(300), population(300)
    copies = train.sample(frac=1.0, random_state=0).reset_index(drop=True)
    dcr = distance_to_closest_record(copies, train, holdout)
    assert dcr["synthetic_median"] == 0 and dcr["ratio"] == 0
    assert dcr["holdout_median"] > 1  # z-score units: new subjects are not near-duplicates
    assert nndr(copies, train) == 0
    assert membership_inference_auc(copies, train, holdout, random_state=0) == 1.0
    assert membership_inference_auc(copies, train, holdout, method="density", random_state=0) > 0.9


def test_fresh_draws_from_the_population_pass(population):
    train, holdout, fresh = population(300), population(300), population(300)
    dcr = distance_to_closest_record(fresh, train, holdout)
    assert dcr["ratio"] == pytest.approx(1, abs=0.1)
    assert nndr(fresh, train) > 0.8
    for method in ("distance", "density"):
        auc = membership_inference_auc(fresh, train, holdout, method=method, random_state=0)
        assert auc == pytest.approx(0.5, abs=0.08)


def test_distances_use_training_z_scores_and_equal_size_candidates(population):
    train, holdout, fresh = population(200), population(120), population(150)
    # rescaling every table by the same units changes nothing: distances are in training SDs
    scaled = [t * 1000 for t in (fresh, train, holdout)]
    assert distance_to_closest_record(*scaled) == pytest.approx(distance_to_closest_record(fresh, train, holdout))
    auc = membership_inference_auc(fresh, train, holdout, random_state=1)
    assert auc == membership_inference_auc(fresh, train, holdout, random_state=1)
    with pytest.raises(ValueError, match="method"):
        membership_inference_auc(fresh, train, holdout, method="shadow")
    with pytest.raises(ValueError, match="holdout columns differ"):
        distance_to_closest_record(fresh, train, holdout.iloc[:, 1:])
