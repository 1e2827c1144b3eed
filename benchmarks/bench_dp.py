"""Benchmark of differentially private fits (issue 20): the privacy–utility table and an audit.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_dp.py [--seeds 1] [--epsilons 1 3 10 inf]
      OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_dp.py --settings "epochs=100" "epochs=200,batch_size=64" \
          [--epsilons 10]
      OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_dp.py --audit [--repeats 100] [--epsilons 1 inf]
      OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_dp.py --pipeline [--seeds 2] [--epsilons 10]

The table: ContrastiveVAE fitted with ``privacy=DifferentialPrivacy(epsilon=ε)`` (δ = 1/n², n the
training subjects of both cohorts) and the settings ``DP_SETTINGS``, against the ordinary fit
(ε = ∞, the defaults), on

1. the semi-synthetic benchmark (1050 training subjects per cohort, 139 ROIs):
   :func:`~roisynth.evaluation.semisynthetic_scores` — W2/floor per cohort, the effect scale and
   error ratio of the synthetic Cohen's d map, the paired effect scale, the twin RMSE ratio,
   the membership-inference AUC, anonymeter-style singling-out and linkability risks, fit time;
2. the bundled cohort (CN vs AD, the demo's 80/20 split, 139 ROIs):
   :func:`~roisynth.evaluation.evaluate` and :func:`~roisynth.evaluation.effect_scores` on the
   held-out subjects.

``--settings`` scores private fits with other settings (``key=value`` pairs of ContrastiveVAE or
DifferentialPrivacy, e.g. ``means_share=0.2``; ``model='ConditionalVAE'`` fits the conditional VAE, and
ε = inf its ordinary fit) on the semi-synthetic benchmark, seed 0 (section "Differential privacy:
settings", followed by the other models named).

``--audit`` trains ``--repeats`` small models on a data set with and as many without a canary
subject (an outlier healthy control) and attacks the canary's membership with the model's own
per-subject loss (white box, the strongest simple attack); the advantage TPR − FPR of the best
threshold must stay below the (ε, δ) bound (e^ε − 1 + 2δ) / (e^ε + 1), and the empirical ε lower
bound (Clopper–Pearson, 95 %) below ε.

``--pipeline`` scores, on the bundled cohort, the private fit alone against the private
``SynthesisPipeline(CovariateResidualizer(), same model)`` with and without ``interactions``
(preprocessing, cohort covariate effects and covariate models inside the same ε,
``preprocessing_share`` 0.2; public age range 55-90, the simulator's design range; section
"Differential privacy: pipeline").

Records in benchmarks/RESULTS.md (section "Differential privacy (issue 20)" and, with --audit,
"Differential privacy: audit").
"""

from __future__ import annotations

import argparse
import ast
import math
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import beta

from roisynth import ConditionalVAE, ContrastiveVAE, CovariateResidualizer, datasets, make_pipeline
from roisynth.demo import split
from roisynth.evaluation import effect_scores, evaluate, flatten, semisynthetic_data, semisynthetic_scores
from roisynth.exceptions import SmallDataWarning
from roisynth.nn import seeded
from roisynth.privacy import DifferentialPrivacy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402

#: The private fits' settings (the other parameters are ContrastiveVAE's defaults).
DP_SETTINGS = {"epochs": 100, "batch_size": 64}
COLUMNS = {  # semisynthetic_scores / evaluate key -> column of the table
    "w2_background_ratio": "W2/floor B",
    "w2_target_ratio": "W2/floor T",
    "effect_scale_d": "effect scale",
    "effect_error_ratio": "effect error ratio",
    "paired_effect_scale_d": "paired effect scale",
    "twin_rmse_ratio": "twin RMSE ratio",
    "membership_auc": "membership AUC",
    "singling_out_multivariate": "singling-out risk",
    "linkability": "linkability risk",
    "fit_seconds": "fit s",
}


MODELS = {"ContrastiveVAE": ContrastiveVAE, "ConditionalVAE": ConditionalVAE}


def model_at(eps: float, seed: int, settings: dict | None = None):
    """The ordinary fit (the defaults) for ε = ∞, else the private fit within (ε, 1/n²) with ``settings``
    (``DP_SETTINGS`` when None; ``model`` names the class, ContrastiveVAE by default; keys of
    DifferentialPrivacy go to the budget, the others to the model)."""
    settings = dict(DP_SETTINGS if settings is None else settings)
    cls = MODELS[settings.pop("model", "ContrastiveVAE")]
    if math.isinf(eps):
        return cls(verbose=False, random_state=seed)
    budget = {k: v for k, v in settings.items() if k in DifferentialPrivacy.__dataclass_fields__}
    model = {k: v for k, v in settings.items() if k not in budget}
    return cls(verbose=False, random_state=seed, privacy=DifferentialPrivacy(epsilon=eps, **budget), **model)


def parse_settings(text: str) -> dict:
    """``"epochs=200,batch_size=64"`` -> {"epochs": 200, "batch_size": 64} (values as Python literals)."""
    return {key: ast.literal_eval(value) for key, value in (item.split("=") for item in text.split(",") if item)}


def settings_table(configs: list[str], epsilons: list[float]) -> pd.DataFrame:
    data = semisynthetic_data()
    rows = []
    for eps in epsilons:
        for config in configs:
            model = model_at(eps, 0, parse_settings(config))
            scores = semisynthetic_scores(model, data, random_state=0, n_sample=20_000)
            name = config if not math.isinf(eps) else f"ordinary {type(model).__name__} (defaults)"
            rows.append({"epsilon": eps, "settings": name, **{v: scores[k] for k, v in COLUMNS.items()},
                         "common AUC": scores["common_auc"]})
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def semisynthetic_table(epsilons: list[float], seeds: int) -> pd.DataFrame:
    data = semisynthetic_data()
    rows = []
    for eps in epsilons:
        for seed in range(seeds):
            scores = semisynthetic_scores(model_at(eps, seed), data, random_state=seed, n_sample=20_000)
            rows.append({"epsilon": eps, "seed": seed, **{v: scores[k] for k, v in COLUMNS.items()}})
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)


#: What ``--pipeline`` compares: the private fit alone and inside a private pipeline, with and without the
#: per-cohort covariate effects (``interactions``).
PIPELINE_KINDS = ("synthesizer alone", "pipeline: CovariateResidualizer",
                  "pipeline: CovariateResidualizer, interactions=False")


def bundled_table(epsilons: list[float], seeds: int, pipeline: bool = False) -> pd.DataFrame:
    """The bundled cohort's scores per ε and seed; ``pipeline``: each private fit alone and inside
    ``SynthesisPipeline(CovariateResidualizer(), ...)`` (column "model")."""
    cohort = datasets.load_example()
    rois = datasets.roi_names()
    rows = []
    for seed in range(seeds):
        rng = np.random.RandomState(seed)
        (cn_train, cn_test), (ad_train, ad_test) = (split(cohort[cohort.diagnosis == d], 0.2, rng)
                                                    for d in ("CN", "AD"))
        train, test = (cn_train[rois], ad_train[rois]), (cn_test[rois], ad_test[rois])
        for eps in epsilons:
            for kind in PIPELINE_KINDS if pipeline else ("",):
                model, fit_tables = model_at(eps, seed), train
                if kind.startswith("pipeline"):
                    if model.privacy is not None:
                        model.set_params(privacy=replace(model.privacy, covariate_bounds={"age": (55.0, 90.0)}))
                    model = make_pipeline(CovariateResidualizer(), model).set_params(
                        rois=rois, random_state=seed, interactions="interactions=False" not in kind)
                    fit_tables = (cn_train, ad_train)
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", SmallDataWarning)
                    warnings.simplefilter("ignore", RuntimeWarning)  # volumes below 0 set to 0 by the pipeline
                    model.fit(*fit_tables)
                    seconds = time.perf_counter() - start
                    scores = flatten(evaluate(model, train, test, n_bootstrap=0, random_state=seed))
                    scores |= effect_scores(model, train, reference=test, random_state=seed) | {"fit_seconds": seconds}
                label = {"model": kind} if pipeline else {}
                rows.append({"epsilon": eps, **label, "seed": seed,
                             **{v: scores.get(k, np.nan) for k, v in COLUMNS.items()}})
                print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Mean over seeds per ε (with [min–max] when there are several seeds)."""
    grouped = table.drop(columns="seed").groupby("epsilon", sort=True)
    mean, low, high = grouped.mean(), grouped.min(), grouped.max()
    if table.seed.nunique() == 1:
        return mean.round(3)
    return mean.round(3).astype(str) + " [" + low.round(3).astype(str) + "–" + high.round(3).astype(str) + "]"


# -- the audit ------------------------------------------------------------------------------
def _canary_loss(model: ContrastiveVAE, canary: np.ndarray, draws: int = 256) -> float:
    """The fitted model's per-subject loss (the private objective, fixed draws) of the canary, a patient."""
    x = torch.as_tensor(model._standardize(canary[None]), dtype=torch.float32).expand(draws, -1)
    with torch.no_grad(), seeded(12345):
        eps = torch.randn(draws, 8, model.n_common + model.n_salient)
        prior = torch.randn(64, model.n_common)
        return float(model.module_.private_loss(x, torch.ones(draws), eps, prior, model.mmd_weight,
                                                model.background_salient_weight).mean())


def audit(epsilons: list[float], repeats: int, n: int = 100) -> pd.DataFrame:
    """Membership of a canary patient in fits on ``n`` CN + ``n`` AD subjects (12 ROIs): ``repeats`` fits with
    it and ``repeats`` without (seeds 0..repeats-1), private at each finite ε, ordinary for ε = inf."""
    cohort = datasets.load_example()
    rois = datasets.roi_names()[:12]
    cn = cohort.loc[cohort.diagnosis == "CN", rois].iloc[:n]
    ad = cohort.loc[cohort.diagnosis == "AD", rois].iloc[:n]
    center, scale = DifferentialPrivacy(epsilon=1.0).standardization(rois)
    canary = center + 2.5 * scale * np.where(np.arange(len(rois)) % 2, 1.0, -1.0)  # unlike any real subject
    with_canary = pd.concat([ad, pd.DataFrame([canary], columns=rois)], ignore_index=True)
    settings = {"epochs": 30, "batch_size": 32, "n_hidden": 16, "verbose": False}
    rows = []
    for eps in epsilons:
        privacy = None if math.isinf(eps) else DifferentialPrivacy(epsilon=eps)
        losses = {}
        for member, target in ((True, with_canary), (False, ad)):
            losses[member] = []
            for seed in range(repeats):
                model = ContrastiveVAE(privacy=privacy, validation_fraction=0.0, random_state=seed, **settings)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model.fit(cn, target)
                losses[member].append(_canary_loss(model, canary))
        rows.append({"epsilon": eps, **_advantage(np.array(losses[True]), np.array(losses[False]), eps, 2 * n + 1)})
        print(rows[-1], flush=True)
    return pd.DataFrame(rows)


AUDIT_NOTE = """Fits on 100 CN + 100 AD subjects of the bundled cohort (12 ROIs, `epochs=30, batch_size=32,
n_hidden=16`, no validation split), `repeats` seeds with and as many without a canary patient (every ROI 2.5
public-scale units from the norm's centre, alternating in sign: unlike any real subject). The attack thresholds
the fitted model's own per-subject loss of the canary (white box). advantage = TPR − FPR at the best threshold;
advantage_bound = (e^ε − 1 + 2δ)/(e^ε + 1), the most any test can reach under (ε, δ)-DP; empirical_epsilon_low =
log((TPR_low − δ) / FPR_high) with 95 % Clopper–Pearson limits, the ε the attack proves (100 repeats can prove
at most 3.28). One canary, one attack: a check that the implementation leaks no more than its bound, not a tight
audit."""


def _advantage(member: np.ndarray, outsider: np.ndarray, eps: float, n: int) -> dict:
    """Best-threshold advantage of "member if the canary's loss < t", its (ε, δ) bound and the
    empirical ε lower bound log((TPR_low − δ) / FPR_high) with 95 % Clopper–Pearson limits."""
    delta = 1 / n**2
    best = {"advantage": 0.0, "tpr": 0.0, "fpr": 0.0}
    for t in np.unique(np.r_[member, outsider]):
        tpr, fpr = (member <= t).mean(), (outsider <= t).mean()
        if tpr - fpr > best["advantage"]:
            best = {"advantage": tpr - fpr, "tpr": tpr, "fpr": fpr}
    k = len(member)
    tp, fp = round(best["tpr"] * k), round(best["fpr"] * k)
    tpr_low = beta.ppf(0.025, tp, k - tp + 1) if tp > 0 else 0.0
    fpr_high = beta.ppf(0.975, fp + 1, k - fp) if fp < k else 1.0
    empirical = math.log((tpr_low - delta) / fpr_high) if tpr_low > delta else 0.0
    bound = 1.0 if math.isinf(eps) else (math.exp(eps) - 1 + 2 * delta) / (math.exp(eps) + 1)
    return best | {"advantage_bound": bound, "empirical_epsilon_low": max(empirical, 0.0), "repeats": k}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--epsilons", nargs="+", type=float, default=[1.0, 3.0, 10.0, math.inf])
    parser.add_argument("--audit", action="store_true", help="run only the membership audit")
    parser.add_argument("--settings", nargs="+", help="run only the settings study of these key=value configurations")
    parser.add_argument("--repeats", type=int, default=100, help="audit: fits with and without the canary")
    parser.add_argument("--pipeline", action="store_true",
                        help="run only the bundled cohort: the private fit alone and in a private pipeline")
    parser.add_argument("--no-record", action="store_true", help="print only, do not write RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    eps_text = " ".join(f"{e:g}" for e in args.epsilons)
    if args.pipeline:
        table = bundled_table(args.epsilons, args.seeds, pipeline=True).drop(columns="twin RMSE ratio")
        summary = table.drop(columns="seed").groupby(["epsilon", "model"]).mean().round(3)
        command = (f"`OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_dp.py --pipeline --seeds {args.seeds} "
                   f"--epsilons {eps_text}`")
        body = (f"## Differential privacy: pipeline (`benchmarks/bench_dp.py --pipeline`)\n\n"
                f"### Bundled cohort (CN vs AD, 80/20 split, 139 ROIs), mean over {args.seeds} seed(s) "
                f"({time.strftime('%Y-%m-%d')})\n\n{command}\n\n{summary.to_markdown()}\n\n"
                f"Per seed:\n\n{table.round(3).to_markdown(index=False)}")
        print(body)
        if not args.no_record:
            record("Differential privacy: pipeline", body)
        return
    if args.settings:
        table = settings_table(args.settings, args.epsilons)
        command = (f"`OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_dp.py --settings "
                   f"{' '.join(repr(c) for c in args.settings)} --epsilons {eps_text}`")
        models = sorted({parse_settings(c).get("model", "ContrastiveVAE") for c in args.settings} - {"ContrastiveVAE"})
        section = ", ".join(["Differential privacy: settings", *models])
        body = (f"## {section} (`benchmarks/bench_dp.py --settings`)\n\n"
                f"### Private fits with other settings, semi-synthetic benchmark, seed 0 ({time.strftime('%Y-%m-%d')})"
                f"\n\n{command}\n\n{table.round(3).to_markdown(index=False)}")
        print(body)
        if not args.no_record:
            record(section, body)
        return
    if args.audit:
        table = audit(args.epsilons, args.repeats)
        command = (f"`OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_dp.py --audit --repeats {args.repeats} "
                   f"--epsilons {eps_text}`")
        body = (f"## Differential privacy: audit (`benchmarks/bench_dp.py --audit`)\n\n"
                f"### Membership audit with a canary ({time.strftime('%Y-%m-%d')})\n\n{command}\n\n"
                f"{table.to_markdown()}\n\n{AUDIT_NOTE}")
        print(body)
        if not args.no_record:
            record("Differential privacy: audit", body)
        return
    semi = summarize(semisynthetic_table(args.epsilons, args.seeds))
    bundled = summarize(bundled_table(args.epsilons, args.seeds))
    command = (f"`OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_dp.py --seeds {args.seeds} "
               f"--epsilons {eps_text}`")
    settings = ", ".join(f"{k}={v!r}" for k, v in DP_SETTINGS.items())
    body = f"""## Differential privacy (issue 20, `benchmarks/bench_dp.py`)

Measured {time.strftime('%Y-%m-%d')} on a shared 2-core x86_64 machine, 1 torch thread, torch \
{torch.__version__}: {command}. Private fits: `ContrastiveVAE(privacy=DifferentialPrivacy(epsilon=ε), {settings})`,
δ = 1/n²; ε = inf is the ordinary fit (defaults, early stopping, aggregate sampler, calibration).

### Semi-synthetic benchmark (1050 training subjects per cohort, 139 ROIs), mean [min–max] over {args.seeds} seed(s)

{semi.to_markdown()}

### Bundled cohort (CN vs AD, 80/20 split, 139 ROIs), mean [min–max] over {args.seeds} seed(s)

{bundled.to_markdown()}
"""
    print(body)
    if not args.no_record:
        record("Differential privacy (issue 20)", body)


if __name__ == "__main__":
    main()
