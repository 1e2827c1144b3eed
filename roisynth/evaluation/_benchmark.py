"""Every synthesizer of roisynth under one name, and the semi-synthetic benchmark that ranks them.

The benchmark (seed paper, §4.1) splits simulated healthy subjects into a background cohort
and a target cohort given known atrophy patterns, so the truth behind every patient is known:
see :func:`roisynth.evaluation.semisynthetic_scores` for the figures.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone

from .. import datasets
from ..base import BaseSynthesizer
from ..demo import split
from ..synthesizers._conditional_vae import ConditionalVAE
from ..synthesizers._contrastive_vae import ContrastiveVAE
from ..synthesizers._gaussian_mixture import GaussianMixtureSynthesizer
from ..synthesizers._kde import KDESynthesizer
from ..synthesizers._linear_contrastive import LinearContrastive
from ._evaluate import evaluate, flatten, semisynthetic_scores

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
                      n_bootstrap: int = 0, progress=print) -> pd.DataFrame:
    """:func:`~roisynth.evaluation.semisynthetic_scores` of every model for every seed (the
    seed sets the split and the model's ``random_state``); one row per (model, seed)."""
    data = semisynthetic_data() if data is None else data
    rows = []
    for name, model in models.items():
        for seed in seeds:
            scores = semisynthetic_scores(clone(model).set_params(random_state=seed), data, n_train=n_train,
                                          random_state=seed, n_bootstrap=n_bootstrap)
            rows.append({"model": name, "seed": seed, **scores})
            if progress is not None:
                progress(f"{name} (seed {seed}): fit {scores['fit_seconds']:.1f} s, W2 background "
                         f"{scores['w2_background']:.3g}, W2 target {scores['w2_target']:.3g}, "
                         f"effect r {scores['effect_r']:.3g}, twin ratio {scores['twin_rmse_ratio']:.3g}")
    return pd.DataFrame(rows).set_index(["model", "seed"])


def run_table(models: dict[str, BaseSynthesizer], background: pd.DataFrame, target: pd.DataFrame,
              test_fraction: float = 0.2, seeds=(0,), n_bootstrap: int = 0, progress=print) -> pd.DataFrame:
    """Every model on a user's own cohorts: a random ``test_fraction`` of each is held out, the
    rest fitted, and :func:`~roisynth.evaluation.evaluate` scores the model (no ground truth,
    so no twin or subtype figures); one row per (model, seed) in the layout of
    :func:`run_semisynthetic`."""
    import time

    rows = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        (train_b, test_b), (train_t, test_t) = (split(t, test_fraction, rng) for t in (background, target))
        for name, model in models.items():
            model = clone(model).set_params(random_state=seed)
            start = time.perf_counter()
            model.fit(train_b, train_t)
            fit_seconds = time.perf_counter() - start
            start = time.perf_counter()
            model.sample(100_000, cohort="target")
            sample_seconds = time.perf_counter() - start
            table = evaluate(model, (train_b, train_t), (test_b, test_t), n_bootstrap=n_bootstrap, random_state=seed)
            rows.append({"model": name, "seed": seed, **flatten(table), "fit_seconds": fit_seconds,
                         "sample_seconds": sample_seconds})
            if progress is not None:
                progress(f"{name} (seed {seed}): fit {fit_seconds:.1f} s, W2 background {rows[-1]['w2_background']:.3g}, "
                         f"W2 target {rows[-1]['w2_target']:.3g}")
    return pd.DataFrame(rows).set_index(["model", "seed"])


def _interval(scores: pd.DataFrame, name: str) -> pd.Series:
    """'value [low, high]' (means over seeds) of one metric, or 'value' without an interval."""
    mean = scores.groupby(level="model", sort=False).mean(numeric_only=True)
    if f"{name}_low" not in mean:
        return mean[name].map("{:.3f}".format)
    return mean.apply(lambda r: f"{r[name]:.3f} [{r[name + '_low']:.3f}, {r[name + '_high']:.3f}]", axis=1)


def table_a1(scores: pd.DataFrame, can_pair: dict[str, bool] | None = None) -> pd.DataFrame:
    """The seed paper's Table A1 (Gaussian W2 of generated vs real target, generated vs real
    background, and generated background vs generated target next to the real value, each
    with its bootstrap interval) followed by the figures no paper reports: ratios to the
    noise floor, truth-based scores (semi-synthetic data only), utility, privacy and times.
    Means over seeds; "—" where a model cannot produce a figure."""
    mean = scores.groupby(level="model", sort=False).mean(numeric_only=True)
    real_unpaired = mean["w2_unpaired_reference"].mean()
    columns = {
        "W2 target [95% CI]": _interval(scores, "w2_target"),
        "W2 background [95% CI]": _interval(scores, "w2_background"),
        f"W2 background↔target [95% CI] (real {real_unpaired:.3f})": _interval(scores, "w2_unpaired"),
        "W2/floor target": mean["w2_target_ratio"],
        "W2/floor background": mean["w2_background_ratio"],
    }
    optional = {"twin_rmse_ratio": "twin RMSE ratio", "effect_r": "effect-map r (truth)",
                "effect_scale": "effect size ratio", "common_auc": "decoupling AUC",
                "salient_completeness": "subtype completeness"}
    columns |= {label: mean[name] for name, label in optional.items() if name in mean}
    columns |= {
        "effect-map r (real d)": mean["effect_map_r"],
        "TSTR AUC (TRTR)": mean.apply(lambda r: f"{r['tstr_auc']:.3f} ({r['tstr_auc_reference']:.3f})", axis=1),
        "DCR ratio": mean["dcr_ratio"],
        "membership AUC": mean["membership_auc"],
        "fit (s)": mean["fit_seconds"],
        "sample 100k (s)": mean["sample_seconds"],
    }
    table = pd.DataFrame(columns)
    if can_pair is not None:
        table.insert(0, "pairs", ["yes" if can_pair.get(name) else "no" for name in table.index])
    return table


def to_markdown(table: pd.DataFrame) -> str:
    return table.to_markdown(floatfmt=".3f").replace(" nan ", "  —  ")
