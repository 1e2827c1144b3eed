"""No model file holds a training row or a training cell value (issue 16, "shareable by construction").

Every registered estimator is fitted with its small configuration of ``tests/test_common.py``
(and a few settings that keep more of the data, ``EXTRA``) on the bundled cohort's tables,
indexed by ``participant_id`` as a user's table would be, and saved.
The file is read back as stored (``torch.load(..., weights_only=True)``: a JSON metadata string
and a dict of tensors) and searched for

- every numeric training cell: each number of the metadata (at any depth) and each tensor
  element is compared with the training cells in float64 and after rounding both to float32
  (a cell stored as a float32 tensor). The bundled cohort's numeric cells (ROI volumes, age,
  ICV) are non-round floats, so a match is a copied cell, not a coincidence; integer-valued
  cells of magnitude up to ``SMALL_INTEGER`` (codes, counts, a round age) could equal a
  hyperparameter or a size stored in the file, so they are left out of the search;
- every training row: each tensor whose last axis has one entry per ROI is read as rows, as
  stored and mapped back through every (``mean``, ``scale``) pair of ROI-length tensors of the
  file (an estimator keeps its data standardized), and no row may equal a training row of ROI
  volumes to a relative 1e-5 (a float32 copy); a coincidence across all ROIs is out of reach;
- every training identifier: no string of the metadata contains a ``participant_id`` value.

A model that *is* its training data (:class:`~roisynth.KDESynthesizer` keeps its kernels on
the training points) declares it with ``stores_training_data = True``: its ``save`` warns with
:class:`~roisynth.exceptions.TrainingDataWarning`, and the row search must find every training
row in its file (the declaration is honest).
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import roisynth
from roisynth import datasets
from roisynth.base import _REGISTRY
from roisynth.exceptions import TrainingDataWarning

SMALL_INTEGER = 1000  # integer-valued cells up to this magnitude are not searched (see the module docstring)


def _common():
    """tests/test_common.py (the registered estimators' small configurations), imported by path."""
    path = Path(__file__).parents[1] / "test_common.py"
    spec = importlib.util.spec_from_file_location("_roisynth_test_common", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_COMMON = _common()
ROIS = _COMMON.ROIS
NAMES = _COMMON.public_estimators()
EXTRA = {  # settings beyond the contract's configurations that keep more of the data: a spline over age, k-means codes
    "Harmonizer-smooth-age": ("Harmonizer", lambda: roisynth.Harmonizer(covariates=("age", "sex"), smooth=("age",),
                                                                         rois=ROIS)),
    "SalientSubtypes-kmeans": ("SalientSubtypes", lambda: roisynth.SalientSubtypes(
        model=roisynth.LinearContrastive(n_common=2, n_salient=2, random_state=0), n_subtypes=2, method="kmeans",
        n_folds=2, random_state=0)),
}


@pytest.fixture(scope="module")
def data() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The contract's (CN, patients) tables, indexed by their participant_id."""
    cn, pt = _COMMON.cohorts()
    ids = datasets.load_example()["participant_id"]
    return tuple(table.set_axis(pd.Index(ids.loc[table.index], name="participant_id")) for table in (cn, pt))


def training_cells(tables) -> np.ndarray:
    """Distinct numeric cells of ``tables`` (float64), less small integer-valued ones."""
    values = np.concatenate([t.select_dtypes("number").to_numpy(np.float64).ravel() for t in tables])
    small_integer = (values == np.round(values)) & (np.abs(values) <= SMALL_INTEGER)
    return np.unique(values[~small_integer])


def _walk(value, numbers: list, strings: list) -> None:
    """Collect the numbers and strings of decoded JSON (keys included) at any depth."""
    if isinstance(value, dict):
        for key, item in value.items():
            _walk(key, numbers, strings)
            _walk(item, numbers, strings)
    elif isinstance(value, list):
        for item in value:
            _walk(item, numbers, strings)
    elif isinstance(value, str):
        strings.append(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        numbers.append(float(value))


def file_contents(path) -> tuple[np.ndarray, list[str]]:
    """(every number of the metadata and every tensor element as float64, every metadata string) of a model file."""
    payload = torch.load(path, weights_only=True)
    numbers, strings = [], []
    _walk(json.loads(payload["metadata"]), numbers, strings)
    strings += list(payload["tensors"])
    arrays = [np.asarray(numbers, dtype=np.float64)]
    arrays += [t.detach().double().numpy().ravel() for t in payload["tensors"].values() if t.numel()]
    return np.concatenate(arrays), strings


def copied_rows(path, rows: np.ndarray) -> int:
    """Number of training ``rows`` (n × p) found among the rows of the file's p-wide tensors,
    as stored or mapped back by ``x = u * scale + mean`` for each pair of p-long tensors."""
    tensors = {k: t.detach().double().numpy() for k, t in torch.load(path, weights_only=True)["tensors"].items()}
    p = rows.shape[1]
    vectors = [t for t in tensors.values() if t.shape == (p,)]
    maps = [(np.zeros(p), np.ones(p))] + [(m, s) for m in vectors for s in vectors if (s > 0).all()]
    found = np.zeros(len(rows), dtype=bool)
    for t in tensors.values():
        if t.ndim < 2 or t.shape[-1] != p:
            continue
        for mean, scale in maps:
            stored = t.reshape(-1, p) * scale + mean
            for start in range(0, len(stored), 1000):
                close = np.abs(stored[start:start + 1000, None] - rows) <= 1e-5 * np.abs(rows)
                found |= close.all(-1).any(0)
    return int(found.sum())


def copied_cells(stored: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Training ``cells`` found among the ``stored`` numbers, exactly or after rounding both to float32."""
    exact = np.isin(cells, stored)
    with np.errstate(over="ignore"):
        rounded = np.isin(cells.astype(np.float32), stored[np.isfinite(stored)].astype(np.float32))
    return cells[exact | rounded]


@pytest.fixture(scope="module")
def saved(data, tmp_path_factory) -> dict:
    """name -> (path of the saved fitted estimator, warnings raised by its save)."""
    folder, files = tmp_path_factory.mktemp("model_files"), {}
    for name in [*NAMES, *EXTRA]:
        if name in EXTRA:
            base, make = EXTRA[name]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                estimator = make().fit(*_COMMON.fit_args(base, *data))
        else:
            estimator = _COMMON.fit(name, *data)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            estimator.save(folder / f"{name}.roisynth")
        files[name] = folder / f"{name}.roisynth", [w.category for w in caught]
    return files


CASES = [name for name in NAMES if not _REGISTRY[name].stores_training_data] + list(EXTRA)


@pytest.mark.parametrize("name", CASES)
def test_model_file_holds_no_training_value(name, data, saved):
    path, caught = saved[name]
    stored, strings = file_contents(path)
    cells = training_cells(_COMMON.fit_args(EXTRA.get(name, (name,))[0], *data))
    copied = copied_cells(stored, cells)
    assert copied.size == 0, f"{name} stores {copied.size} training cell value(s), e.g. {copied[:3].tolist()}"
    rows = np.concatenate([table[ROIS].to_numpy(np.float64) for table in data])
    assert copied_rows(path, rows) == 0, f"{name} stores training rows of ROI volumes"
    ids = [pid for pid in data[0].index.append(data[1].index) if any(pid in s for s in strings)]
    assert not ids, f"{name} stores training participant_id value(s), e.g. {ids[:3]}"
    assert TrainingDataWarning not in caught


def test_only_declared_models_store_training_data():
    declared = sorted(name for name in NAMES if _REGISTRY[name].stores_training_data)
    assert declared == ["KDESynthesizer"]


@pytest.mark.parametrize("name", [name for name in NAMES if _REGISTRY[name].stores_training_data])
def test_models_that_are_their_data_say_so(name, data, saved):
    path, caught = saved[name]
    assert TrainingDataWarning in caught
    rows = np.concatenate([table[ROIS].to_numpy(np.float64) for table in data])
    assert copied_rows(path, rows) == len(rows)


def test_mixture_components_on_single_rows_are_refused(data):
    """A Gaussian mixture with about one component per row would store the rows as its means."""
    with pytest.raises(ValueError, match="near copy of real subjects"):
        roisynth.GaussianMixtureSynthesizer(n_components=100, random_state=0).fit(data[0][ROIS])


def test_a_pipeline_around_a_kde_warns_at_save(data, tmp_path):
    cn, pt = data
    pipe = roisynth.make_pipeline(roisynth.CovariateResidualizer(covariates=["age"]),
                                  roisynth.KDESynthesizer(bandwidth=0.5, random_state=0))
    pipe.fit(cn.assign(age=np.linspace(60, 80, len(cn))), pt.assign(age=np.linspace(62, 84, len(pt))))
    with pytest.warns(TrainingDataWarning, match="training rows of this KDESynthesizer"):
        pipe.save(tmp_path / "pipe.roisynth")
