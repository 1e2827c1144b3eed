"""The demo job: on the bundled multi-site cohort, harmonize sites (ComBat-GAM), correct for age,
sex and ICV, fit the contrastive VAE, and write a paired synthetic cohort in mm³.

The models are imported by :func:`run_demo`, so :func:`split` comes without them."""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd

PATIENTS = ("MCI", "AD")


def split(df: pd.DataFrame, test_fraction: float, rng) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Random (train, test) split of the rows of a table.

    Parameters
    ----------
    df : DataFrame
        The rows to split.
    test_fraction : float
        Probability of each row to go to the test part (the test size is random, about
        ``test_fraction * len(df)``).
    rng : numpy.random.Generator
        Source of the draw (one uniform number per row).

    Returns
    -------
    train : DataFrame
    test : DataFrame
        The rows of ``df`` in their order, index kept.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from roisynth.demo import split
    >>> train, test = split(pd.DataFrame({"x": range(10)}), 0.2, np.random.default_rng(0))
    >>> len(train) + len(test), sorted([*train.index, *test.index]) == list(range(10))
    (10, True)
    """
    test = rng.random(len(df)) < test_fraction
    return df[~test], df[test]


def run_demo(output="demo_output", epochs: int = 500, random_state: int = 0, verbose: bool = True,
             n_jobs: int = 1) -> dict:
    """Fit CN vs MCI+AD on :func:`roisynth.datasets.load_example`, write outputs, return the figures.

    The bundled cohort's CN and MCI+AD subjects are each split 80/20 (:func:`split`). The
    pipeline is ``Harmonizer`` (ComBat-GAM: smooth age, sex, ICV; fitted on CN) →
    ``CovariateResidualizer`` (age, sex, ICV; fitted on CN) → ``ContrastiveVAE``, fitted on the
    80 %. Writes into ``output``: ``paired_synthetic.csv`` (synthetic_id, cohort, site, age,
    sex, icv, ROIs in mm³: every synthetic person healthy and ill), ``healthy_twins.csv`` (each
    real patient's healthy twin, own covariates and site, and severity) and ``model.roisynth``.

    Parameters
    ----------
    output : str or path, default="demo_output"
        Folder to write into (created if missing).
    epochs : int, default=500
        Most training epochs of the contrastive VAE (early stopping picks the best).
    random_state : int, default=0
        Seed of the split, the models and the synthetic draws.
    verbose : bool, default=True
        Show the VAE's progress bar.
    n_jobs : int, default=1
        Workers fitting ComBat-GAM (each loads the library, ~0.4 GB).

    Returns
    -------
    dict
        ``fidelity`` (:func:`~roisynth.evaluation.fidelity_summary` against the held-out 20 %),
        ``severity`` (mean severity of held-out subjects by diagnosis), ``epochs`` (best
        epoch), ``fit_seconds``, ``total_seconds``, ``sizes`` (training and held-out counts)
        and ``output`` (the folder's absolute path).

    Examples
    --------
    A few minutes on one core (ComBat-GAM and the VAE on 2400 subjects), hence not run here:

    >>> from roisynth.demo import run_demo
    >>> result = run_demo("demo_output", epochs=20, verbose=False)  # doctest: +SKIP
    >>> result["fidelity"].columns.tolist()  # doctest: +SKIP
    ['n_synthetic', 'n_test', 'w2', 'floor', 'ratio']
    """
    from . import datasets
    from .evaluation._evaluate import fidelity_summary
    from .io import write_table
    from .pipeline import make_pipeline
    from .preprocessing import CovariateResidualizer, Harmonizer
    from .synthesizers._contrastive_vae import ContrastiveVAE
    from .utils.frames import long_pairs

    start = time.perf_counter()
    cohort = datasets.load_example()
    rois = datasets.roi_names()
    rng = np.random.default_rng(random_state)
    cn_train, cn_test = split(cohort[cohort["diagnosis"] == "CN"], 0.2, rng)
    pt_train, pt_test = split(cohort[cohort["diagnosis"].isin(PATIENTS)], 0.2, rng)
    pipeline = make_pipeline(
        Harmonizer(site="site", covariates=["age", "sex", "icv"], smooth=["age"], n_jobs=n_jobs,
                   random_state=random_state),
        CovariateResidualizer(covariates=["age", "sex", "icv"]),
        ContrastiveVAE(epochs=epochs, random_state=random_state, verbose=verbose),
    ).set_params(rois=rois, random_state=random_state)
    pipeline.fit(cn_train, pt_train)
    fit_seconds = time.perf_counter() - start

    paired = long_pairs(*pipeline.sample_paired(len(pt_train)), names=("healthy", "disease"))
    patients = cohort[cohort["diagnosis"].isin(PATIENTS)]
    twins = pipeline.counterfactual(patients, to="background").assign(severity=pipeline.severity(patients))

    os.makedirs(output, exist_ok=True)
    write_table(paired, os.path.join(output, "paired_synthetic.csv"))
    write_table(twins, os.path.join(output, "healthy_twins.csv"))
    pipeline.save(os.path.join(output, "model.roisynth"))

    held_out = pd.concat([cn_test, pt_test])
    severity = pipeline.severity(held_out).groupby(held_out["diagnosis"]).mean().reindex(["CN", *PATIENTS])
    fidelity = fidelity_summary(pipeline, (cn_train[rois], pt_train[rois]), (cn_test[rois], pt_test[rois]),
                                random_state)
    return {
        "fidelity": fidelity,
        "severity": severity,
        "epochs": pipeline.synthesizer.n_epochs_,
        "fit_seconds": fit_seconds,
        "total_seconds": time.perf_counter() - start,
        "sizes": {"cn_train": len(cn_train), "patients_train": len(pt_train), "cn_test": len(cn_test),
                  "patients_test": len(pt_test)},
        "output": os.path.abspath(output),
    }
