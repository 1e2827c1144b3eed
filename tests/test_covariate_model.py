"""CovariateModel: covariates generated from parameters (never copied), conditional sampling, its errors."""

import json

import numpy as np
import pandas as pd
import pytest

from roisynth import datasets
from roisynth.covariate_model import CovariateModel


@pytest.fixture(scope="module")
def table():
    return datasets.load_example()[["site", "age", "sex", "icv"]]


@pytest.fixture(scope="module")
def model(table):
    return CovariateModel(random_state=0).fit(table)


def test_joint_distribution_is_reproduced_without_copying(model, table):
    drawn = model.sample(6000, random_state=1)
    assert list(drawn.columns) == list(table.columns)
    # cell frequencies (site x sex), conditional means (ICV by sex, age by site), spread
    real = pd.crosstab(table.site, table.sex, normalize=True)
    synthetic = pd.crosstab(drawn.site, drawn.sex, normalize=True)
    assert np.abs(real - synthetic).to_numpy().max() < 0.015
    np.testing.assert_allclose(drawn.groupby("sex").icv.mean(), table.groupby("sex").icv.mean(), rtol=0.01)
    np.testing.assert_allclose(drawn.groupby("site").age.mean(), table.groupby("site").age.mean(), atol=1.5)
    np.testing.assert_allclose(drawn[["age", "icv"]].std(), table[["age", "icv"]].std(), rtol=0.06)
    assert np.corrcoef(drawn.age, drawn.icv)[0, 1] == pytest.approx(np.corrcoef(table.age, table.icv)[0, 1], abs=0.05)
    # no real value comes back, no real (age, icv) pair, nothing outside the widened support
    assert not drawn.age.isin(table.age).any() and not drawn.icv.isin(table.icv).any()
    assert drawn.age.between(*model.bounds_[0]).all()


def test_parameters_hold_no_training_value(model, table):
    numbers = []

    def collect(value):
        if isinstance(value, dict):
            [collect(v) for v in value.values()]
        elif isinstance(value, list):
            [collect(v) for v in value]
        elif isinstance(value, float):
            numbers.append(value)

    collect(json.loads(json.dumps(model.to_json())))
    assert numbers and not set(numbers) & set(table.age) | set(numbers) & set(table.icv)


def test_conditions_fixed_values_sets_and_ranges(model):
    drawn = model.sample(800, conditions={"sex": "F", "age": (70, 80), "site": ["site1", "site2"]}, random_state=2)
    assert set(drawn.sex) == {"F"} and set(drawn.site) <= {"site1", "site2"}
    assert drawn.age.between(70, 80, inclusive="left").all()
    # a fixed continuous value is conditioned on exactly; others follow it (ICV given sex)
    women, men = (model.sample(2000, conditions={"sex": s, "age": 75.0}, random_state=3) for s in "FM")
    assert (women.age == 75.0).all() and men.icv.mean() - women.icv.mean() > 1e5
    rows = pd.DataFrame({"age": [60.0, np.nan, 85.5], "sex": ["M", "F", None]})
    drawn = model.sample(conditions=rows, random_state=4)
    assert drawn.age.iloc[[0, 2]].tolist() == [60.0, 85.5] and drawn.sex.iloc[:2].tolist() == ["M", "F"]


def test_reproducible_and_round_trips_through_json(model):
    again = CovariateModel.from_json(json.loads(json.dumps(model.to_json())))
    pd.testing.assert_frame_equal(again.sample(50, random_state=5), model.sample(50, random_state=5))
    pd.testing.assert_frame_equal(model.sample(50, random_state=5), model.sample(50, random_state=5))


@pytest.mark.parametrize("conditions, message", [
    ({"age": (130, 140)}, r"conditions\['age'\] = \[130, 140\) does not meet the training support"),
    ({"age": 101}, r"conditions\['age'\] = 101 lies outside the training support"),
    ({"site": "site9"}, r"conditions\['site'\] = 'site9' is not among the training values"),
    ({"scanner": "x"}, r"column\(s\) \['scanner'\] that the covariate model does not have"),
    ({"sex": (0, 1)}, r"a \(low, high\) range is for continuous columns"),
    ({"age": [70, 71]}, "give a continuous column a value or a"),
])
def test_conditions_outside_the_support_are_refused(model, conditions, message):
    with pytest.raises(ValueError, match=message):
        model.sample(10, conditions=conditions)


def test_whole_number_columns_stay_whole_and_categorical_codes(table):
    coded = table.assign(age=table.age.round().astype(int), sex=(table.sex == "M").astype(int))
    model = CovariateModel(random_state=0).fit(coded)
    assert model.categorical_ == ["site", "sex"]
    drawn = model.sample(500, random_state=0)
    assert drawn.age.dtype == np.int64 and set(drawn.sex) <= {0, 1}
    only_categories = CovariateModel(random_state=0).fit(table[["site", "sex"]])
    assert set(only_categories.sample(200, random_state=0).site) == set(table.site)


def test_fit_errors_name_the_column(table):
    with pytest.raises(ValueError, match=r"column\(s\) \['age'\] have missing values"):
        CovariateModel().fit(table.assign(age=np.where(np.arange(len(table)) == 3, np.nan, table.age)))
    with pytest.raises(ValueError, match=r"categorical: column\(s\) \['scanner'\]"):
        CovariateModel(categorical=["scanner"]).fit(table)
