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

FORMAT = "roisynth-model/1"


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def save_model(path, estimator: str, metadata: dict, tensors: dict[str, torch.Tensor]) -> None:
    """Write a model file atomically (a partial write never replaces a good file)."""
    metadata = {
        **metadata,
        "versions": {p: _version(p) for p in ("roisynth", "torch", "numpy", "pandas")} | {"python": platform.python_version()},
    }
    payload = {
        "format": FORMAT,
        "estimator": estimator,
        "metadata": json.dumps(metadata),
        "tensors": {k: v.detach().cpu().contiguous() for k, v in tensors.items()},
    }
    path = os.fspath(path)
    tmp = f"{path}.tmp-{os.getpid()}"
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_model(path, estimator: str | None = None) -> tuple[str, dict, dict[str, torch.Tensor]]:
    """Read a model file; ``ValueError`` for anything that is not a roisynth model file."""
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


def to_tensor(array) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64))
