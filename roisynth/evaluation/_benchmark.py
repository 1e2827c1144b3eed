"""Every synthesizer of roisynth under one name, and the semi-synthetic benchmark that ranks them.

The benchmark (seed paper, §4.1) splits simulated healthy subjects into a background cohort
and a target cohort given known atrophy patterns, so the truth behind every patient is known:
see :func:`roisynth.evaluation.semisynthetic_scores` for the figures.
"""

from __future__ import annotations

import os

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
from ..utils.atomic import write_bytes
from ._evaluate import effect_scores, evaluate, flatten, semisynthetic_scores

QUICK_EPOCHS = 60


def benchmark_models(random_state=0, quick: bool = False) -> dict[str, BaseSynthesizer]:
    """The models compared in the benchmark: the contrastive VAE (λ = 0, 5, 10, 15 and the TC
    penalty), the conditional VAE, the linear contrastive model, Gaussian mixtures and KDE.

    Parameters
    ----------
    random_state : int, default=0
        Seed of every model.
    quick : bool, default=False
        Cap the neural models at ``QUICK_EPOCHS`` epochs (a smoke run, not a ranking).

    Returns
    -------
    dict
        Model name -> unfitted synthesizer.

    Examples
    --------
    >>> from roisynth.evaluation import benchmark_models
    >>> models = benchmark_models(quick=True)
    >>> len(models), models["ContrastiveVAE λ=5"].mmd_weight
    (9, 5.0)
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
    the seed paper's Table 1 atrophy patterns (three subtypes).

    Parameters
    ----------
    n : int, default=3000
        Simulated CN subjects.
    random_state : int, default=0
        Seed of the simulation and the split.

    Returns
    -------
    SemiSynthetic
        See :func:`roisynth.datasets.make_semisynthetic`.

    Examples
    --------
    >>> from roisynth.evaluation import semisynthetic_data
    >>> data = semisynthetic_data(n=600)
    >>> len(data.rois)
    139
    """
    cn = datasets.simulate_cohort(n=n, diagnosis={"CN": 1.0}, random_state=random_state)
    return datasets.make_semisynthetic(cn[["age", "sex", "icv", *datasets.roi_names()]], random_state=random_state)


def run_semisynthetic(models: dict[str, BaseSynthesizer], data=None, n_train: int = 1050, seeds=(0,),
                      n_bootstrap: int = 0, progress=print) -> pd.DataFrame:
    """:func:`~roisynth.evaluation.semisynthetic_scores` of every model for every seed.

    Parameters
    ----------
    models : dict
        Name -> unfitted synthesizer, e.g. :func:`benchmark_models`.
    data : SemiSynthetic, default=None
        The benchmark data; None: :func:`semisynthetic_data`.
    n_train : int or (int, int), default=1050
        Training rows per cohort, or a ``(background, target)`` pair.
    seeds : iterable of int, default=(0,)
        Each sets the split and the model's ``random_state``.
    n_bootstrap : int, default=0
        Bootstrap replicates of the W2 intervals.
    progress : callable, default=print
        Called with one line per fitted model; None: silent.

    Returns
    -------
    DataFrame
        One row per (model, seed), one column per score (the effect figures included: effect
        scale, effect error ratio and spurious effects, see :func:`effect_scores`).

    Examples
    --------
    >>> from roisynth import LinearContrastive
    >>> from roisynth.evaluation import run_semisynthetic, semisynthetic_data
    >>> scores = run_semisynthetic({"linear": LinearContrastive()}, semisynthetic_data(n=1000), n_train=300,
    ...                            progress=None)
    >>> scores.index.tolist()
    [('linear', 0)]
    """
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
                         f"effect r {scores['effect_r']:.3g}, twin ratio {scores['twin_rmse_ratio']:.3g}, "
                         f"effect scale {scores['effect_scale_d']:.3g}, "
                         f"effect error ratio {scores['effect_error_ratio']:.3g}")
    return pd.DataFrame(rows).set_index(["model", "seed"])


def run_table(models: dict[str, BaseSynthesizer], background: pd.DataFrame, target: pd.DataFrame,
              test_fraction: float = 0.2, seeds=(0,), n_bootstrap: int = 0, progress=print) -> pd.DataFrame:
    """Every model on a user's own cohorts: a random ``test_fraction`` of each is held out, the
    rest fitted, and :func:`~roisynth.evaluation.evaluate` and
    :func:`~roisynth.evaluation.effect_scores` (reference d = the held-out rows') score the
    model (no ground truth, so no twin, subtype or spurious-effect figures).

    Parameters
    ----------
    models : dict
        Name -> unfitted synthesizer.
    background : DataFrame
        Background ROI table.
    target : DataFrame
        Target ROI table.
    test_fraction : float, default=0.2
        Share of each cohort held out (:func:`roisynth.demo.split`).
    seeds : iterable of int, default=(0,)
        Each sets the split and the model's ``random_state``.
    n_bootstrap : int, default=0
        Bootstrap replicates of the W2 intervals.
    progress : callable, default=print
        Called with one line per fitted model; None: silent.

    Returns
    -------
    DataFrame
        One row per (model, seed) in the layout of :func:`run_semisynthetic`.

    Examples
    --------
    >>> from roisynth import LinearContrastive, datasets
    >>> from roisynth.evaluation import run_table
    >>> cohort = datasets.load_example()
    >>> rois = datasets.roi_names()
    >>> scores = run_table({"linear": LinearContrastive()}, cohort.loc[cohort.diagnosis == "CN", rois],
    ...                    cohort.loc[cohort.diagnosis == "AD", rois], progress=None)
    >>> "w2_target" in scores
    True
    """
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
            effects = effect_scores(model, (train_b, train_t), reference=(test_b, test_t), random_state=seed)
            rows.append({"model": name, "seed": seed, **effects, **flatten(table), "fit_seconds": fit_seconds,
                         "sample_seconds": sample_seconds})
            if progress is not None:
                progress(f"{name} (seed {seed}): fit {fit_seconds:.1f} s, "
                         f"W2 background {rows[-1]['w2_background']:.3g}, W2 target {rows[-1]['w2_target']:.3g}")
    return pd.DataFrame(rows).set_index(["model", "seed"])


def _interval(scores: pd.DataFrame, name: str) -> pd.Series:
    """'value [low, high]' (means over seeds) of one metric, or 'value' without an interval."""
    mean = scores.groupby(level="model", sort=False).mean(numeric_only=True)
    if f"{name}_low" not in mean:
        return mean[name].map("{:.3f}".format)
    return mean.apply(lambda r: f"{r[name]:.3f} [{r[name + '_low']:.3f}, {r[name + '_high']:.3f}]", axis=1)


def _worst_risk(mean: pd.DataFrame, prefix: str) -> pd.Series | None:
    """'risk [low, high]' of the privacy-audit row starting with ``prefix`` whose lower bound is
    largest (means over seeds), per model; None when the scores have no such row."""
    names = [c[:-4] for c in mean if c.startswith(prefix) and c.endswith("_low")]
    if not names:
        return None
    worst = mean[[f"{n}_low" for n in names]].to_numpy().argmax(axis=1)
    return pd.Series([f"{r[n]:.3f} [{r[n + '_low']:.3f}, {r[n + '_high']:.3f}]"
                      for (_, r), n in zip(mean.iterrows(), np.array(names)[worst])], index=mean.index)


def table_a1(scores: pd.DataFrame, can_pair: dict[str, bool] | None = None) -> pd.DataFrame:
    """The seed paper's Table A1 (Gaussian W2 of generated vs real target, generated vs real
    background, and generated background vs generated target next to the real value, each
    with its bootstrap interval) followed by the figures no paper reports: ratios to the
    noise floor, truth-based scores (semi-synthetic data only), the effect figures of
    :func:`~roisynth.evaluation.effect_scores` (effect scale and effect error ratio, unpaired
    and paired; spurious |d| on unaffected ROIs next to the training data's own, semi-synthetic
    data only), utility, privacy (DCR, membership AUC and the audit of
    :func:`~roisynth.metrics.privacy_audit`: the singling-out, linkability and inference risks
    with their intervals, the worst row of each kind, and the exact row and cell copies) and times.
    Means over seeds; NaN (— in :func:`to_markdown`) where a model cannot produce a figure.

    Parameters
    ----------
    scores : DataFrame
        Scores of :func:`run_semisynthetic` or :func:`run_table`.
    can_pair : dict, default=None
        Model name -> whether it pairs; adds a ``pairs`` column.

    Returns
    -------
    DataFrame
        One row per model.

    Examples
    --------
    >>> from roisynth import LinearContrastive
    >>> from roisynth.evaluation import run_semisynthetic, semisynthetic_data, table_a1
    >>> scores = run_semisynthetic({"linear": LinearContrastive()}, semisynthetic_data(n=1000), n_train=300,
    ...                            progress=None)
    >>> table_a1(scores, {"linear": True})["pairs"].tolist()
    ['yes']
    """
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
                "salient_completeness": "subtype completeness", "effect_scale_d": "effect scale (d)",
                "effect_error_ratio": "effect error ratio", "paired_effect_scale_d": "paired effect scale (d)",
                "paired_effect_error_ratio": "paired effect error ratio"}
    columns |= {label: mean[name] for name, label in optional.items() if name in mean}
    if "spurious_d_train" in mean and mean["spurious_d_train"].notna().any():
        columns |= {"spurious |d| (training data)": mean.apply(
                        lambda r: f"{r['spurious_d']:.3f} ({r['spurious_d_train']:.3f})", axis=1),
                    "paired spurious |d|": mean["paired_spurious_d"]}
    columns |= {
        "effect-map r (real d)": mean["effect_map_r"],
        "TSTR AUC (TRTR)": mean.apply(lambda r: f"{r['tstr_auc']:.3f} ({r['tstr_auc_reference']:.3f})", axis=1),
        "DCR ratio": mean["dcr_ratio"],
        "membership AUC": mean["membership_auc"],
    }
    audit = {"singling_out": "singling-out risk [95% CI]", "linkability": "linkability risk [95% CI]",
             "inference_": "inference risk, worst ROI [95% CI]"}
    columns |= {label: risk for prefix, label in audit.items() if (risk := _worst_risk(mean, prefix)) is not None}
    if "exact_rows" in mean:
        columns["exact copies (rows, cells)"] = mean.apply(lambda r: f"{r['exact_rows']:.0f}, {r['exact_cells']:.0f}",
                                                           axis=1)
    columns |= {
        "fit (s)": mean["fit_seconds"],
        "sample 100k (s)": mean["sample_seconds"],
    }
    table = pd.DataFrame(columns)
    if can_pair is not None:
        table.insert(0, "pairs", ["yes" if can_pair.get(name) else "no" for name in table.index])
    return table


def to_markdown(table: pd.DataFrame) -> str:
    """A :func:`table_a1` as a Markdown table, three decimals, "—" for missing figures.

    Parameters
    ----------
    table : DataFrame
        The table to format.

    Returns
    -------
    str
        Markdown (needs the ``tabulate`` package).

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from roisynth.evaluation import to_markdown
    >>> print(to_markdown(pd.DataFrame({"W2": [1.23456, np.nan]}, index=["a", "b"])))
    |    |      W2 |
    |:---|--------:|
    | a  |   1.235 |
    | b  |  —      |
    """
    return table.to_markdown(floatfmt=".3f").replace(" nan ", "  —  ")


def write_benchmark(output="benchmark_output", *, table=None, group_column: str = "diagnosis", background="CN",
                    target="MCI,AD", rois="muse", models=None, quick: bool = False, seeds: int = 1,
                    n_bootstrap: int | None = None, progress=None) -> dict:
    """Run the model benchmark and write ``benchmark.csv`` and ``benchmark.md`` (``roisynth benchmark``).

    Without ``table``, every model of :func:`benchmark_models` is scored on the semi-synthetic
    benchmark (:func:`run_semisynthetic`); with it, on the user's cohorts (:func:`run_table`,
    80/20 split, no ground truth). ``benchmark.csv`` holds one row per (model, seed) with every
    score, ``benchmark.md`` a header naming the data and :func:`table_a1` as Markdown.

    Parameters
    ----------
    output : str or path, default="benchmark_output"
        Folder to write into (created if missing).
    table : str, path, DataFrame or a (background, target) pair, default=None
        The user's cohorts, read by :func:`roisynth.io.read_cohorts`; None: the semi-synthetic data.
    group_column : str, default="diagnosis"
        Column splitting one ``table`` into cohorts.
    background : str or sequence of str, default="CN"
        Labels of the background cohort (one ``table`` only).
    target : str or sequence of str, default="MCI,AD"
        Labels of the target cohort (one ``table`` only).
    rois : str or sequence of str, default="muse"
        ROI columns of ``table``, see :func:`roisynth.io.select_rois`.
    models : str or sequence of str, default=None
        Parts of model names (case-insensitive, a sequence or one comma-separated string): run
        the models whose name contains one of them; None: all.
    quick : bool, default=False
        Cap the neural models at ``QUICK_EPOCHS`` epochs (a smoke run, not a ranking).
    seeds : int, default=1
        Seeds 0, ..., ``seeds`` - 1: each sets the split and the models' ``random_state``.
    n_bootstrap : int, default=None
        Bootstrap replicates of the W2 intervals; None: 200 if ``quick`` else 1000.
    progress : callable, default=None
        Called with one line of text per fitted model; None: silent.

    Returns
    -------
    dict
        ``scores`` (DataFrame indexed by model and seed), ``markdown`` (the Markdown table),
        ``csv`` and ``md`` (the paths written).

    Raises
    ------
    ValueError
        If ``models`` matches no model.

    Examples
    --------
    >>> import tempfile
    >>> from roisynth import datasets
    >>> from roisynth.evaluation import write_benchmark
    >>> cohort = datasets.load_example().sample(400, random_state=0)
    >>> result = write_benchmark(tempfile.mkdtemp(), table=cohort, rois="Hippocampus_L,Hippocampus_R,Amygdala_L",
    ...                          models="KDE", n_bootstrap=0)
    >>> result["scores"].index.tolist(), result["md"].name
    ([('KDE (CV bandwidth)', 0)], 'benchmark.md')
    """
    from pathlib import Path

    from ..io import read_cohorts, select_rois, split_list, write_table

    every = benchmark_models(quick=quick)
    chosen = every
    if models:
        wanted = split_list(models)
        chosen = {name: m for name, m in every.items() if any(w.lower() in name.lower() for w in wanted)}
        if not chosen:
            raise ValueError(f"models {models!r} (--models) matches none of {list(every)}")
    n_bootstrap = (200 if quick else 1000) if n_bootstrap is None else n_bootstrap
    seeds = range(seeds)
    if table is not None:
        cohorts = read_cohorts(table, group_column=group_column, background=background, target=target)
        columns = select_rois(cohorts[0], rois)
        scores = run_table(chosen, *(c[columns] for c in cohorts), seeds=seeds, n_bootstrap=n_bootstrap,
                           progress=progress)
        name = table if isinstance(table, (str, os.PathLike)) else "the given table(s)"
        source = f"{name} ({len(cohorts[0])} background, {len(cohorts[1])} target rows, 80/20 split)"
    else:
        scores = run_semisynthetic(chosen, seeds=seeds, n_bootstrap=n_bootstrap, progress=progress)
        source = "make_semisynthetic (3000 simulated CN, Table 1 atrophy, 1050 training subjects per cohort)"
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    write_table(scores.reset_index(), output / "benchmark.csv")
    markdown = to_markdown(table_a1(scores, {name: m.can_pair for name, m in chosen.items()}))
    header = (f"# roisynth benchmark\n\nData: {source}; {len(seeds)} seed(s); {n_bootstrap} bootstrap replicates "
              "(95 % centered intervals: the spread of each value over fresh samples of the same sizes)"
              f"{'; quick run: neural models capped in epochs' if quick else ''}.\n\n")
    write_bytes(output / "benchmark.md", (header + markdown + "\n").encode("utf-8"))
    return {"scores": scores, "markdown": markdown, "csv": output / "benchmark.csv", "md": output / "benchmark.md"}
