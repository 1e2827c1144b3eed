"""Model files: a torch ``state_dict`` plus JSON metadata, loaded with ``weights_only=True``.

A file is one ``torch.save`` of ``{"format", "estimator", "metadata", "tensors"}`` where
``metadata`` is a JSON string (hyperparameters, feature names, versions, training summary)
and ``tensors`` maps names to tensors. Loading never unpickles arbitrary objects.
"""

from __future__ import annotations

import json
import os
import platform
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import torch

from .atomic import atomic_output

FORMAT = "roisynth-model/1"


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def save_model(path, estimator: str, metadata: dict, tensors: dict[str, torch.Tensor]) -> None:
    """Write a model file atomically (a partial write never replaces a good file).

    The payload is written to a temporary file beside ``path``, flushed and renamed over it; on
    any failure the temporary file is removed (:func:`roisynth.utils.atomic.atomic_output`).
    Missing parent folders are created; a ``path`` that is a folder is an ``IsADirectoryError``. The
    versions of roisynth, torch, numpy, pandas and Python are added to the metadata under
    ``"versions"``; tensors are stored detached, on the CPU and contiguous.

    Parameters
    ----------
    path : str or path-like
        Destination file.
    estimator : str
        Name of the estimator class, checked by :func:`load_model`.
    metadata : dict
        JSON-serializable metadata (hyperparameters, feature names, training summary).
    tensors : dict of str to Tensor
        The weights and other arrays.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> from roisynth.utils.persistence import load_model, save_model
    >>> path = os.path.join(tempfile.mkdtemp(), "model.roisynth")
    >>> save_model(path, "Toy", {"alpha": 1.0}, {"weight": torch.ones(2)})
    >>> estimator, metadata, tensors = load_model(path, "Toy")
    >>> estimator, metadata["alpha"], tensors["weight"].tolist()
    ('Toy', 1.0, [1.0, 1.0])
    """
    versions = {p: _version(p) for p in ("roisynth", "torch", "numpy", "pandas")}
    metadata = {**metadata, "versions": versions | {"python": platform.python_version()}}
    payload = {
        "format": FORMAT,
        "estimator": estimator,
        "metadata": json.dumps(metadata),
        "tensors": {k: v.detach().cpu().contiguous() for k, v in tensors.items()},
    }
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)


def load_model(path, estimator: str | None = None) -> tuple[str, dict, dict[str, torch.Tensor]]:
    """Read a model file; ``ValueError`` for anything that is not a roisynth model file.

    The file is read with ``torch.load(..., weights_only=True)`` on the CPU, so no arbitrary
    object is unpickled.

    Parameters
    ----------
    path : str or path-like
        The model file.
    estimator : str, default=None
        Expected estimator name; a file holding another estimator is a ``ValueError``.

    Returns
    -------
    estimator : str
        Name of the estimator stored in the file.
    metadata : dict
        The JSON metadata, with ``"versions"``.
    tensors : dict of str to Tensor
        The stored tensors.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a (readable, undamaged) roisynth model file, or holds another estimator.

    Examples
    --------
    >>> import os, tempfile, torch
    >>> from roisynth.utils.persistence import load_model, save_model
    >>> path = os.path.join(tempfile.mkdtemp(), "model.roisynth")
    >>> save_model(path, "Toy", {}, {"weight": torch.zeros(1)})
    >>> sorted(load_model(path)[1]["versions"])
    ['numpy', 'pandas', 'python', 'roisynth', 'torch']
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no model file at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # zip/pickle errors of every flavour: the file is not ours
        raise ValueError(f"{path} is not a readable roisynth model file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a roisynth model file (expected format {FORMAT!r})")
    if estimator is not None and payload["estimator"] != estimator:
        raise ValueError(f"{path} holds a {payload['estimator']}, not a {estimator}")
    try:
        metadata = json.loads(payload["metadata"])
        tensors = dict(payload["tensors"])
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is a damaged roisynth model file ({exc})") from exc
    return payload["estimator"], metadata, tensors


def names_to_json(names) -> list:
    """Column names as JSON values that keep their type: str, int, float and tuples (MultiIndex).

    :func:`names_from_json` reads them back; other objects are stored as their ``str``.

    Parameters
    ----------
    names : iterable
        Column names (e.g. ``feature_names_in_``).

    Returns
    -------
    list
        JSON-able names: strings and numbers as they are, tuples as lists.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.utils.persistence import names_from_json, names_to_json
    >>> names_to_json(["Hippocampus_L", np.int64(3), ("vol", "Amygdala_L")])
    ['Hippocampus_L', 3, ['vol', 'Amygdala_L']]
    >>> names_from_json(names_to_json([0, 1]))
    array([0, 1], dtype=object)
    """
    def plain(name):
        if isinstance(name, tuple):
            return [plain(part) for part in name]
        if isinstance(name, (np.integer, np.floating, np.bool_)):
            return name.item()
        return name if isinstance(name, (str, int, float)) else str(name)

    return [plain(name) for name in names]


def names_from_json(values) -> np.ndarray:
    """Column names stored by :func:`names_to_json`, as a 1-D object array (lists back to tuples).

    Parameters
    ----------
    values : list
        The stored names.

    Returns
    -------
    ndarray of object
        One entry per column, of the type the names had when they were stored.

    Examples
    --------
    >>> from roisynth.utils.persistence import names_from_json
    >>> names_from_json([["vol", "Amygdala_L"], ["vol", "Amygdala_R"]])[0]
    ('vol', 'Amygdala_L')
    """
    def restore(value):
        return tuple(restore(part) for part in value) if isinstance(value, list) else value

    names = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        names[i] = restore(value)
    return names


def to_tensor(array) -> torch.Tensor:
    """A float64 CPU tensor from an array-like (sharing memory when it is already contiguous float64).

    Parameters
    ----------
    array : array-like
        The values.

    Returns
    -------
    Tensor
        ``torch.float64`` tensor of the same shape.

    Examples
    --------
    >>> from roisynth.utils.persistence import to_tensor
    >>> to_tensor([[1, 2]])
    tensor([[1., 2.]], dtype=torch.float64)
    """
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64))
