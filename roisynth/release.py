"""Release a synthetic cohort: audit it against the real data, then write one shareable folder.

:func:`release` (``roisynth release``) takes a fitted model (or a synthetic table already
drawn) with the real training table and a held-out real table, and

1. refuses a model that *is* its training data (``stores_training_data``, e.g. a KDE);
2. audits the synthetic table against the training rows
   (:func:`roisynth.metrics.privacy_audit`: exact copies of rows, quasi-identifier tuples
   and cells; the anonymeter singling-out, linkability and inference risks against a
   control attack on the held-out rows) and refuses when
   :func:`roisynth.metrics.privacy_flags` flags anything;
3. writes the folder — ``synthetic.csv`` (in the column names of the user's tables),
   ``report.html`` with its figures (fidelity, effects and the privacy section) and
   ``release.json`` (model and settings, training sizes, fidelity, every risk with its
   interval, thresholds, any override and its reason, software versions) — whole or not at
   all: it is built in a temporary folder beside ``output`` and renamed into place.

A refusal can be overridden only with a stated reason (``override="..."``, ``--override``),
which ``release.json`` records with the flags it overrode.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd

from .exceptions import ReleaseRefusedError
from .privacy import DifferentialPrivacy

FORMAT = "roisynth-release/1"
#: Files of a release folder.
FILES = ("synthetic.csv", "report.html", "release.json")
#: Columns that identify a row rather than describe a person: never audited, never released from the real side.
IDENTIFIERS = frozenset({"participant_id", "subject_id", "id", "synthetic_id", "cohort"})


def _versions() -> dict:
    def one(package):
        try:
            return version(package)
        except PackageNotFoundError:
            return None

    packages = ("roisynth", "numpy", "pandas", "scikit-learn", "torch", "POT", "statsmodels")
    return {p: one(p) for p in packages} | {"python": platform.python_version()}


def _json_safe(value):
    """Parameters as JSON: estimators by class name, numpy scalars as numbers, the rest as text."""
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "get_params"):
        return {"class": type(value).__name__, "params": _json_safe(value.get_params(deep=False))}
    if isinstance(value, DifferentialPrivacy):
        return _json_safe(value.to_dict())
    return repr(value)


def describe_model(model) -> dict:
    """Class, hyperparameters and (for a pipeline) steps of a fitted model, JSON-safe.

    Parameters
    ----------
    model : estimator or None
        A fitted roisynth model.

    Returns
    -------
    dict
        ``{"class": ..., "params": ...}`` (empty for None), and ``"differential_privacy"``:
        the (ε, δ) a private fit spent (``privacy_spent_``; for a pipeline the whole chain's),
        with, for a pipeline, the noise multiplier and number of its preprocessing's Gaussian
        releases.
    """
    if model is None:
        return {}
    params = model.get_params(deep=False)
    described = {"class": type(model).__name__, "params": _json_safe(params)}
    spent = getattr(model, "privacy_spent_", None)
    if spent is not None:
        described["differential_privacy"] = {"epsilon": spent[0], "delta": spent[1],
                                             "unit": "one subject added to or removed from either cohort"}
        if getattr(model, "preprocessing_releases_", 0):
            described["differential_privacy"]["preprocessing"] = {
                "covers": "preprocessing steps, per-cohort covariate effects and covariate models",
                "gaussian_releases": model.preprocessing_releases_,
                "noise_multiplier": model.preprocessing_noise_multiplier_,
                "share": model.synthesizer.privacy.preprocessing_share}
    return described


def _guarantee(model) -> str:
    """" — an (ε, δ)-differentially private model" for a private fit (``privacy_spent_``), else ""."""
    spent = getattr(model, "privacy_spent_", None)
    return "" if spent is None else f" — an (ε = {spent[0]:.3g}, δ = {spent[1]:.2g})-differentially private model"


def stores_training_data(model) -> bool:
    """Whether a model (or a pipeline's synthesizer) keeps its training rows (``stores_training_data``).

    Parameters
    ----------
    model : estimator
        A roisynth model.

    Returns
    -------
    bool
    """
    parts = [model, getattr(model, "synthesizer", None)]
    return any(getattr(part, "stores_training_data", False) for part in parts if part is not None)


def _audit_columns(synthetic: pd.DataFrame, train: pd.DataFrame, group_column: str) -> list:
    excluded = IDENTIFIERS | {group_column}
    columns = [c for c in synthetic.columns if c in train.columns and str(c).lower() not in excluded]
    if not columns:
        raise ValueError("the synthetic table and the training table share no column to audit")
    return columns


def _fidelity(synthetic: pd.DataFrame, train: tuple, holdout: tuple, rois: list) -> dict:
    """Per cohort: Gaussian W2 of synthetic vs held-out rows, the floor (training vs held-out) and their ratio,
    z-scored on the background training rows."""
    from .metrics import gaussian_w2

    mean, scale = train[0][rois].mean(), train[0][rois].std().replace(0, 1.0)
    out = {}
    for cohort, real, test in zip(("background", "target"), train, holdout):
        fake = synthetic.loc[synthetic["cohort"] == cohort, rois]
        if not len(fake) or len(test) < 2:
            continue
        z = [(t - mean) / scale for t in (fake, real[rois], test[rois])]
        w2, floor = gaussian_w2(z[0], z[2]), gaussian_w2(z[1], z[2])
        out[cohort] = {"n_synthetic": len(fake), "w2": float(w2), "floor": float(floor), "ratio": float(w2 / floor)}
    return out


def release(output, *, train, holdout, model=None, synthetic=None, n=None, group_column: str = "diagnosis",
            background="CN", target="MCI,AD", quasi_identifiers=None, thresholds=None, override: str | None = None,
            n_attacks: int = 500, n_bootstrap: int = 200, random_state=0, title: str | None = None) -> dict:
    """Audit a synthetic cohort against its training data and write a shareable release folder.

    Parameters
    ----------
    output : str or path
        The release folder to create; it must not exist (or be an empty folder).
    train : str, path or DataFrame
        The real table the model was fitted on, split into cohorts by ``group_column``.
    holdout : str, path or DataFrame
        Real subjects of the same population that the model never saw: the control of the
        privacy attacks and the reference of the fidelity figures.
    model : estimator, str or path, default=None
        A fitted roisynth model or its file; it draws ``n`` synthetic people (pairs for a
        pairing model, else ``n`` per cohort).
    synthetic : str, path or DataFrame, default=None
        Instead of ``model``: a synthetic table with a ``cohort`` column, as ``roisynth
        sample`` writes.
    n : int, default=None
        Synthetic people to draw from ``model``; None: as many as the training patients.
    group_column : str, default="diagnosis"
        Column of ``train`` and ``holdout`` holding each subject's group.
    background, target : str or sequence of str, default="CN", "MCI,AD"
        Group labels of the two cohorts.
    quasi_identifiers : list of str, default=None
        Columns a register would hold (None: site, age, sex, ICV where present).
    thresholds : dict, default=None
        Overrides of :data:`roisynth.metrics.PRIVACY_THRESHOLDS`, recorded in the JSON.
    override : str, default=None
        A reason to release despite flags (exact copies, a risk above its threshold, a model
        that stores training data); recorded with the flags it overrode. None: refuse.
    n_attacks : int, default=500
        Attacks of each kind in the audit.
    n_bootstrap : int, default=200
        Bootstrap replicates of the report's intervals.
    random_state : int, default=0
        Seed of the synthetic draw, the attacks and the report.
    title : str, default=None
        Title of the report.

    Returns
    -------
    dict
        The content of ``release.json``, with ``"folder"`` (absolute path) added.

    Raises
    ------
    ReleaseRefusedError
        When the model stores its training data or the audit flags the synthetic table and no
        ``override`` is given; nothing is written.
    ValueError
        For bad arguments or tables, naming them; nothing is written.

    Examples
    --------
    >>> import tempfile
    >>> from roisynth import GaussianMixtureSynthesizer, datasets
    >>> from roisynth.release import release
    >>> cohort = datasets.load_example()[["diagnosis", "Hippocampus_L", "Hippocampus_R", "Amygdala_L"]]
    >>> train, holdout = cohort.iloc[:2000], cohort.iloc[2000:]
    >>> model = GaussianMixtureSynthesizer(random_state=0).fit(train[train.diagnosis == "CN"].iloc[:, 1:],
    ...                                                        train[train.diagnosis != "CN"].iloc[:, 1:])
    >>> result = release(tempfile.mkdtemp() + "/release", train=train, holdout=holdout, model=model,
    ...                  n_attacks=100, n_bootstrap=0)
    >>> sorted(result["files"]), result["privacy"]["flags"]
    (['release.json', 'report.html', 'synthetic.csv'], [])
    """
    from .base import COHORTS, load
    from .evaluation import build_report
    from .io import conform_rois, read_cohorts, read_table, sample_table, write_table
    from .metrics import PRIVACY_THRESHOLDS, privacy_audit, privacy_flags

    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise ValueError(f"output {output} already exists and is not an empty folder; choose a new folder")
    if (model is None) == (synthetic is None):
        raise ValueError("give model (a fitted model or its file) or synthetic (a synthetic table), not both")
    if override is not None and not str(override).strip():
        raise ValueError("override needs a reason (a non-empty text); it is recorded in release.json")
    if isinstance(model, (str, os.PathLike)):
        model = load(model)
    split = {"group_column": group_column, "background": background, "target": target}
    real = {name: read_cohorts(table, **split) for name, table in (("train", train), ("holdout", holdout))}

    flags = []
    if model is not None and stores_training_data(model):
        flags.append(f"{type(getattr(model, 'synthesizer', model)).__name__} stores its training rows "
                     "(stores_training_data): its samples are drawn around real people")
    if model is not None:
        n = len(real["train"][1]) if n is None else n
        drawn = sample_table(model, n, cohort="paired" if model.can_pair else "both", random_state=random_state)
    else:
        drawn = read_table(synthetic)         # the table as given: its column names are the ones released
        cohorts = set(drawn["cohort"]) if "cohort" in drawn.columns else set()
        if not cohorts or not cohorts <= set(COHORTS):
            raise ValueError("synthetic must have a cohort column of background/target rows, as `roisynth sample` "
                             f"writes (found {sorted(map(str, cohorts)) or 'no cohort column'})")
    names = [c for c in drawn.columns if c not in IDENTIFIERS]
    real = {name: tuple(conform_rois(t, names) for t in tables) for name, tables in real.items()}
    pooled = {name: pd.concat(tables, ignore_index=True) for name, tables in real.items()}
    columns = _audit_columns(drawn, pooled["train"], group_column)
    audit = privacy_audit(drawn[columns], pooled["train"][columns], pooled["holdout"][columns],
                          quasi_identifiers=quasi_identifiers, n_attacks=n_attacks, random_state=random_state)
    flags += privacy_flags(audit, thresholds)
    if flags and override is None:
        raise ReleaseRefusedError("refusing to release: " + "; ".join(flags)
                                  + " (override with a stated reason if the release is nonetheless justified)")

    numeric = [c for c in columns if pd.api.types.is_numeric_dtype(drawn[c])]
    summary = {
        "format": FORMAT,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "files": list(FILES),
        "model": describe_model(model),
        "synthetic": {"rows": len(drawn), "cohorts": drawn["cohort"].value_counts().to_dict(),
                      "columns": [str(c) for c in drawn.columns],
                      "source": "drawn from the model" if model is not None else "given table",
                      "random_state": random_state},
        "training": {"background": len(real["train"][0]), "target": len(real["train"][1]),
                     "groups": {"column": group_column, "background": background, "target": target}},
        "holdout": {"background": len(real["holdout"][0]), "target": len(real["holdout"][1])},
        "fidelity": _fidelity(drawn, real["train"], real["holdout"], numeric),
        "privacy": {
            "audited_columns": [str(c) for c in columns],
            "measures": json.loads(audit.reset_index().to_json(orient="records")),
            "thresholds": PRIVACY_THRESHOLDS | dict(thresholds or {}),
            "flags": flags,
            "override": None if override is None else {"reason": str(override), "overrode": flags},
        },
        "software": _versions(),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        write_table(drawn, staging / "synthetic.csv")
        fake = tuple(drawn.loc[drawn["cohort"] == c, names].reset_index(drop=True) for c in COHORTS)
        build_report(staging / "report.html", model=model, synthetic=fake, train=real["train"], test=real["holdout"],
                     groups=pd.concat(real["holdout"])[group_column].astype(str), n_bootstrap=n_bootstrap,
                     random_state=random_state, title=(title or "roisynth release") + _guarantee(model),
                     shareable=True)
        (staging / "release.json").write_text(json.dumps(summary, indent=2, allow_nan=False, default=str))
        if output.exists():
            output.rmdir()
        os.replace(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return summary | {"folder": str(output.resolve())}
