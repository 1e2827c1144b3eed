"""Model-level evaluation shared by the demo, the tests and the benchmarks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..metrics import gaussian_w2
from ..utils.covariates import covariate_matrix

#: Smallest training |d| of the ROIs in the effect scale (a "small" effect).
MIN_EFFECT = 0.2


def standardizer(reference: pd.DataFrame):
    """Function mapping a table to z-scores of ``reference`` (e.g. the healthy training cohort).

    Parameters
    ----------
    reference : DataFrame
        The table whose column means and standard deviations define the z-scores.

    Returns
    -------
    callable
        ``table -> (table[reference.columns] - mean) / sd``.

    Examples
    --------
    >>> import pandas as pd
    >>> from roisynth.evaluation import standardizer
    >>> z = standardizer(pd.DataFrame({"Hippocampus_L": [3.0, 4.0, 5.0]}))
    >>> z(pd.DataFrame({"Hippocampus_L": [5.0]}))["Hippocampus_L"].tolist()  # sample SD = 1
    [1.0]
    """
    mean, sd = reference.mean(), reference.std()
    return lambda df: (df[reference.columns] - mean) / sd


def fidelity_summary(model, train: tuple, test: tuple, random_state=0) -> pd.DataFrame:
    """Gaussian W2 of synthetic vs held-out real data for each cohort, next to the floor.

    All tables are z-scored on the background training cohort. For each cohort, ``n`` = its
    training size: the model draws ``n`` synthetic subjects of that cohort and the *floor* is
    W2 between ``n`` real training subjects and the held-out ones, i.e. what a perfect
    generator would score with the same sample sizes. ``ratio`` = synthetic / floor (1 is ideal).

    Parameters
    ----------
    model : synthesizer or SynthesisPipeline
        A fitted roisynth model.
    train : tuple of DataFrame
        ``(background, target)`` ROI tables the model was fitted on.
    test : tuple of DataFrame
        ``(background, target)`` held-out ROI tables.
    random_state : int, default=0
        Seed of the synthetic draws.

    Returns
    -------
    DataFrame
        One row per cohort: ``n_synthetic``, ``n_test``, ``w2``, ``floor``, ``ratio``.

    Examples
    --------
    >>> from roisynth import GaussianMixtureSynthesizer, datasets
    >>> cohort = datasets.load_example()
    >>> rois = ["Hippocampus_L", "Hippocampus_R", "Amygdala_L"]
    >>> train, test = cohort.iloc[:2000], cohort.iloc[2000:]
    >>> cohorts = lambda t: (t.loc[t.diagnosis == "CN", rois], t.loc[t.diagnosis != "CN", rois])
    >>> model = GaussianMixtureSynthesizer(random_state=0).fit(*cohorts(train))
    >>> from roisynth.evaluation import fidelity_summary
    >>> fidelity_summary(model, cohorts(train), cohorts(test)).columns.tolist()
    ['n_synthetic', 'n_test', 'w2', 'floor', 'ratio']
    """
    z = standardizer(train[0])
    rng = np.random.default_rng(random_state)
    rows = []
    for cohort, real_train, real_test in zip(("background", "target"), train, test):
        k = len(real_train)
        synth = model.sample(k, cohort=cohort, random_state=int(rng.integers(2**31)))
        w2 = gaussian_w2(z(synth), z(real_test))
        floor = gaussian_w2(z(real_train), z(real_test))
        rows.append({"cohort": cohort, "n_synthetic": k, "n_test": len(real_test), "w2": w2, "floor": floor,
                     "ratio": w2 / floor})
    return pd.DataFrame(rows).set_index("cohort")


def evaluate(model, train: tuple, test: tuple, n_bootstrap: int = 1000, ci: float = 0.95, random_state=0,
             n_jobs: int = 1, n_attacks: int = 500) -> pd.DataFrame:
    """Fidelity, utility and privacy of a fitted synthesizer, each next to its real-data reference.

    ``train`` and ``test`` are the ``(background, target)`` ROI tables the model was fitted on
    and held-out ones. The model draws as many synthetic subjects per cohort as it had
    training subjects; all tables are z-scored on the background training cohort. One row per
    metric with ``value``, a centered bootstrap CI (``low``, ``high``: how much the value varies
    over fresh samples of the same sizes, see :func:`~roisynth.metrics.bootstrap`; Gaussian W2 rows
    only, ``n_bootstrap`` replicates, 0 to skip), the ``reference`` a perfect generator would
    score, ``ratio`` = value / reference where that reads as "1 is ideal", and ``ideal``:

    - ``w2_background``, ``w2_target`` (seed paper, Table A1): Gaussian W2 of synthetic vs
      held-out rows; reference = W2 of the real training rows vs the held-out rows;
    - ``w2_unpaired``: W2 between synthetic background and synthetic target (does the model
      keep the distance between the cohorts?); reference = the same between the real cohorts;
    - ``mmd_*``: MMD² (unbiased, multi-bandwidth RBF) to held-out rows, reference real-vs-real;
    - ``detection_auc_*``: cross-validated AUC of a classifier telling synthetic from
      held-out rows (0.5 ideal), reference = the same for the real training rows;
    - ``correlation_r_*``: correlation of the ROI correlation matrices' upper triangles;
    - ``effect_map_r``: correlation over ROIs of synthetic vs held-out Cohen's d (target vs
      background);
    - ``effect_map_scale``: :func:`~roisynth.metrics.effect_scale`, the slope of the synthetic
      d on the training d over the ROIs with training |d| ≥ ``MIN_EFFECT`` (reference 1: the
      effects the model was shown, neither shrunk nor inflated; NaN when no ROI reaches it);
    - ``effect_map_rmse``: RMSE over ROIs of synthetic vs held-out d; reference = the same for
      the training d, so ``ratio`` is the effect error ratio of
      :func:`~roisynth.metrics.effect_error` (1 = the synthetic cohort tells as much about group
      differences as its training data; > 1 less);
    - ``tstr_auc``: AUC on real held-out rows of a background-vs-target classifier trained on
      synthetic rows; reference = trained on real rows (TRTR);
    - ``dcr_ratio``: median distance of synthetic rows to their closest training row over the
      same for held-out rows (≈ 1 ideal, ≪ 1 = copies of training subjects);
    - ``membership_auc``: AUC of a distance-based membership-inference attack (0.5 ideal);
    - the privacy audit of :func:`~roisynth.metrics.privacy_audit` (anonymeter's attacks, both
      cohorts pooled; the held-out rows are the control): ``singling_out_univariate``,
      ``singling_out_multivariate``, ``linkability`` and ``inference_<roi>`` (three ROIs), each
      the risk with its confidence interval as ``low``/``high`` (reference 0; flagged by
      :func:`~roisynth.metrics.privacy_flags` when ``low`` > 0.1), then ``exact_rows`` and
      ``exact_cells``, counts of synthetic rows and cells equal to training ones (reference 0).

    ``evaluate`` sees the tables it is given, usually ROI columns only. Covariates (site, age,
    sex, ICV) are audited when the tables carry them: call
    :func:`~roisynth.metrics.privacy_audit` on the full synthetic table against the full
    training and held-out tables, which adds the ``exact_quasi_identifiers`` row and
    quasi-identifier linkability (the report and ``roisynth release`` do so).

    Parameters
    ----------
    model : synthesizer or SynthesisPipeline
        A fitted roisynth model (anything with ``sample(n, cohort=, random_state=)``).
    train : tuple of DataFrame
        ``(background, target)`` ROI tables the model was fitted on.
    test : tuple of DataFrame
        ``(background, target)`` held-out ROI tables.
    n_bootstrap : int, default=1000
        Bootstrap replicates of the W2 intervals (0: none).
    ci : float, default=0.95
        Coverage of the intervals.
    random_state : int, default=0
        Seed of the synthetic draws, the classifiers and the bootstrap.
    n_jobs : int, default=1
        Workers of the bootstrap.
    n_attacks : int, default=500
        Attacks of each kind in the privacy audit (0: no audit rows).

    Returns
    -------
    DataFrame
        One row per metric; columns ``value``, ``low``, ``high``, ``reference``, ``ratio``, ``ideal``.

    Examples
    --------
    >>> from roisynth import GaussianMixtureSynthesizer, datasets
    >>> cohort = datasets.load_example()
    >>> rois = ["Hippocampus_L", "Hippocampus_R", "Amygdala_L"]
    >>> train, test = cohort.iloc[:2000], cohort.iloc[2000:]
    >>> cohorts = lambda t: (t.loc[t.diagnosis == "CN", rois], t.loc[t.diagnosis != "CN", rois])
    >>> model = GaussianMixtureSynthesizer(random_state=0).fit(*cohorts(train))
    >>> from roisynth.evaluation import evaluate
    >>> table = evaluate(model, cohorts(train), cohorts(test), n_bootstrap=0)
    >>> table.columns.tolist()
    ['value', 'low', 'high', 'reference', 'ratio', 'ideal']
    >>> table.index[:3].tolist()
    ['w2_background', 'w2_target', 'w2_unpaired']
    >>> table.loc[["effect_map_scale", "effect_map_rmse"], "ideal"].tolist()
    ['1 (< 1: effects shrunk)', 'ratio 1 (> 1: less faithful than the training data)']
    """
    from ..metrics import (
        bootstrap,
        cohens_d,
        correlation_similarity,
        detection_auc,
        distance_to_closest_record,
        effect_error,
        membership_inference_auc,
        mmd,
        privacy_audit,
        tstr,
    )
    from ..utils.validation import check_nonnegative

    n_attacks = int(check_nonnegative(n_attacks, "n_attacks"))
    z = standardizer(train[0])
    rng = np.random.default_rng(random_state)
    seed = lambda: int(rng.integers(2**31))  # noqa: E731
    real_train, real_test = [z(t) for t in train], [z(t) for t in test]
    raw = [model.sample(len(t), cohort=c, random_state=seed()) for c, t in zip(("background", "target"), train)]
    synth = [z(t) for t in raw]
    rows = {}

    def add(name, value, reference=np.nan, ideal="", ratio=True, pair=None, interval=(np.nan, np.nan)):
        low, high = interval
        if pair is not None and n_bootstrap:
            result = bootstrap(gaussian_w2, *pair, n=n_bootstrap, ci=ci, random_state=seed(), n_jobs=n_jobs,
                               method="centered")
            low, high = result.low, result.high
        rows[name] = {"value": value, "low": low, "high": high, "reference": reference,
                      "ratio": value / reference if ratio else np.nan, "ideal": ideal}

    for i, cohort in enumerate(("background", "target")):
        add(f"w2_{cohort}", gaussian_w2(synth[i], real_test[i]), gaussian_w2(real_train[i], real_test[i]),
            "ratio 1", pair=(synth[i], real_test[i]))
    add("w2_unpaired", gaussian_w2(*synth), gaussian_w2(*real_train), "ratio 1", pair=tuple(synth))
    for i, cohort in enumerate(("background", "target")):
        add(f"mmd_{cohort}", mmd(synth[i], real_test[i]), mmd(real_train[i], real_test[i]), "≈ reference", ratio=False)
        add(f"detection_auc_{cohort}", detection_auc(real_test[i], synth[i], random_state=seed()),
            detection_auc(real_test[i], real_train[i], random_state=seed()), "0.5", ratio=False)
        add(f"correlation_r_{cohort}", correlation_similarity(synth[i], real_test[i])["r"],
            correlation_similarity(real_train[i], real_test[i])["r"], "ratio 1")
    real_d = cohens_d(real_test[1], real_test[0])
    add("effect_map_r", float(np.corrcoef(cohens_d(synth[1], synth[0]), real_d)[0, 1]),
        float(np.corrcoef(cohens_d(real_train[1], real_train[0]), real_d)[0, 1]), "ratio 1")
    add("effect_map_scale", _effect_scale(real_train, synth, MIN_EFFECT), 1.0, "1 (< 1: effects shrunk)", ratio=False)
    error = effect_error(*real_train, *synth, reference=tuple(real_test))
    add("effect_map_rmse", error["rmse"], error["train_rmse"], "ratio 1 (> 1: less faithful than the training data)")
    utility = tstr(*synth, *real_test, random_state=seed())
    add("tstr_auc", utility["tstr_auc"], utility["trtr_auc"], "ratio 1")
    pooled = [pd.concat(pair) for pair in (synth, real_train, real_test)]
    add("dcr_ratio", distance_to_closest_record(*pooled)["ratio"], 1.0, "1 (≪ 1: copies)", ratio=False)
    add("membership_auc", membership_inference_auc(*pooled, random_state=seed()), 0.5, "0.5", ratio=False)
    if n_attacks:
        columns = train[0].columns
        audit = privacy_audit(*(pd.concat([t[columns] for t in pair]) for pair in (raw, train, test)),
                              n_attacks=n_attacks, random_state=seed())
        for name, row in audit.iterrows():
            if name.startswith("exact_"):
                if not np.isnan(row["copies"]):
                    add(name, row["copies"], 0.0, "0", ratio=False)
            else:
                add(name, row["risk"], 0.0, "0 (flagged when low > 0.1)", ratio=False,
                    interval=(row["risk_low"], row["risk_high"]))
    table = pd.DataFrame(rows).T
    return table.astype({c: float for c in ("value", "low", "high", "reference", "ratio")})


def _effect_scale(train, synthetic, min_effect: float) -> float:
    """:func:`~roisynth.metrics.effect_scale` of ``(background, target)`` pairs, or NaN when no
    ROI reaches ``min_effect`` in the training tables (no effect to scale)."""
    from ..metrics import cohens_d, effect_scale

    if not (cohens_d(train[1], train[0]).abs() >= min_effect).any():
        return np.nan
    return effect_scale(*train, *synthetic, min_effect=min_effect)


def effect_scores(model, train: tuple, reference=None, unaffected=None, n_sample: int = 2000,
                  min_effect: float = MIN_EFFECT, random_state=0) -> dict:
    """How faithfully a fitted model reproduces the group differences (Cohen's d per ROI).

    The model draws ``n_sample`` synthetic subjects per cohort (unpaired ``sample``) and, if it
    pairs (``can_pair``), ``n_sample`` synthetic people healthy and ill (``sample_paired``,
    whose two arms are compared like two cohorts). Each synthetic effect map (d of target vs
    background) is scored against the training tables with the metrics of
    :mod:`roisynth.metrics`:

    - ``effect_scale_d``: :func:`~roisynth.metrics.effect_scale`, slope of the synthetic d on
      the training d over the ROIs with training |d| ≥ ``min_effect`` (1 ideal, < 1 shrunk;
      NaN when no ROI reaches it);
    - ``effect_error_ratio``: :func:`~roisynth.metrics.effect_error` against ``reference``,
      RMSE(synthetic d − reference d) / RMSE(training d − reference d) (1 = as informative as
      the training data, > 1 worse);
    - ``spurious_d``, ``spurious_d_train``: :func:`~roisynth.metrics.spurious_effects`, mean |d|
      over the ``unaffected`` ROIs of the synthetic and of the training data;
    - ``paired_effect_scale_d``, ``paired_effect_error_ratio``, ``paired_spurious_d``: the same
      for the paired samples.

    Figures that need a missing input (no ``reference``, no ``unaffected``, no pairing) are NaN.

    Parameters
    ----------
    model : synthesizer or SynthesisPipeline
        A fitted roisynth model.
    train : tuple of DataFrame
        ``(background, target)`` ROI tables the model was fitted on.
    reference : (background, target) pair of tables, Series or ndarray, default=None
        The reference effect map: held-out real tables, or d itself (e.g. a semi-synthetic
        benchmark's truth).
    unaffected : sequence of str, boolean Series or boolean ndarray, default=None
        ROIs with no true effect (e.g. those a semi-synthetic benchmark leaves untouched).
    n_sample : int, default=2000
        Synthetic subjects per cohort, and synthetic pairs.
    min_effect : float, default=0.2
        Smallest training |d| of the ROIs in the effect scale.
    random_state : int, default=0
        Seed of the synthetic draws.

    Returns
    -------
    dict
        Figure name -> value, as listed above.

    Examples
    --------
    >>> from roisynth import LinearContrastive, datasets
    >>> from roisynth.evaluation import effect_scores
    >>> cohort = datasets.load_example()
    >>> rois = datasets.roi_names()
    >>> cohorts = lambda t: (t.loc[t.diagnosis == "CN", rois], t.loc[t.diagnosis != "CN", rois])
    >>> train, test = cohorts(cohort.iloc[:2000]), cohorts(cohort.iloc[2000:])
    >>> model = LinearContrastive(random_state=0).fit(*train)
    >>> scores = effect_scores(model, train, reference=test)
    >>> round(scores["effect_scale_d"], 2), round(scores["paired_effect_scale_d"], 2)
    (1.05, 0.99)
    >>> bool(np.isnan(scores["spurious_d"]))  # no unaffected ROIs given
    True
    """
    from ..metrics import effect_error, spurious_effects
    from ..utils.validation import check_count

    n_sample = check_count(n_sample, "n_sample")
    columns = train[0].columns
    rng = np.random.default_rng(random_state)
    seeds = rng.integers(2**31, size=3)
    unpaired = tuple(model.sample(n_sample, cohort=c, random_state=int(s))[columns]
                     for c, s in zip(("background", "target"), seeds))
    synthetic = {"": unpaired}
    if model.can_pair:
        synthetic["paired_"] = tuple(t[columns] for t in model.sample_paired(n_sample, random_state=int(seeds[2])))
    scores = dict.fromkeys(("effect_scale_d", "effect_error_ratio", "spurious_d", "spurious_d_train",
                            "paired_effect_scale_d", "paired_effect_error_ratio", "paired_spurious_d"), np.nan)
    for prefix, (background, target) in synthetic.items():
        scores[f"{prefix}effect_scale_d"] = _effect_scale(train, (background, target), min_effect)
        if reference is not None:
            scores[f"{prefix}effect_error_ratio"] = effect_error(*train, background, target, reference)["ratio"]
        if unaffected is not None:
            spurious = spurious_effects(*train, background, target, unaffected)
            scores[f"{prefix}spurious_d"] = spurious["synthetic"]
            scores["spurious_d_train"] = spurious["train"]
    return scores


def semisynthetic_scores(model, data, n_train: int | tuple[int, int] = 1050, random_state=0,
                         n_sample: int = 100_000, n_bootstrap: int = 0, n_effect: int = 2000) -> dict:
    """Fit ``model`` on ``n_train`` rows of each cohort of a :class:`~roisynth.datasets.SemiSynthetic`
    benchmark and score it on the held-out rows against the known truth.

    All figures are computed in z-scores of the background training cohort. Figures a model
    cannot produce are NaN: the first three need pairing (``can_pair``), the next two a
    ``transform`` with common (``z*``) or salient (``s*``) columns.

    - ``effect_r``: correlation over ROIs of the mean paired difference (target − background
      over ``sample_paired``) with the true mean atrophy of the target cohort;
    - ``effect_scale``: least-squares slope of that synthetic effect map on the true one
      (1 = synthetic patients are exactly as atrophied as the real ones);
    - ``twin_rmse_ratio``: RMSE(healthy twin − true pre-atrophy volumes) / RMSE(target − true)
      on held-out targets (residual-mode counterfactuals; < 1 means the twin helps);
    - ``common_auc``: :func:`~roisynth.metrics.decoupling_auc` of background vs target on the
      common means of held-out subjects (0.5 = the common space carries no disease);
    - ``salient_completeness``: :func:`~roisynth.metrics.subtype_recovery` completeness of
      KMeans(1 + n_subtypes) on the salient means of held-out background + targets against
      (background, subtype 1..k);
    - ``effect_scale_d``, ``effect_error_ratio``, ``spurious_d``, ``spurious_d_train`` and, for
      pairing models, ``paired_effect_scale_d``, ``paired_effect_error_ratio``,
      ``paired_spurious_d``: :func:`effect_scores` on ``n_effect`` synthetic subjects per cohort
      (and pairs), with the true d = Cohen's d of the held-out target vs background rows and
      the unaffected ROIs = those whose ``data.factors`` are 0 in every target row;
    - every row of :func:`evaluate` (``n_bootstrap`` replicates for the W2 intervals):
      ``<metric>`` its value, ``<metric>_reference``, ``<metric>_ratio`` and, with a
      bootstrap, ``<metric>_low`` / ``<metric>_high``;
    - ``fit_seconds``; ``sample_seconds``: time to draw ``n_sample`` target rows; ``epochs``.

    Parameters
    ----------
    model : synthesizer
        An unfitted roisynth synthesizer (cloned before fitting).
    data : SemiSynthetic
        The benchmark data, e.g. :func:`semisynthetic_data`.
    n_train : int or (int, int), default=1050
        Training rows per cohort, or ``(background, target)`` training rows (e.g. ``(100, 190)``,
        a typical single study); the rest are held out.
    random_state : int, default=0
        Seed of the split and of every draw.
    n_sample : int, default=100_000
        Target rows drawn to time sampling.
    n_bootstrap : int, default=0
        Bootstrap replicates of the W2 intervals.
    n_effect : int, default=2000
        Synthetic subjects per cohort (and pairs) of the effect figures.

    Returns
    -------
    dict
        Metric name -> value, as listed above.

    Raises
    ------
    ValueError
        If ``n_train`` is not a size (or a pair of sizes) or leaves fewer than 10 held-out rows
        of a cohort.

    Examples
    --------
    >>> from roisynth import LinearContrastive
    >>> from roisynth.evaluation import semisynthetic_data, semisynthetic_scores
    >>> data = semisynthetic_data(n=1000)
    >>> scores = semisynthetic_scores(LinearContrastive(), data, n_train=300, n_sample=1000)
    >>> 0 < scores["effect_r"] <= 1
    True
    >>> bool(scores["spurious_d"] < 0.2)
    True
    """
    import time

    from sklearn.base import clone

    from ..metrics import decoupling_auc, subtype_recovery, twin_error

    rois = data.rois
    rng = np.random.default_rng(random_state)
    order_b, order_t, n_b, n_t = _split_rows(data, n_train, rng)
    train_b, test_b = data.background[rois].iloc[order_b[:n_b]], data.background[rois].iloc[order_b[n_b:]]
    train_t, test_t = data.target[rois].iloc[order_t[:n_t]], data.target[rois].iloc[order_t[n_t:]]
    truth_t = data.target_healthy[rois].iloc[order_t[n_t:]]
    subtype_t = np.asarray(data.subtype)[order_t[n_t:]]

    model = clone(model)
    start = time.perf_counter()
    model.fit(train_b, train_t)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    model.sample(n_sample, cohort="target")
    sample_seconds = time.perf_counter() - start
    z = standardizer(train_b)
    scores = dict.fromkeys(("effect_r", "effect_scale", "twin_rmse_ratio", "common_auc", "salient_completeness"),
                           np.nan)

    if model.can_pair:
        healthy, disease = model.sample_paired(20_000, random_state=int(rng.integers(2**31)))
        synthetic_effect = (z(disease) - z(healthy)).mean()
        true_effect = (z(data.target[rois]) - z(data.target_healthy[rois])).mean()
        twins = model.counterfactual(test_t, to="background")
        scores |= {"effect_r": float(np.corrcoef(synthetic_effect, true_effect)[0, 1]),
                   "effect_scale": float(synthetic_effect @ true_effect / (true_effect @ true_effect)),
                   "twin_rmse_ratio": twin_error(z(twins), z(truth_t), observed=z(test_t))["ratio"]}

    latents = latent_codes(model, test_b, test_t)
    if latents is not None:
        labels = np.r_[np.zeros(len(test_b), int), subtype_t]
        common, salient = latents.filter(regex=r"^z"), latents.filter(regex=r"^s")
        if common.shape[1]:
            scores["common_auc"] = decoupling_auc(common, labels > 0, random_state=random_state)
        if salient.shape[1]:
            recovery = subtype_recovery(salient, labels, random_state=random_state)
            scores["salient_completeness"] = recovery["completeness"]
    unaffected = (data.factors[rois] == 0).all()
    scores |= effect_scores(model, (train_b, train_t), reference=(test_b, test_t), unaffected=unaffected,
                            n_sample=n_effect, random_state=int(rng.integers(2**31)))
    table = evaluate(model, (train_b, train_t), (test_b, test_t), n_bootstrap=n_bootstrap, random_state=random_state)
    times = {"fit_seconds": fit_seconds, "sample_seconds": sample_seconds, "epochs": getattr(model, "n_epochs_", None)}
    return scores | flatten(table) | times


def _split_rows(data, n_train, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int, int]:
    """The split of :func:`semisynthetic_scores`: shuffled row orders of the background and target
    tables (background first, from ``rng``) and the training sizes; the first ``n_b`` / ``n_t`` rows
    of each order train, the rest are held out."""
    order_b, order_t = rng.permutation(len(data.background)), rng.permutation(len(data.target))
    return (order_b, order_t, *_training_sizes(n_train, (len(order_b), len(order_t))))


def _training_sizes(n_train, available: tuple[int, int]) -> tuple[int, int]:
    """``(background, target)`` training rows from an int or a pair, each leaving ≥ 10 held-out rows."""
    sizes = (n_train, n_train) if isinstance(n_train, (int, np.integer)) else tuple(n_train)
    if len(sizes) != 2 or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 10
                                  for n in sizes):
        raise ValueError(f"n_train must be an integer >= 10 or a (background, target) pair of them, got {n_train!r}")
    for cohort, n, rows in zip(("background", "target"), sizes, available):
        if rows < n + 10:
            raise ValueError(f"n_train={n_train!r} leaves {rows - n} held-out {cohort} rows of {rows}; "
                             "at least 10 are needed")
    return int(sizes[0]), int(sizes[1])


def flatten(table: pd.DataFrame) -> dict:
    """An :func:`evaluate` table as one flat record.

    Parameters
    ----------
    table : DataFrame
        A table of :func:`evaluate`.

    Returns
    -------
    dict
        ``<metric>`` (its value) and ``<metric>_low``, ``_high``, ``_reference``, ``_ratio``
        where they are defined (not NaN).

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from roisynth.evaluation import flatten
    >>> table = pd.DataFrame({"value": [2.5], "low": [np.nan], "high": [np.nan], "reference": [2.4],
    ...                       "ratio": [1.04], "ideal": ["ratio 1"]}, index=["w2_target"])
    >>> flatten(table)
    {'w2_target': 2.5, 'w2_target_reference': 2.4, 'w2_target_ratio': 1.04}
    """
    record = {}
    for name, row in table.iterrows():
        record[name] = row["value"]
        record |= {f"{name}_{column}": row[column] for column in ("low", "high", "reference", "ratio")
                   if not np.isnan(row[column])}
    return record


def latent_codes(model, background: pd.DataFrame, target: pd.DataFrame) -> pd.DataFrame | None:
    """Posterior means of both cohorts' rows (latent codes).

    Each row is encoded as its own cohort where the model's ``transform`` takes a ``cohort``
    (conditional models).

    Parameters
    ----------
    model : synthesizer or SynthesisPipeline
        A fitted roisynth model.
    background : DataFrame
        Background rows.
    target : DataFrame
        Target rows.

    Returns
    -------
    DataFrame or None
        Background rows then target rows, one column per latent dimension; None if the model
        has no ``transform``.

    Examples
    --------
    >>> from roisynth import LinearContrastive, datasets
    >>> from roisynth.evaluation import latent_codes
    >>> cohort = datasets.load_example()
    >>> rois = datasets.roi_names()
    >>> cn, ad = cohort.loc[cohort.diagnosis == "CN", rois], cohort.loc[cohort.diagnosis == "AD", rois]
    >>> codes = latent_codes(LinearContrastive(random_state=0).fit(cn, ad), cn.head(3), ad.head(2))
    >>> codes.shape[0], codes.columns[0]
    (5, 'z1')
    """
    import inspect

    if not hasattr(model, "transform"):
        return None
    if "cohort" in inspect.signature(model.transform).parameters:
        return pd.concat([model.transform(background, cohort="background"), model.transform(target, cohort="target")])
    return model.transform(pd.concat([background, target]))


def _covariate_design(table: pd.DataFrame, covariates) -> np.ndarray:
    return np.column_stack([np.ones(len(table)), covariate_matrix(table, list(covariates))])


def normative_z(reference: pd.DataFrame, table: pd.DataFrame, rois, covariates=()) -> pd.DataFrame:
    """z-scores of ``table[rois]`` against a normative ``reference`` (healthy) cohort.

    With ``covariates`` (e.g. age, sex, icv) each ROI is first regressed on them by OLS in
    the reference, and z = (x − predicted) / residual SD; without, z = (x − mean) / SD.

    Parameters
    ----------
    reference : DataFrame
        The normative cohort, with ``rois`` and ``covariates``.
    table : DataFrame
        The subjects to score, with the same columns.
    rois : list of str
        ROI columns.
    covariates : sequence of str, default=()
        Covariates regressed out (sex as in :func:`~roisynth.utils.covariates.covariate_matrix`).

    Returns
    -------
    DataFrame
        z-scores, indexed like ``table``, one column per ROI.

    Examples
    --------
    >>> from roisynth import datasets
    >>> from roisynth.evaluation import normative_z
    >>> cohort = datasets.load_example()
    >>> cn, ad = cohort[cohort.diagnosis == "CN"], cohort[cohort.diagnosis == "AD"]
    >>> z = normative_z(cn, ad, ["Hippocampus_L"], covariates=["age", "sex", "icv"])
    >>> bool(z["Hippocampus_L"].mean() < -1)
    True
    """
    design_ref = _covariate_design(reference, covariates)
    coef, *_ = np.linalg.lstsq(design_ref, reference[rois].to_numpy(float), rcond=None)
    residual_sd = (reference[rois].to_numpy(float) - design_ref @ coef).std(0, ddof=design_ref.shape[1])
    predicted = _covariate_design(table, covariates) @ coef
    return pd.DataFrame((table[rois].to_numpy(float) - predicted) / residual_sd, index=table.index, columns=rois)


def severity_comparison(model, reference: pd.DataFrame, held_out: pd.DataFrame, rois, group="diagnosis",
                        covariates=("age", "sex", "icv"), healthy="CN", patient="AD",
                        hippocampus=("Hippocampus_L", "Hippocampus_R")) -> pd.DataFrame:
    """Compare ``model.severity`` with two classical scores on held-out subjects.

    Scores: the model's severity; the hippocampal-volume z-score (sign flipped: smaller is
    more severe) and the normative mean |z| over all ROIs, both against the healthy
    ``reference`` cohort with ``covariates`` regressed out.

    Parameters
    ----------
    model : synthesizer or SynthesisPipeline
        A fitted model with ``severity``.
    reference : DataFrame
        Healthy subjects with ``rois``, ``covariates`` and ``hippocampus`` columns.
    held_out : DataFrame
        Subjects to score, with the same columns and ``group``.
    rois : list of str
        ROI columns the model takes.
    group : str, default="diagnosis"
        Column of the groups.
    covariates : sequence of str, default=("age", "sex", "icv")
        Covariates regressed out of the classical scores.
    healthy : str, default="CN"
        Label of the healthy group.
    patient : str, default="AD"
        Label of the patient group.
    hippocampus : tuple of str, default=("Hippocampus_L", "Hippocampus_R")
        Columns summed into the hippocampal volume.

    Returns
    -------
    DataFrame
        One row per score: its mean in each group and ``auc_<patient>_vs_<healthy>``.

    Examples
    --------
    >>> from roisynth import LinearContrastive, datasets
    >>> from roisynth.evaluation import severity_comparison
    >>> cohort = datasets.load_example()
    >>> rois = datasets.roi_names()
    >>> train, test = cohort.iloc[:2000], cohort.iloc[2000:]
    >>> model = LinearContrastive(random_state=0).fit(train.loc[train.diagnosis == "CN", rois],
    ...                                               train.loc[train.diagnosis == "AD", rois])
    >>> table = severity_comparison(model, train[train.diagnosis == "CN"], test, rois)
    >>> table.index.tolist()
    ['severity', 'hippocampal_z', 'normative_mean_abs_z']
    """
    from sklearn.metrics import roc_auc_score

    hippocampal = held_out.assign(_hippocampus=held_out[list(hippocampus)].sum(axis=1))
    reference = reference.assign(_hippocampus=reference[list(hippocampus)].sum(axis=1))
    scores = pd.DataFrame(
        {
            "severity": model.severity(held_out[rois]),
            "hippocampal_z": -normative_z(reference, hippocampal, ["_hippocampus"], covariates)["_hippocampus"],
            "normative_mean_abs_z": normative_z(reference, held_out, rois, covariates).abs().mean(axis=1),
        }
    )
    labels = held_out[group]
    table = scores.groupby(labels).mean().T
    pair = labels.isin([healthy, patient])
    table[f"auc_{patient}_vs_{healthy}"] = [roc_auc_score(labels[pair] == patient, scores.loc[pair, c]) for c in scores]
    return table
