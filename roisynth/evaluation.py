"""Model-level evaluation shared by the demo, the tests and the benchmarks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .covariates import covariate_matrix
from .metrics import gaussian_w2


def standardizer(reference: pd.DataFrame):
    """Function mapping a table to z-scores of ``reference`` (e.g. the healthy training cohort)."""
    mean, sd = reference.mean(), reference.std()
    return lambda df: (df[reference.columns] - mean) / sd


def fidelity_summary(model, train: tuple, test: tuple, random_state=0) -> pd.DataFrame:
    """Gaussian W2 of synthetic vs held-out real data for each cohort, next to the floor.

    ``train`` and ``test`` are ``(background, target)`` ROI tables. All tables are z-scored
    on the background training cohort. For each cohort, ``n`` = its training size: the model
    draws ``n`` synthetic subjects of that cohort and the *floor* is W2 between ``n``
    real training subjects and the held-out ones, i.e. what a perfect generator would score
    with the same sample sizes. ``ratio`` = synthetic / floor (1 is ideal).
    """
    z = standardizer(train[0])
    rng = np.random.default_rng(random_state)
    rows = []
    for cohort, real_train, real_test in zip(("background", "target"), train, test):
        k = len(real_train)
        synth = model.sample(k, cohort=cohort, random_state=int(rng.integers(2**31)))
        w2 = gaussian_w2(z(synth), z(real_test))
        floor = gaussian_w2(z(real_train), z(real_test))
        rows.append({"cohort": cohort, "n_synthetic": k, "n_test": len(real_test), "w2": w2, "floor": floor, "ratio": w2 / floor})
    return pd.DataFrame(rows).set_index("cohort")


def semisynthetic_scores(model, data, n_train: int = 1050, random_state=0, n_sample: int = 100_000) -> dict:
    """Fit ``model`` on ``n_train`` rows per cohort of a :class:`~roisynth.datasets.SemiSynthetic`
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
    - ``common_auc``: 5-fold logistic-regression AUC of background vs target on the common
      means of held-out subjects (0.5 = the common space carries no disease);
    - ``salient_completeness``: completeness of KMeans(1 + n_subtypes) on the salient means
      of held-out background + targets against (background, subtype 1..k);
    - ``w2_background`` / ``w2_target``: Gaussian W2 of synthetic vs held-out real rows, and
      ``w2_ratio_*`` its ratio to the real-vs-real floor (:func:`fidelity_summary`);
    - ``fit_seconds``; ``sample_seconds``: time to draw ``n_sample`` target rows.
    """
    import time

    from sklearn.base import clone
    from sklearn.cluster import KMeans
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import completeness_score
    from sklearn.model_selection import cross_val_score

    rois = data.rois
    rng = np.random.default_rng(random_state)
    order_b, order_t = rng.permutation(len(data.background)), rng.permutation(len(data.target))
    if min(len(order_b), len(order_t)) <= n_train + 10:
        raise ValueError(f"n_train={n_train} leaves too few held-out rows")
    train_b, test_b = data.background[rois].iloc[order_b[:n_train]], data.background[rois].iloc[order_b[n_train:]]
    train_t, test_t = data.target[rois].iloc[order_t[:n_train]], data.target[rois].iloc[order_t[n_train:]]
    truth_t = data.target_healthy[rois].iloc[order_t[n_train:]]
    subtype_t = np.asarray(data.subtype)[order_t[n_train:]]

    model = clone(model)
    start = time.perf_counter()
    model.fit(train_b, train_t)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    model.sample(n_sample, cohort="target")
    sample_seconds = time.perf_counter() - start
    z = standardizer(train_b)
    scores = dict.fromkeys(("effect_r", "effect_scale", "twin_rmse_ratio", "common_auc", "salient_completeness"), np.nan)

    if model.can_pair:
        healthy, disease = model.sample_paired(20_000, random_state=int(rng.integers(2**31)))
        synthetic_effect = (z(disease) - z(healthy)).mean()
        true_effect = (z(data.target[rois]) - z(data.target_healthy[rois])).mean()
        twins = model.counterfactual(test_t, to="background")
        twin_error = np.sqrt(((z(twins) - z(truth_t)) ** 2).to_numpy().mean())
        raw_error = np.sqrt(((z(test_t) - z(truth_t)) ** 2).to_numpy().mean())
        scores |= {"effect_r": float(np.corrcoef(synthetic_effect, true_effect)[0, 1]),
                   "effect_scale": float(synthetic_effect @ true_effect / (true_effect @ true_effect)),
                   "twin_rmse_ratio": float(twin_error / raw_error)}

    latents = _latents(model, test_b, test_t)
    if latents is not None:
        labels = np.r_[np.zeros(len(test_b), int), subtype_t]
        common = latents.filter(regex=r"^z").to_numpy()
        salient = latents.filter(regex=r"^s").to_numpy()
        if common.shape[1]:
            auc = cross_val_score(LogisticRegression(max_iter=1000), common, labels > 0, cv=5, scoring="roc_auc").mean()
            scores["common_auc"] = float(auc)
        if salient.shape[1]:
            clusters = KMeans(1 + len(np.unique(subtype_t)), n_init=10, random_state=random_state).fit_predict(salient)
            scores["salient_completeness"] = float(completeness_score(labels, clusters))
    fidelity = fidelity_summary(model, (train_b, train_t), (test_b, test_t), random_state)
    return scores | {
        "w2_background": float(fidelity.loc["background", "w2"]),
        "w2_target": float(fidelity.loc["target", "w2"]),
        "w2_ratio_background": float(fidelity.loc["background", "ratio"]),
        "w2_ratio_target": float(fidelity.loc["target", "ratio"]),
        "fit_seconds": fit_seconds,
        "sample_seconds": sample_seconds,
        "epochs": getattr(model, "n_epochs_", None),
    }


def _latents(model, background: pd.DataFrame, target: pd.DataFrame) -> pd.DataFrame | None:
    """Posterior means of both cohorts' rows, each encoded as its own cohort where the model's
    ``transform`` takes a ``cohort`` (conditional models); None without ``transform``."""
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
    ``reference`` cohort with ``covariates`` regressed out. Returns, per score, its mean in
    each group and the AUC separating ``patient`` from ``healthy``.
    """
    from sklearn.metrics import roc_auc_score

    hippocampal = held_out.assign(_hippocampus=held_out[list(hippocampus)].sum(1))
    reference = reference.assign(_hippocampus=reference[list(hippocampus)].sum(1))
    scores = pd.DataFrame(
        {
            "severity": model.severity(held_out[rois]),
            "hippocampal_z": -normative_z(reference, hippocampal, ["_hippocampus"], covariates)["_hippocampus"],
            "normative_mean_abs_z": normative_z(reference, held_out, rois, covariates).abs().mean(1),
        }
    )
    labels = held_out[group]
    table = scores.groupby(labels).mean().T
    pair = labels.isin([healthy, patient])
    table[f"auc_{patient}_vs_{healthy}"] = [roc_auc_score(labels[pair] == patient, scores.loc[pair, c]) for c in scores]
    return table
