"""Fingerprints of every estimator's outputs, to show that a refactoring changed no number.

Fits each public estimator on the bundled cohort with a fixed seed (small schedules), then
hashes (SHA-256 of the float64 bytes) its samples, paired samples, twins, latents, severity,
subtype probabilities and the samples of the model reloaded from its file. Run it before and
after a change and compare the two JSON files::

    OMP_NUM_THREADS=1 .venv/bin/python scripts/fingerprint_outputs.py -o before.json
    ...change...
    OMP_NUM_THREADS=1 .venv/bin/python scripts/fingerprint_outputs.py -o after.json
    cmp before.json after.json

Only the top-level public API is used, so the script runs on either side of a module move.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import roisynth
from roisynth import datasets


def digest(value) -> str:
    """SHA-256 of a DataFrame or Series (its CSV at full precision), an array or a tuple of them."""
    if isinstance(value, tuple):
        return hashlib.sha256("".join(digest(v) for v in value).encode()).hexdigest()
    if isinstance(value, (pd.DataFrame, pd.Series)):
        return hashlib.sha256(value.to_csv(float_format="%.17g").encode()).hexdigest()
    array = np.ascontiguousarray(np.asarray(value, dtype=np.float64))
    return hashlib.sha256(repr(array.shape).encode() + array.tobytes()).hexdigest()


def outputs(model, patients: pd.DataFrame, tmp: Path) -> dict[str, str]:
    """Hashes of everything the fitted ``model`` returns from seeded calls."""
    out = {}
    if hasattr(model, "sample"):
        out["sample"] = digest(model.sample(50, random_state=1))
    if getattr(model, "can_pair", True):
        out["sample_paired"] = digest(model.sample_paired(50, random_state=2))
    for method in ("transform", "severity", "predict_proba"):
        if hasattr(model, method):
            out[method] = digest(getattr(model, method)(patients))
    if getattr(model, "can_pair", False) and "SmileGAN" not in type(model).__name__:
        out["counterfactual"] = digest(model.counterfactual(patients, to="background"))
    path = tmp / f"{type(model).__name__}.roisynth"
    model.save(path)
    again = roisynth.load(path)
    if hasattr(again, "sample"):
        out["reloaded_sample"] = digest(again.sample(50, random_state=1))
    elif hasattr(again, "predict_proba"):
        out["reloaded_predict_proba"] = digest(again.predict_proba(patients))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, required=True, help="JSON file of the hashes")
    args = parser.parse_args()
    table = datasets.load_example()
    rois = datasets.roi_names()[:20]
    cn = table.loc[table.diagnosis == "CN"].iloc[:300]
    pt = table.loc[table.diagnosis != "CN"].iloc[:300]
    quick = dict(verbose=False, random_state=0)
    models = {
        "ContrastiveVAE": roisynth.ContrastiveVAE(epochs=10, **quick),
        "ConditionalVAE": roisynth.ConditionalVAE(epochs=10, **quick),
        "LinearContrastive": roisynth.LinearContrastive(random_state=0),
        "GaussianMixtureSynthesizer": roisynth.GaussianMixtureSynthesizer(random_state=0),
        "KDESynthesizer": roisynth.KDESynthesizer(random_state=0),
        "SalientSubtypes": roisynth.SalientSubtypes(n_subtypes=2, random_state=0),
        "SmileGAN": roisynth.SmileGAN(n_subtypes=2, max_iter=200, **quick),
    }
    result = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in models.items():
            if name == "SalientSubtypes":
                model.set_params(model=roisynth.ContrastiveVAE(epochs=10, **quick))
            model.fit(cn[rois], pt[rois])
            result[name] = outputs(model, pt[rois].iloc[:40], Path(tmp))
        causal = roisynth.CausalROIModel(epochs=5, transforms=1, **quick)
        covariates = ["age", "sex", "icv"]
        if "target" in inspect.signature(causal.fit).parameters:
            causal.fit(cn[[*covariates, "diagnosis", *rois]], pt[[*covariates, "diagnosis", *rois]])
        else:
            causal.fit(pd.concat([cn, pt])[[*covariates, "diagnosis", *rois]], rois=rois)
        result["CausalROIModel"] = outputs(causal, pt[[*covariates, "diagnosis", *rois]].iloc[:40], Path(tmp))
        pipeline = roisynth.make_pipeline(roisynth.CovariateResidualizer(),
                                          roisynth.ContrastiveVAE(epochs=10, **quick))
        pipeline.set_params(random_state=0)
        pipeline.fit(cn, pt)
        result["SynthesisPipeline"] = outputs(pipeline, pt.iloc[:40], Path(tmp))
    args.output.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(json.dumps(result, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
