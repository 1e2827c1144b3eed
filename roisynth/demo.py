"""The demo job: fit the contrastive VAE on the bundled cohort and write a paired synthetic cohort."""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd

from . import datasets
from .contrastive_vae import ContrastiveVAE
from .evaluation import fidelity_summary
from .io import write_table

PATIENTS = ("MCI", "AD")


def split(df: pd.DataFrame, test_fraction: float, rng) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Random (train, test) split of rows."""
    test = rng.random(len(df)) < test_fraction
    return df[~test], df[test]


def run_demo(output="demo_output", epochs: int = 500, random_state: int = 0, verbose: bool = True) -> dict:
    """Fit CN vs MCI+AD on :func:`datasets.load_example`, write outputs, return the figures.

    Writes ``paired_synthetic.csv`` (synthetic_id, cohort, ROIs: every synthetic person
    healthy and ill), ``healthy_twins.csv`` (each real patient's healthy twin and severity)
    and ``model.roisynth`` into ``output``.
    """
    start = time.perf_counter()
    cohort = datasets.load_example()
    rois = datasets.roi_names()
    rng = np.random.default_rng(random_state)
    cn_train, cn_test = split(cohort[cohort["diagnosis"] == "CN"], 0.2, rng)
    pt_train, pt_test = split(cohort[cohort["diagnosis"].isin(PATIENTS)], 0.2, rng)
    model = ContrastiveVAE(epochs=epochs, random_state=random_state, verbose=verbose)
    model.fit(cn_train[rois], pt_train[rois])
    fit_seconds = time.perf_counter() - start

    healthy, disease = model.sample_paired(len(pt_train))
    paired = pd.concat(
        [frame.assign(cohort=name) for name, frame in (("healthy", healthy), ("disease", disease))]
    ).rename_axis("synthetic_id").reset_index()
    paired = paired[["synthetic_id", "cohort", *rois]].sort_values(["synthetic_id", "cohort"], ascending=[True, False])
    patients = cohort[cohort["diagnosis"].isin(PATIENTS)]
    twins = model.counterfactual(patients[rois], to="background")
    twins.insert(0, "severity", model.severity(patients[rois]))
    twins = pd.concat([patients[["participant_id", "site", "age", "sex", "diagnosis"]], twins], axis=1)

    os.makedirs(output, exist_ok=True)
    write_table(paired, os.path.join(output, "paired_synthetic.csv"))
    write_table(twins, os.path.join(output, "healthy_twins.csv"))
    model.save(os.path.join(output, "model.roisynth"))

    held_out = pd.concat([cn_test, pt_test])
    severity = model.severity(held_out[rois]).groupby(held_out["diagnosis"]).mean().reindex(["CN", *PATIENTS])
    return {
        "fidelity": fidelity_summary(model, (cn_train[rois], pt_train[rois]), (cn_test[rois], pt_test[rois]), random_state),
        "severity": severity,
        "epochs": model.n_epochs_,
        "fit_seconds": fit_seconds,
        "total_seconds": time.perf_counter() - start,
        "sizes": {"cn_train": len(cn_train), "patients_train": len(pt_train), "cn_test": len(cn_test), "patients_test": len(pt_test)},
        "output": os.path.abspath(output),
    }
