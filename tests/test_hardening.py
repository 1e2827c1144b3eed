"""Issue 17: nothing lost, nothing silently wrong, every bad input a clear error.

Atomic writes (a failed write leaves the previous file and no temporary), the CLI's output
checks and one-line errors, the shared validation layer (float32 range, plausibility bounds,
random_state, non-finite outputs), model files validated on load, column names kept through
save/load — and a property-based test feeding every registered estimator and entry point the
same categories of bad input.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import resource
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import roisynth
from roisynth import GaussianMixtureSynthesizer, LinearContrastive, SmileGAN, make_pipeline
from roisynth.cli import main
from roisynth.exceptions import InvalidParameterError
from roisynth.io import read_table, write_table
from roisynth.preprocessing import CovariateResidualizer
from roisynth.utils import persistence
from roisynth.utils.atomic import atomic_output
from roisynth.utils.validation import FLOAT32_MAX, is_random_state, plausibility_checks


def _common():
    """tests/test_common.py (the registered estimators' small configurations), imported by path."""
    spec = importlib.util.spec_from_file_location("_roisynth_test_common", Path(__file__).with_name("test_common.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_COMMON = _common()
CONFIGS, cohorts, fit, fit_args, query = (_COMMON.CONFIGS, _COMMON.cohorts, _COMMON.fit, _COMMON.fit_args,
                                          _COMMON.query)
ROIS = _COMMON.ROIS


@pytest.fixture(scope="module")
def data():
    return cohorts()


@pytest.fixture(scope="module")
def fitted(data):
    return {name: fit(name, *data) for name in CONFIGS}


@pytest.fixture(scope="module")
def linear(data):
    cn, pt = data
    return LinearContrastive(n_common=2, n_salient=2, random_state=0).fit(cn[ROIS], pt[ROIS])


@pytest.fixture(scope="module")
def files(tmp_path_factory, data, linear):
    """A folder with a model file and a table of the cohorts."""
    folder = tmp_path_factory.mktemp("files")
    linear.save(folder / "model.roisynth")
    cn, pt = data
    pd.concat([cn, pt]).to_csv(folder / "cohort.csv", index=False)
    return folder


def _leftovers(folder) -> list[str]:
    return [name for name in os.listdir(folder) if ".tmp" in name]


def _run(argv) -> tuple[int, str]:
    """``roisynth.cli.main(argv)``: exit code and stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main([str(a) for a in argv])
    return code, err.getvalue()


# -- 2. writes are whole or not at all -----------------------------------------------------------
class _Boom(Exception):
    pass


def _half_then_fail(path, *args, **kwargs):
    with open(path, "w") as handle:
        handle.write("half a ro")
    raise _Boom


@pytest.mark.parametrize("interrupt", [_Boom, KeyboardInterrupt])
def test_failed_table_write_keeps_the_previous_file(tmp_path, monkeypatch, interrupt):
    path = tmp_path / "out.csv"
    write_table(pd.DataFrame({"a": [1.0]}), path)
    before = path.read_bytes()

    def fail(self, target, *args, **kwargs):
        _half_then_fail(target)

    monkeypatch.setattr(pd.DataFrame, "to_csv", fail if interrupt is _Boom else
                        lambda self, target, *a, **k: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(interrupt):
        write_table(pd.DataFrame({"a": [2.0]}), path)
    assert path.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_failed_parquet_and_model_and_nifti_writes_leave_nothing(tmp_path, monkeypatch, linear):
    table = tmp_path / "out.parquet"
    monkeypatch.setattr(pd.DataFrame, "to_parquet", lambda self, target, *a, **k: _half_then_fail(target))
    with pytest.raises(_Boom):
        write_table(pd.DataFrame({"a": [2.0]}), table)
    assert not table.exists()

    model = tmp_path / "model.roisynth"
    linear.save(model)
    before = model.read_bytes()
    monkeypatch.setattr(persistence.torch, "save", lambda obj, target: _half_then_fail(target))
    with pytest.raises(_Boom):
        linear.save(model)
    assert model.read_bytes() == before

    nib = pytest.importorskip("nibabel")
    from roisynth.imaging.nifti import save_nifti

    monkeypatch.setattr(nib, "save", lambda image, target: _half_then_fail(target))
    with pytest.raises(_Boom):
        save_nifti(tmp_path / "image.nii.gz", np.zeros((2, 2, 2)), np.eye(4))
    assert not (tmp_path / "image.nii.gz").exists()
    assert _leftovers(tmp_path) == []


def test_disk_full_keeps_the_previous_table(tmp_path):
    path = tmp_path / "big.csv"
    write_table(pd.DataFrame({"a": [1.0]}), path)
    code = ("import numpy as np, pandas as pd, sys; from roisynth.io import write_table\n"
            "try:\n    write_table(pd.DataFrame(np.random.rand(200000, 8)), sys.argv[1])\n"
            "except OSError as exc:\n    print(exc); sys.exit(3)\n")

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    done = subprocess.run([sys.executable, "-c", code, str(path)], preexec_fn=limit, capture_output=True, text=True)
    assert done.returncode == 3, done.stderr
    assert "cannot write" in done.stdout and str(path) in done.stdout
    assert read_table(path)["a"].tolist() == [1.0]
    assert _leftovers(tmp_path) == []


def test_outputs_missing_folders_are_created_and_folders_refused(tmp_path, linear):
    linear.save(tmp_path / "new" / "deeper" / "model.roisynth")
    assert roisynth.load(tmp_path / "new" / "deeper" / "model.roisynth").n_features_in_ == len(ROIS)
    with pytest.raises(IsADirectoryError, match="is a folder"):
        linear.save(tmp_path / "new")
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder"):
        write_table(pd.DataFrame({"a": [1.0]}), tmp_path / "folder.csv")
    with atomic_output(tmp_path / "ok.txt") as tmp:
        open(tmp, "w").write("done")
    assert (tmp_path / "ok.txt").read_text() == "done"


# -- 1. the CLI never destroys its input ----------------------------------------------------------
@pytest.mark.parametrize("command", [
    ["fit", "{table}", "-o", "{table}", "--rois", "numeric", "--epochs", "1"],
    ["counterfactual", "{model}", "{table}", "-o", "{table}"],
    ["counterfactual", "{model}", "{table}", "-o", "{link}"],
    ["harmonize", "{table}", "-o", "{table}"],
    ["sample", "{model}", "-n", "3", "-o", "{model}"],
    ["fit", "{table}", "-o", "{other_csv}", "--epochs", "1"],
    ["harmonize", "{table}", "-o", "{tmp}/h.csv", "--save", "{other_csv}"],
])
def test_cli_refuses_to_overwrite_inputs_and_other_kinds(tmp_path, files, command):
    table, model = tmp_path / "cohort.csv", tmp_path / "model.roisynth"
    table.write_bytes((files / "cohort.csv").read_bytes())
    model.write_bytes((files / "model.roisynth").read_bytes())
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    (tmp_path / "link.csv").symlink_to(table)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    names = {"table": table, "model": model, "link": tmp_path / "link.csv", "other_csv": tmp_path / "other.csv",
             "tmp": tmp_path}
    code, err = _run([part.format(**names) for part in command])
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "refusing" in err
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def test_cli_user_errors_are_one_line(tmp_path, files):
    (tmp_path / "semi.csv").write_text("a;b\n1;2\n")
    (tmp_path / "out").mkdir()
    model = files / "model.roisynth"
    cases = [
        (["counterfactual", model, tmp_path / "semi.csv", "-o", tmp_path / "t.csv"], "semicolons"),
        (["sample", model, "-n", "3", "-o", tmp_path / "out"], "is a folder"),
        (["sample", model, "-n", str(10**13), "-o", tmp_path / "s.csv"], "GB free"),   # streamed: disk, not memory
        (["sample", model, "-n", "3", "--random-state", "-1", "-o", tmp_path / "s.csv"], "random_state"),
        (["sample", files / "cohort.csv", "-n", "3", "-o", tmp_path / "s.csv"], "cohort.csv"),
    ]
    for argv, message in cases:
        code, err = _run(argv)
        assert code == 2, argv
        assert err.count("\n") == 1 and "Traceback" not in err and message in err, err
    with pytest.raises(ValueError, match="semicolons"):
        main(["--debug", "counterfactual", str(model), str(tmp_path / "semi.csv"), "-o", str(tmp_path / "t.csv")])


# -- 3. the validation layer ------------------------------------------------------------------------
def test_huge_cells_are_refused_naming_the_cell(data, linear):
    cn, pt = data
    bad = cn[ROIS].copy()
    bad.iloc[3, 1] = 1e39
    with pytest.raises(ValueError, match=rf"background column '{ROIS[1]}' row {bad.index[3]} holds 1e\+39"):
        LinearContrastive(random_state=0).fit(bad, pt[ROIS])
    x = pt[ROIS].iloc[:3].copy()
    x.iloc[0, 0] = 1e300
    for method in (linear.severity, linear.transform, linear.counterfactual):
        with pytest.raises(ValueError, match=rf"X column '{ROIS[0]}'.*float32"):
            method(x)
    litres = LinearContrastive(n_common=2, n_salient=2, random_state=0).fit(cn[ROIS] / 1e6, pt[ROIS] / 1e6)
    x.iloc[0, 0] = FLOAT32_MAX / 1e3   # fits float32, but not once standardized (scale ~1e-4)
    with pytest.raises(ValueError, match="standard deviations"):
        litres.counterfactual(x)


def test_messages_for_complex_empty_and_random_state(data, linear):
    cn, pt = data
    with pytest.raises(TypeError, match="complex-number column"):
        LinearContrastive().fit(cn[ROIS].astype(complex), pt[ROIS])
    with pytest.raises(ValueError, match="X is empty"):
        linear.transform(pt[ROIS].iloc[:0])
    for value in (-1, 2**32, "abc", 1.5):
        with pytest.raises(InvalidParameterError, match="random_state"):
            LinearContrastive(random_state=value).fit(cn[ROIS], pt[ROIS])
        with pytest.raises(ValueError, match="random_state"):
            linear.sample(3, random_state=value)
    assert is_random_state(2**32 - 1) and not is_random_state(True)


def test_plausibility_bounds_and_their_override(data):
    cn, pt = data
    scaled = cn[ROIS] * 1e4   # µm³-like: far above any brain
    with pytest.raises(ValueError, match="plausible volume 2.5e\\+06"):
        GaussianMixtureSynthesizer(random_state=0).fit(scaled)
    with plausibility_checks(False):
        assert GaussianMixtureSynthesizer(random_state=0).fit(scaled).sample(3, cohort="background").shape == (3, 6)


def test_smilegan_refuses_negative_volumes_and_nonfinite_probabilities(data, fitted):
    cn, pt = data
    negative = pt[ROIS].copy()
    negative.iloc[2, 0] = -5.0
    with pytest.raises(ValueError, match="negative volumes"):
        SmileGAN(n_subtypes=2, max_iter=20).fit(cn[ROIS], negative)
    model = fitted["SmileGAN"]
    weights = [w for module in model.modules_ for w in module.state_dict().values() if w.is_floating_point()]
    originals = [w.clone() for w in weights]
    with torch.no_grad():
        for w in weights:
            w.fill_(float("nan"))
    try:
        with pytest.raises(ValueError, match="non-finite subtype probabilities"):
            model.predict(pt[ROIS].iloc[:5])
    finally:
        with torch.no_grad():
            for w, original in zip(weights, originals):
                w.copy_(original)


# -- 4. the pipeline ----------------------------------------------------------------------------------
def test_pipeline_refuses_implausible_covariates_and_never_returns_negative_volumes(data):
    cn, pt = data
    columns = ["age", "sex", "icv", *ROIS]
    pipeline = make_pipeline(CovariateResidualizer(), LinearContrastive(n_common=2, n_salient=2, random_state=0))
    with pytest.raises(ValueError, match="'age' row .* holds 500"):
        pipeline.fit(cn[columns].assign(age=500.0), pt[columns])
    with pytest.raises(ValueError, match="'icv' row .* holds -1"):
        pipeline.fit(cn[columns].assign(icv=-1.0), pt[columns])
    pipeline.fit(cn[columns], pt[columns])
    covariates = pt[["age", "sex", "icv"]].iloc[:3].assign(age=300.0)
    with pytest.raises(ValueError, match="'age' row .* holds 300"):
        pipeline.sample(covariates=covariates)
    with pytest.raises(ValueError, match="'age' row .* holds 1e\\+06"):
        pipeline.counterfactual(pt[columns].iloc[:3].assign(age=1e6))
    with plausibility_checks(False), pytest.warns(RuntimeWarning, match="set to 0"):
        out = pipeline.sample(covariates=covariates.assign(age=1e4))
    assert (out[ROIS].to_numpy() >= 0).all()


# -- 5. model files validated on load ----------------------------------------------------------------------
def _tampered(tmp_path, model, change) -> str:
    path = tmp_path / "model.roisynth"
    model.save(path)
    name, metadata, tensors = persistence.load_model(path)
    change(tensors)
    persistence.save_model(path, name, {k: v for k, v in metadata.items() if k != "versions"}, tensors)
    return path


@pytest.mark.parametrize("change, message", [
    (lambda t: t.__setitem__("scale_", torch.zeros_like(t["scale_"])), "scale_ must be positive"),
    (lambda t: t.__setitem__("scale_", t["scale_"] * float("nan")), "NaN or infinite"),
    (lambda t: t.__setitem__("mean_", t["mean_"][:2]), "mean_ has shape"),
    (lambda t: t.__setitem__("target.covariances_", -t["target.covariances_"]), "positive-definite"),
    (lambda t: t.__setitem__("target.weights_", t["target.weights_"] * 3), "sum to 1"),
])
def test_damaged_model_files_are_refused(tmp_path, fitted, change, message):
    path = _tampered(tmp_path, fitted["GaussianMixtureSynthesizer"], change)
    with pytest.raises(ValueError, match=f"is a damaged GaussianMixtureSynthesizer file .*{message}"):
        roisynth.load(path)


# -- 6. column names keep their type --------------------------------------------------------------------
def test_integer_and_multiindex_column_names_survive_save_and_load(tmp_path, data):
    cn, pt = data
    integers = [pd.DataFrame(t[ROIS].to_numpy()) for t in (cn, pt)]
    model = LinearContrastive(n_common=2, n_salient=2, random_state=0).fit(*integers)
    model.save(tmp_path / "int.roisynth")
    again = roisynth.load(tmp_path / "int.roisynth")
    pd.testing.assert_frame_equal(again.counterfactual(integers[1].head(3)), model.counterfactual(integers[1].head(3)))
    columns = pd.MultiIndex.from_tuples([("volume", r) for r in ROIS])
    multi = [pd.DataFrame(t[ROIS].to_numpy(), columns=columns) for t in (cn, pt)]
    model = GaussianMixtureSynthesizer(max_components=2, random_state=0).fit(*multi)
    model.save(tmp_path / "multi.roisynth")
    again = roisynth.load(tmp_path / "multi.roisynth")
    assert list(again.sample(2).columns) == list(columns)
    pd.testing.assert_series_equal(again.score_samples(multi[1].head(3)), model.score_samples(multi[1].head(3)))


# -- 7. tables that are not what they say ------------------------------------------------------------------
def test_read_table_explains_what_is_wrong(tmp_path):
    (tmp_path / "semi.csv").write_text("a;b\n1,5;2,5\n")
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "excel.csv").write_bytes(b"PK\x03\x04" + bytes(200))
    (tmp_path / "bad.parquet").write_text("not parquet")
    for name, message in [("semi.csv", "semicolons"), ("empty.csv", "is empty"), ("excel.csv", "Excel"),
                          ("bad.parquet", "not a readable Parquet")]:
        with pytest.raises(ValueError, match=message):
            read_table(tmp_path / name)


def test_causal_model_refuses_a_roi_column_with_a_text_cell(data):
    cn, _ = data
    table = cn[["age", "sex", "icv", *ROIS]].astype({ROIS[2]: object})
    table.iloc[4, 5] = "n/a"
    with pytest.raises(ValueError, match=f"'{ROIS[2]}' is numeric except for row"):
        roisynth.CausalROIModel(epochs=1, verbose=False).fit(table)


# -- 8. property-based: every estimator and entry point, the same categories of bad input -------------------
CELLS = [np.nan, np.inf, -np.inf, 1e39, 1e300, -1e300, -5.0, "text", 1 + 2j]
SETTINGS = settings(max_examples=12, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
NAMES = sorted(CONFIGS)
ARGUMENTS = ("background", "target", "X", "table", "covariate", "rois", "random_state", "n=")


def _corrupt(table: pd.DataFrame, kind, row: int, column) -> pd.DataFrame:
    """``table`` with one bad cell, or an empty / one-row / column-less version of it."""
    if kind == "empty":
        return table.iloc[:0]
    if kind == "one row":
        return table.iloc[:1]
    if kind == "missing column":
        return table.drop(columns=[column])
    out = table.astype({column: object if isinstance(kind, str) else complex if isinstance(kind, complex) else float})
    out.iloc[row % len(out), list(out.columns).index(column)] = kind
    return out


def _finite(result) -> None:
    """A result returned instead of an error must be finite."""
    for item in result if isinstance(result, tuple) else (result,):
        if isinstance(item, (pd.DataFrame, pd.Series, np.ndarray)):
            frame = pd.DataFrame(item)
            numeric = frame.select_dtypes("number").to_numpy(dtype=np.float64)
            assert np.isfinite(numeric).all()


def _outcome(call, names) -> None:
    """``call()`` raises a ValueError/TypeError naming one of ``names`` (or an argument), or returns finite output."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = call()
    except (ValueError, TypeError) as exc:
        message = str(exc)
        assert any(str(name) in message for name in (*names, *ARGUMENTS)), message
        return
    _finite(result)


def _apply(estimator, X):
    """The estimator's main method on a table of subjects."""
    if hasattr(estimator, "abduct"):   # CausalROIModel: counterfactuals need an intervention
        return estimator.abduct(X)
    if getattr(estimator, "can_pair", False) and hasattr(estimator, "counterfactual"):
        return estimator.counterfactual(X)
    for method in ("predict_proba", "transform", "score_samples"):
        if hasattr(estimator, method):
            return getattr(estimator, method)(X)
    return None


BAD = st.sampled_from([*CELLS, "empty", "one row", "missing column"])


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(kind=BAD, row=st.integers(0, 199), column=st.sampled_from(ROIS), cohort=st.sampled_from([0, 1]))
def test_property_fit_refuses_bad_tables_or_returns_finite_results(data, name, kind, row, column, cohort):
    args = list(fit_args(name, *data))
    cohort = min(cohort, len(args) - 1)
    args[cohort] = _corrupt(args[cohort], kind, row, column)

    def fit_and_use():
        estimator = CONFIGS[name]().fit(*args)
        return _apply(estimator, query(name, data[1])) if hasattr(estimator, "fit") else None

    _outcome(fit_and_use, [column])


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(kind=BAD, row=st.integers(0, 19), column=st.sampled_from(ROIS))
def test_property_predict_refuses_bad_tables_or_returns_finite_results(data, fitted, name, kind, row, column):
    X = _corrupt(query(name, data[1]), kind, row, column)
    _outcome(lambda: _apply(fitted[name], X), [column])


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(value=st.one_of(st.integers(-2**40, 2**40), st.text(max_size=3), st.floats(allow_nan=True), st.none()))
def test_property_random_state_is_checked_once_with_a_clear_message(fitted, name, value):
    estimator = CONFIGS[name]()
    if "random_state" not in estimator.get_params():
        return
    estimator.set_params(random_state=value)
    from roisynth.utils._param_validation import validate_params

    if is_random_state(value):
        validate_params(estimator)
    else:
        with pytest.raises(InvalidParameterError, match="random_state"):
            validate_params(estimator)
    if hasattr(fitted[name], "sample"):
        _outcome(lambda: fitted[name].sample(3, random_state=value), ["random_state"])


@pytest.mark.parametrize("name", ["SynthesisPipeline", "CausalROIModel", "CovariateResidualizer", "Harmonizer"])
@SETTINGS
@given(column=st.sampled_from(["age", "icv"]), value=st.floats(-1e7, 1e7), row=st.integers(0, 19))
def test_property_out_of_range_covariates_are_refused_or_give_finite_volumes(data, fitted, name, column, value, row):
    X = query(name, data[1]).copy()
    X.iloc[row, list(X.columns).index(column)] = value
    _outcome(lambda: _apply(fitted[name], X), [column])
    if hasattr(fitted[name], "sample") and name == "SynthesisPipeline":
        covariates = X[["age", "sex", "icv"]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                out = fitted[name].sample(covariates=covariates)
            except ValueError as exc:
                assert column in str(exc)
            else:
                assert (out[ROIS].to_numpy() >= 0).all() and np.isfinite(out[ROIS].to_numpy()).all()


def test_damaged_vae_latent_mixture_is_refused_on_load(tmp_path, fitted):
    path = _tampered(tmp_path, fitted["ContrastiveVAE"],
                     lambda t: t.__setitem__("target_latents_.weights", torch.zeros_like(t["target_latents_.weights"])))
    with pytest.raises(ValueError, match="damaged"):
        roisynth.load(path)


@pytest.mark.parametrize("name", sorted(n for n in CONFIGS if n not in ("Harmonizer", "CovariateResidualizer")))
@SETTINGS
@given(damage=st.sampled_from(["nan", "inf", "zeros", "shape"]), pick=st.integers(0, 10**6))
def test_property_damaged_model_files_are_refused_or_load_to_finite_models(tmp_path_factory, fitted, name, damage,
                                                                            pick):
    folder = tmp_path_factory.mktemp("damaged")

    def change(tensors):
        keys = sorted(k for k, v in tensors.items() if v.is_floating_point() and v.numel())
        key = keys[pick % len(keys)]
        value = tensors[key]
        tensors[key] = {"nan": value * float("nan"), "inf": value + float("inf"), "zeros": torch.zeros_like(value),
                        "shape": value.reshape(-1)[:-1] if value.numel() > 1 else value.reshape(1, 1, -1)}[damage]

    path = _tampered(folder, fitted[name], change)

    def load_and_use():
        model = roisynth.load(path)
        return model.sample(5, random_state=0) if hasattr(model, "sample") else None

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = load_and_use()
    except ValueError as exc:
        assert "damaged" in str(exc) or "non-finite" in str(exc), str(exc)
    else:
        _finite(result)


@SETTINGS
@given(kind=st.sampled_from(CELLS), row=st.integers(0, 399), column=st.sampled_from(ROIS),
       n=st.sampled_from([-1, 0, 3, 10**13]))
def test_property_cli_reports_bad_input_in_one_line_and_keeps_its_inputs(tmp_path_factory, files, kind, row, column,
                                                                         n):
    folder = tmp_path_factory.mktemp("cli")
    table = _corrupt(pd.read_csv(files / "cohort.csv"), kind, row, column)
    table.to_csv(folder / "in.csv", index=False)
    before = (folder / "in.csv").read_bytes()
    for argv in (["counterfactual", files / "model.roisynth", folder / "in.csv", "-o", folder / "out.csv"],
                 ["sample", files / "model.roisynth", "-n", n, "-o", folder / "s.csv"]):
        code, err = _run(argv)
        assert code in (0, 2)
        if code == 2:
            assert err.count("\n") == 1 and "Traceback" not in err
        else:
            _finite(read_table(argv[-1]).select_dtypes("number"))
    assert (folder / "in.csv").read_bytes() == before
    assert _leftovers(folder) == []
