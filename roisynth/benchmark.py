"""Every synthesizer of roisynth under one name, and the semi-synthetic benchmark that ranks them.

The benchmark (seed paper, §4.1) splits simulated healthy subjects into a background cohort
and a target cohort given known atrophy patterns, so the truth behind every patient is known:
see :func:`roisynth.evaluation.semisynthetic_scores` for the figures.
"""

from __future__ import annotations

import pandas as pd
from sklearn.base import clone

from . import datasets
from .base import BaseSynthesizer
from .conditional_vae import ConditionalVAE
from .contrastive_vae import ContrastiveVAE
from .evaluation import semisynthetic_scores
from .gaussian_mixture import GaussianMixtureSynthesizer
from .kde import KDESynthesizer
from .linear_contrastive import LinearContrastive

QUICK_EPOCHS = 60


def benchmark_models(random_state=0, quick: bool = False) -> dict[str, BaseSynthesizer]:
    """The models compared in the benchmark: the contrastive VAE (λ = 0, 5, 10, 15 and the TC
    penalty), the conditional VAE, the linear contrastive model, Gaussian mixtures and KDE.

    ``quick`` caps the neural models at ``QUICK_EPOCHS`` epochs (a smoke run, not a ranking).
    """
    neural = {"random_state": random_state, "verbose": False} | ({"epochs": QUICK_EPOCHS} if quick else {})
    return {
        "ContrastiveVAE λ=10 (default)": ContrastiveVAE(**neural),
        "ContrastiveVAE λ=0 (no MMD)": ContrastiveVAE(mmd_weight=0.0, **neural),
        "ContrastiveVAE λ=5": ContrastiveVAE(mmd_weight=5.0, **neural),
        "ContrastiveVAE λ=15": ContrastiveVAE(mmd_weight=15.0, **neural),
        "ContrastiveVAE TC": ContrastiveVAE(regularizer="tc", **neural),
        "ConditionalVAE": ConditionalVAE(**neural),
        "LinearContrastive": LinearContrastive(random_state=random_state),
        "GaussianMixture (BIC)": GaussianMixtureSynthesizer(random_state=random_state),
        "KDE (CV bandwidth)": KDESynthesizer(random_state=random_state),
    }


def semisynthetic_data(n: int = 3000, random_state=0) -> datasets.SemiSynthetic:
    """The benchmark data: ``n`` simulated CN subjects split into background and targets with
    the seed paper's Table 1 atrophy patterns (three subtypes)."""
    cn = datasets.simulate_cohort(n=n, diagnosis={"CN": 1.0}, random_state=random_state)
    return datasets.make_semisynthetic(cn[["age", "sex", "icv", *datasets.roi_names()]], random_state=random_state)


def run_semisynthetic(models: dict[str, BaseSynthesizer], data=None, n_train: int = 1050, seeds=(0,),
                      progress=print) -> pd.DataFrame:
    """:func:`~roisynth.evaluation.semisynthetic_scores` of every model for every seed (the
    seed sets the split and the model's ``random_state``); one row per (model, seed)."""
    data = semisynthetic_data() if data is None else data
    rows = []
    for name, model in models.items():
        for seed in seeds:
            scores = semisynthetic_scores(clone(model).set_params(random_state=seed), data, n_train=n_train, random_state=seed)
            rows.append({"model": name, "seed": seed, **scores})
            if progress is not None:
                progress(f"{name} (seed {seed}): " + ", ".join(f"{k} {v:.3g}" for k, v in scores.items() if v is not None))
    return pd.DataFrame(rows).set_index(["model", "seed"])
