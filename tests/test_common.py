"""The estimator contract, checked once for every public estimator.

The estimators are those that :class:`roisynth.base.Persistent` registers, less the abstract
bases; each needs one small, fast configuration in ``CONFIGS`` (a test fails for a registered
estimator without one), and is fitted once per module. Invalid hyperparameters are derived
from each class's declared ``_parameter_constraints``, so a new estimator is covered by
registering it here.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import numbers
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError

import roisynth
from roisynth import datasets
from roisynth.base import _REGISTRY
from roisynth.exceptions import PairingNotSupportedError
from roisynth.utils._param_validation import Interval, Options, make_constraint

ROIS = datasets.roi_names()[:6]
COVARIATES = ["age", "sex", "icv"]
QUICK = {"verbose": False, "random_state": 0}


def _linear():
    return roisynth.LinearContrastive(n_common=2, n_salient=2, random_state=0)


CONFIGS = {
    "ContrastiveVAE": lambda: roisynth.ContrastiveVAE(epochs=3, **QUICK),
    "ConditionalVAE": lambda: roisynth.ConditionalVAE(epochs=3, **QUICK),
    "LinearContrastive": _linear,
    "GaussianMixtureSynthesizer": lambda: roisynth.GaussianMixtureSynthesizer(max_components=2, random_state=0),
    "KDESynthesizer": lambda: roisynth.KDESynthesizer(random_state=0),
    "CausalROIModel": lambda: roisynth.CausalROIModel(rois=ROIS, transforms=0, epochs=3, **QUICK),
    "SalientSubtypes": lambda: roisynth.SalientSubtypes(model=_linear(), n_subtypes=2, n_folds=2, random_state=0),
    "SmileGAN": lambda: roisynth.SmileGAN(n_subtypes=2, max_iter=20, eval_every=5, max_retries=0, **QUICK),
    "SurrealGAN": lambda: roisynth.SurrealGAN(n_patterns=2, n_folds=2, max_iter=10, inverse_iter=20, max_retries=0,
                                              **QUICK),
    "Harmonizer": lambda: roisynth.Harmonizer(covariates=("age", "sex"), smooth=(), rois=ROIS),
    "CovariateResidualizer": lambda: roisynth.CovariateResidualizer(rois=ROIS),
    "SynthesisPipeline": lambda: roisynth.SynthesisPipeline(
        [("residualizer", roisynth.CovariateResidualizer()), ("model", _linear())], rois=ROIS, random_state=0),
}
TRANSFORMERS = ("Harmonizer", "CovariateResidualizer")  # fitted on one table with site and covariates
WHOLE_TABLES = ("CausalROIModel", "SynthesisPipeline")  # fitted on tables with covariates besides the ROIs


def cohorts() -> tuple[pd.DataFrame, pd.DataFrame]:
    """200 CN and 200 MCI/AD subjects of the bundled cohort: site, covariates, diagnosis, a few ROIs."""
    table = datasets.load_example()[["site", *COVARIATES, "diagnosis", *ROIS]]
    return table[table.diagnosis == "CN"].iloc[:200], table[table.diagnosis != "CN"].iloc[:200]


def fit_args(name: str, cn: pd.DataFrame, pt: pd.DataFrame) -> tuple:
    if name in TRANSFORMERS:
        return (cn,)
    return (cn, pt) if name in WHOLE_TABLES else (cn[ROIS], pt[ROIS])


def query(name: str, pt: pd.DataFrame) -> pd.DataFrame:
    """Rows to predict or transform with a fitted estimator."""
    return pt.iloc[:20] if name in TRANSFORMERS or name in WHOLE_TABLES else pt[ROIS].iloc[:20]


def output(estimator, rows: pd.DataFrame) -> pd.DataFrame:
    """What the estimator makes: a seeded sample, subtype probabilities or a transformed table."""
    if hasattr(estimator, "sample"):
        return estimator.sample(20, random_state=1)
    if hasattr(estimator, "predict_proba"):
        return estimator.predict_proba(rows)
    return estimator.transform(rows)


def fit(name: str, cn: pd.DataFrame, pt: pd.DataFrame):
    estimator = CONFIGS[name]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny schedules do not converge
        assert estimator.fit(*fit_args(name, cn, pt)) is estimator
    return estimator


def digest(frame: pd.DataFrame) -> str:
    return hashlib.sha256(frame.to_csv(float_format="%.17g").encode()).hexdigest()


def fingerprints() -> dict[str, str]:
    """Hash of every configuration's output after a fit (run in a fresh process by a test)."""
    cn, pt = cohorts()
    return {name: digest(output(fit(name, cn, pt), query(name, pt))) for name in CONFIGS}


@pytest.fixture(scope="module")
def data():
    return cohorts()


@pytest.fixture(scope="module")
def fitted(data):
    return {name: fit(name, *data) for name in CONFIGS}


def public_estimators() -> list[str]:
    return sorted(name for name, cls in _REGISTRY.items() if not inspect.isabstract(cls) and not name.startswith("_"))


NAMES = sorted(CONFIGS)


def test_every_registered_estimator_has_a_configuration():
    assert public_estimators() == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_constructor_is_keyword_only(name):
    positional = {"steps"} if name == "SynthesisPipeline" else set()
    parameters = list(inspect.signature(_REGISTRY[name].__init__).parameters.values())[1:]
    assert {p.name for p in parameters if p.kind is not p.KEYWORD_ONLY} == positional
    assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in parameters if p.name in positional)


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_has_declared_constraints(name):
    estimator = CONFIGS[name]()
    assert set(type(estimator)._parameter_constraints) == set(estimator.get_params(deep=False))


def _plain(params: dict) -> dict:
    """Parameters that are not estimators (clone copies those, so they compare by type)."""
    return {k: type(v) if isinstance(v, BaseEstimator) else v for k, v in params.items() if k != "steps"}


@pytest.mark.parametrize("name", NAMES)
def test_clone_get_params_set_params(name):
    estimator = CONFIGS[name]()
    params = estimator.get_params(deep=False)
    copy = clone(estimator)
    assert copy is not estimator and _plain(copy.get_params(deep=False)) == _plain(params)
    changed = "random_state" if "random_state" in params else "fit_on"
    assert copy.set_params(**{changed: 7}) is copy and copy.get_params()[changed] == 7
    assert estimator.get_params()[changed] == params[changed]
    assert copy.set_params(**params) is copy
    assert _plain(copy.get_params(deep=False)) == _plain(params)


@pytest.mark.parametrize("name", NAMES)
def test_not_fitted_error_before_fit(name, data, tmp_path):
    estimator = CONFIGS[name]()
    with pytest.raises(NotFittedError):
        output(estimator, query(name, data[1]))
    with pytest.raises(NotFittedError):
        estimator.save(tmp_path / "unfitted.roisynth")


@pytest.mark.parametrize("name", NAMES)
def test_save_load_gives_identical_outputs(name, fitted, data, tmp_path):
    estimator, rows = fitted[name], query(name, data[1])
    path = tmp_path / f"{name}.roisynth"
    estimator.save(path)
    for loaded in (type(estimator).load(path), roisynth.load(path)):
        assert type(loaded) is type(estimator)
        assert _plain(loaded.get_params(deep=False)).keys() == _plain(estimator.get_params(deep=False)).keys()
        pd.testing.assert_frame_equal(output(loaded, rows), output(estimator, rows))
        if getattr(estimator, "can_pair", False):
            for a, b in zip(loaded.sample_paired(10, random_state=2), estimator.sample_paired(10, random_state=2)):
                pd.testing.assert_frame_equal(a, b)
            pd.testing.assert_frame_equal(loaded.counterfactual(rows, to="background"),
                                          estimator.counterfactual(rows, to="background"))
        if hasattr(estimator, "transform") and hasattr(estimator, "sample"):
            pd.testing.assert_frame_equal(loaded.transform(rows), estimator.transform(rows))


@pytest.mark.parametrize("name", NAMES)
def test_output_columns_order_and_dtype(name, fitted, data):
    estimator, rows = fitted[name], query(name, data[1])
    out = output(estimator, rows)
    if name in TRANSFORMERS:
        assert list(out.columns) == list(rows.columns) and (out.index == rows.index).all()
    elif hasattr(estimator, "sample"):
        expected = {"CausalROIModel": [*COVARIATES, "diagnosis"], "SynthesisPipeline": COVARIATES}.get(name, [])
        assert list(out.columns) == [*expected, *ROIS] and len(out) == 20
    else:
        assert list(out.columns) == [f"subtype_{k}" for k in range(1, estimator.n_subtypes_ + 1)] \
            if hasattr(estimator, "n_subtypes_") else list(out.columns) == ["subtype_1", "subtype_2"]
    roi_dtypes = out[ROIS].dtypes if not name.startswith(("Salient", "Smile")) else out.dtypes
    assert all(pd.api.types.is_float_dtype(d) for d in roi_dtypes) and roi_dtypes.nunique() == 1


@pytest.mark.parametrize("name", [n for n in NAMES if hasattr(CONFIGS[n](), "can_pair")])
def test_can_pair_agrees_with_pairing_not_supported_error(name, fitted, data):
    estimator = fitted[name]
    if estimator.can_pair:
        healthy, disease = estimator.sample_paired(5, random_state=1)
        assert healthy.shape == disease.shape and list(healthy.columns) == list(disease.columns)
        return
    with pytest.raises(PairingNotSupportedError):
        estimator.sample_paired(5)
    with pytest.raises(PairingNotSupportedError):
        estimator.counterfactual(query(name, data[1]), to="target")


def test_same_random_state_gives_identical_outputs_in_a_fresh_process(fitted, data):
    script = f"import runpy, json; print(json.dumps(runpy.run_path({str(Path(__file__))!r})['fingerprints']()))"
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    here = {name: digest(output(fitted[name], query(name, data[1]))) for name in NAMES}
    assert json.loads(run.stdout.strip().splitlines()[-1]) == here


def invalid_values(rules: list) -> list:
    """Values just outside each declared constraint (and a foreign object) that satisfy none of ``rules``."""
    constraints = [make_constraint(rule) for rule in rules]
    candidates = [object()]
    for constraint in constraints:
        if isinstance(constraint, Interval):
            closed_left, closed_right = constraint.closed in ("left", "both"), constraint.closed in ("right", "both")
            candidates += [constraint.left - closed_left] if constraint.left is not None else []
            candidates += [constraint.right + closed_right] if constraint.right is not None else []
            if constraint.type is numbers.Integral:
                candidates.append(1.5)
        elif isinstance(constraint, Options):
            candidates.append("not-an-option")
    return [v for v in candidates if not any(c.is_satisfied_by(v) for c in constraints)]


@pytest.mark.parametrize("name", NAMES)
def test_invalid_hyperparameters_are_rejected_by_name(name, data):
    args = fit_args(name, *data)
    for param, rules in type(CONFIGS[name]())._parameter_constraints.items():
        for value in invalid_values(rules):
            estimator = CONFIGS[name]().set_params(**{param: value})
            with pytest.raises((ValueError, TypeError), match=re.escape(f"{name}: {param}={value!r} is not valid")):
                estimator.fit(*args)
