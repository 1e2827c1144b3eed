"""evaluate(): every metric next to its real-data reference, on generators whose quality is known."""

import numpy as np
import pandas as pd
import pytest

from roisynth.evaluation import evaluate, flatten

P = 12
COLUMNS = [f"roi{i}" for i in range(P)]
SHIFT = np.r_[np.full(3, -1.0), np.zeros(P - 3)]  # the target cohort is atrophied in 3 ROIs
LOADINGS = np.random.default_rng(42).uniform(-1, 1, size=(2, P))  # two factors: varied correlations


def _draw(rng, n, cohort):
    mean = 100 + 10 * (SHIFT if cohort == "target" else 0)
    values = rng.normal(size=(n, 2)) @ LOADINGS + 0.7 * rng.normal(size=(n, P))
    return pd.DataFrame(mean + 10 * values, columns=COLUMNS)


class Oracle:
    """Draws fresh subjects from the true distributions: a perfect generator."""

    def sample(self, n, cohort="target", random_state=None):
        return _draw(np.random.default_rng(random_state), n, cohort)


class Copier:
    """Returns its training rows: perfect-looking and a privacy disaster."""

    def __init__(self, train):
        self.train = dict(zip(("background", "target"), train))

    def sample(self, n, cohort="target", random_state=None):
        return self.train[cohort].iloc[:n].reset_index(drop=True)


@pytest.fixture(scope="module")
def tables():
    rng = np.random.default_rng(0)
    train = (_draw(rng, 400, "background"), _draw(rng, 400, "target"))
    test = (_draw(rng, 300, "background"), _draw(rng, 300, "target"))
    return train, test


def test_a_perfect_generator_scores_like_real_data(tables):
    table = evaluate(Oracle(), *tables, n_bootstrap=100)
    for name in ("w2_background", "w2_target", "correlation_r_background", "effect_map_r", "tstr_auc"):
        assert table.loc[name, "ratio"] == pytest.approx(1, abs=0.12), name
    # W2 between the two synthetic cohorts vs between the two real ones: both noisy (SD ≈ 4 %)
    assert table.loc["w2_unpaired", "ratio"] == pytest.approx(1, abs=0.2)
    for name in ("w2_background", "w2_target", "w2_unpaired"):  # centered intervals hold the value
        assert table.loc[name, "low"] < table.loc[name, "value"] < table.loc[name, "high"]
    assert abs(table.loc["detection_auc_target", "value"] - 0.5) < 0.08
    assert table.loc["dcr_ratio", "value"] == pytest.approx(1, abs=0.1)
    assert abs(table.loc["membership_auc", "value"] - 0.5) < 0.08
    attacks = [n for n in table.index if n.startswith(("singling_out", "linkability", "inference_"))]
    assert len(attacks) == 6 and (table.loc[attacks, "low"] == 0).all()  # every risk interval covers 0
    assert table.loc["exact_rows", "value"] == 0
    # cells equal at float32 precision (7 digits) by chance: a few in 9600, far below the 1 % flag
    assert table.loc["exact_cells", "value"] < 0.001 * 800 * P
    # fresh draws of 400 per cohort: as close to the held-out d as 400 real rows, within the noise of d
    # at these sizes (over seeds of the draws, 90 % of scales in [0.97, 1.15], of ratios in [0.70, 1.38])
    assert table.loc["effect_map_rmse", "ratio"] == pytest.approx(1, abs=0.4)
    assert table.loc["effect_map_scale", "value"] == pytest.approx(1, abs=0.2)


def test_a_copier_is_flagged_by_the_privacy_rows(tables):
    table = evaluate(Copier(tables[0]), *tables, n_bootstrap=0)
    assert table.loc["dcr_ratio", "value"] < 0.01 and table.loc["membership_auc", "value"] > 0.95
    assert table.loc[["w2_background", "w2_target", "w2_unpaired"], ["low", "high"]].isna().all().all()  # no bootstrap
    attacks = [n for n in table.index if n.startswith(("singling_out", "linkability", "inference_"))]
    assert (table.loc[attacks, "low"] > 0.1).all()  # the audit flags every attack
    assert table.loc["exact_rows", "value"] == 800 and table.loc["exact_cells", "value"] == 800 * P
    # the training rows themselves reproduce the training effects exactly
    assert table.loc["effect_map_scale", "value"] == pytest.approx(1.0)
    assert table.loc["effect_map_rmse", "ratio"] == pytest.approx(1.0)


def test_a_generator_that_misses_the_disease_is_caught(tables):
    class NoDisease(Oracle):
        def sample(self, n, cohort="target", random_state=None):
            return super().sample(n, "background", random_state)

    table = evaluate(NoDisease(), *tables, n_bootstrap=0)
    assert table.loc["w2_target", "ratio"] > 1.5
    assert table.loc["w2_unpaired", "ratio"] < 0.8  # the synthetic cohorts are too close to each other
    # a classifier trained to tell two samples of one distribution apart learns noise
    assert table.loc["tstr_auc", "ratio"] < 0.9
    assert abs(table.loc["effect_map_scale", "value"]) < 0.2  # no effect left: noise around 0
    assert table.loc["effect_map_rmse", "ratio"] > 3


def test_effect_scale_is_undefined_without_any_effect(tables):
    train, test = tables
    null = (train[0], train[0].sample(frac=1.0, random_state=0))  # two samples of the same cohort
    table = evaluate(Oracle(), null, test, n_bootstrap=0)
    assert np.isnan(table.loc["effect_map_scale", "value"]) and np.isfinite(table.loc["effect_map_rmse", "ratio"])


def test_flatten_names_every_column(tables):
    record = flatten(evaluate(Oracle(), *tables, n_bootstrap=20))
    assert {"w2_target", "w2_target_low", "w2_target_high", "w2_target_reference", "w2_target_ratio",
            "membership_auc", "membership_auc_reference"} <= set(record)
    assert "membership_auc_ratio" not in record and "mmd_target_low" not in record
