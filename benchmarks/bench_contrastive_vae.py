"""Benchmark of the ContrastiveVAE in the seed paper's full setting (issue 2 targets).

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_contrastive_vae.py [--seeds 3]
      OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_contrastive_vae.py --effects [--seeds 3]
          [--sizes 1050/1050 100/190] [--configs default "calibration='none'" ...]
      OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_contrastive_vae.py --fidelity [--severity] [--seeds 3]
          [--sizes 100/190] [--configs "noise='full'" "noise='diagonal'" ...]

``--fidelity`` prints :func:`semisynthetic_scores` (W2/floor, twins, common AUC, completeness,
effects) of every configuration at every size and seed, mean [min–max] over seeds, and with
``--severity`` the severity study on the bundled cohort for every configuration and seed; with
``--record`` it also records them (section "ContrastiveVAE fidelity: <configs>").
``--effects`` runs only the issue-15 study (section "Faithful disease effects (issue 15)"):
every configuration (keyword arguments of ContrastiveVAE) at every training size and seed on
the semi-synthetic data with 24 000 simulated CN subjects (so the true d comes from ~10 000
held-out subjects per cohort), and the severity scores on the bundled cohort at both sizes.

Prints and records in benchmarks/RESULTS.md (section "ContrastiveVAE"):
1. semi-synthetic benchmark (simulated CN, Table 1 atrophy, 1050 training subjects per
   cohort, 139 ROIs, 500 epochs max with early stopping, one thread), per seed;
2. time to sample 1,000,000 paired rows (1 and 2 threads, best of 3);
3. severity vs a hippocampal z-score and a normative mean-|z| on the bundled cohort;
4. wall time and peak memory of `roisynth demo`.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from roisynth import ContrastiveVAE, datasets
from roisynth.base import COHORTS
from roisynth.demo import PATIENTS, split
from roisynth.evaluation import semisynthetic_data, semisynthetic_scores, severity_comparison
from roisynth.exceptions import SmallDataWarning

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402

TARGETS = {"effect_r": ">= 0.95", "effect_scale": "≈ 1", "twin_rmse_ratio": "<= 0.5", "common_auc": "<= 0.6",
           "salient_completeness": ">= 0.6", "w2_background_ratio": "<= 1.2", "w2_target_ratio": "<= 1.2",
           "fit_seconds": "<= 10"}


ABLATIONS = {  # design choices of roisynth that the paper does not have, switched back one at a time
    "default": {},
    "noise='diagonal' (per-ROI variance only)": {"noise": "diagonal"},
    "latent_sampling='prior' (codes from N(0, I))": {"latent_sampling": "prior"},
    "background_salient_weight=0 (no MM-cVAE term)": {"background_salient_weight": 0.0},
}


def semisynthetic(data, seeds: int) -> pd.DataFrame:
    rows = []
    for seed in range(seeds):
        scores = semisynthetic_scores(ContrastiveVAE(random_state=seed, verbose=False), data, n_train=1050,
                                      random_state=seed)
        rows.append({"seed": seed, **scores})
        print(rows[-1], flush=True)
    return pd.DataFrame(rows).set_index("seed")


def parse_config(config: str) -> dict:
    """Keyword arguments of ContrastiveVAE from a --configs entry ("default": none)."""
    return {} if config == "default" else eval(f"dict({config})")  # noqa: S307 (benchmark CLI)


def effects(configs: list[str], sizes: list[tuple[int, int]], seeds: int, n_synthetic: int = 2000) -> pd.DataFrame:
    """One row per (configuration, calibration, size, seed) on the semi-synthetic data with 24 000
    simulated CN (the true d from ~10 000 held-out subjects per cohort): effect scale, effect
    error ratio and spurious mean |d| of ``n_synthetic`` unpaired subjects per cohort and of as
    many pairs, fit time and epochs. Each fit is scored twice, as fitted and with its calibration
    offsets removed (``calibration="none"``: the same network, which the calibration does not
    change), so the two rows differ only by the calibration."""
    from roisynth.metrics import effect_error, effect_scale, spurious_effects

    data = semisynthetic_data(n=24_000)
    rois = data.rois
    unaffected = (data.factors[rois] == 0).all()
    rows = []
    for config in configs:
        params = parse_config(config)
        for size in sizes:
            for seed in range(seeds):
                rng = np.random.default_rng(seed)
                order_b, order_t = rng.permutation(len(data.background)), rng.permutation(len(data.target))
                train = data.background[rois].iloc[order_b[:size[0]]], data.target[rois].iloc[order_t[:size[1]]]
                held_out = data.background[rois].iloc[order_b[size[0]:]], data.target[rois].iloc[order_t[size[1]:]]
                model = ContrastiveVAE(random_state=seed, verbose=False, **params)
                start = time.perf_counter()
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    model.fit(*train)
                seconds = time.perf_counter() - start
                for calibrated in (True, False) if model.calibration != "none" else (False,):
                    if not calibrated:
                        model.calibration, model.calibration_offsets_ = "none", None
                    synthetic = [model.sample(n_synthetic, cohort=c, random_state=seed + 1) for c in COHORTS]
                    pairs = model.sample_paired(n_synthetic, random_state=seed + 2)
                    error = effect_error(*train, *synthetic, held_out)
                    rows.append({
                        "config": config, "calibration": "moments" if calibrated else "none",
                        "size": f"{size[0]}/{size[1]}", "seed": seed,
                        "scale": effect_scale(*train, *synthetic), "error ratio": error["ratio"],
                        "spurious": spurious_effects(*train, *synthetic, unaffected)["synthetic"],
                        "spurious (train)": spurious_effects(*train, *synthetic, unaffected)["train"],
                        "paired scale": effect_scale(*train, *pairs),
                        "paired error ratio": effect_error(*train, *pairs, held_out)["ratio"],
                        "paired spurious": spurious_effects(*train, *pairs, unaffected)["synthetic"],
                        "fit (s)": seconds, "epochs": model.n_epochs_,
                        "warned": any(issubclass(w.category, SmallDataWarning) for w in caught),
                    })
                    print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def summarize(table: pd.DataFrame, keys=("size", "config", "calibration")) -> pd.DataFrame:
    """mean [min–max] over seeds of every figure, per configuration and size."""
    groups = table.drop(columns="seed").groupby(list(keys), sort=False)
    fmt = lambda v: f"{v.mean():.3f} [{v.min():.3f}–{v.max():.3f}]" if len(v) > 1 else f"{v.mean():.3f}"  # noqa: E731
    return groups.agg(fmt)


class _PipelineSeverity:
    """``severity(X, **options)`` of a fitted pipeline's synthesizer, for the rows of ``table`` (with
    their covariates) that ``X`` indexes; ``severity_comparison`` passes ROIs only."""

    def __init__(self, pipeline, table: pd.DataFrame, options: dict):
        self.pipeline, self.table, self.options = pipeline, table, options

    def severity(self, X: pd.DataFrame) -> pd.Series:
        values = self.pipeline._forward(self.table.loc[X.index])[list(self.pipeline.feature_names_in_)]
        return self.pipeline.synthesizer.severity(values, **self.options)


# Every severity definition: the default effect_z, its two limits (full Σ⁻¹, diagonal) and the other kinds.
SEVERITY_OPTIONS = ({"kind": "effect_z"}, {"kind": "effect_z", "shrinkage": 0.0},
                    {"kind": "effect_z", "shrinkage": 1.0}, {"kind": "llr"}, {"kind": "mahalanobis"},
                    {"kind": "mean_abs"})


def severity_at(sizes: list[tuple[int, int]], options=SEVERITY_OPTIONS, seed: int = 0, **params) -> pd.DataFrame:
    """Every severity definition against the references on held-out subjects of the bundled
    cohort (the demo's split; CovariateResidualizer + ContrastiveVAE), training on all (``None``)
    or a random subset (CN, patients) of the training split; ``seed`` draws the subset and seeds
    the model."""
    from roisynth import CovariateResidualizer, make_pipeline

    cohort = datasets.load_example()
    rois = datasets.roi_names()
    rng = np.random.default_rng(0)  # the demo's split
    cn_train, cn_test = split(cohort[cohort.diagnosis == "CN"], 0.2, rng)
    pt_train, pt_test = split(cohort[cohort.diagnosis.isin(PATIENTS)], 0.2, rng)
    held_out = pd.concat([cn_test, pt_test])
    tables = []
    for size in sizes:
        cn, pt = (cn_train, pt_train) if size is None else (cn_train.sample(size[0], random_state=seed),
                                                             pt_train.sample(size[1], random_state=seed))
        pipeline = make_pipeline(CovariateResidualizer(), ContrastiveVAE(random_state=seed, verbose=False, **params))
        pipeline.fit(cn, pt)
        label = "all" if size is None else f"{size[0]}/{size[1]}"
        for option in options:
            table = severity_comparison(_PipelineSeverity(pipeline, held_out, option), cn, held_out, rois)
            name = "severity " + ", ".join(f"{k}={v!r}" for k, v in option.items())
            tables.append(table.rename(index={"severity": name}).assign(train=label))
    table = pd.concat(tables).reset_index(names="score").drop_duplicates(["score", "train"])
    return table.set_index(["train", "score"])


FIDELITY = {"effect_scale_d": "effect scale", "effect_error_ratio": "error ratio", "spurious_d": "spurious",
            "spurious_d_train": "spurious (train)", "w2_background_ratio": "W2/floor CN",
            "w2_target_ratio": "W2/floor patients", "twin_rmse_ratio": "twin ratio", "common_auc": "common AUC",
            "salient_completeness": "completeness", "fit_seconds": "fit (s)", "epochs": "epochs"}


def fidelity(configs: list[str], sizes: list[tuple[int, int]], seeds: int,
             model: str = "ContrastiveVAE") -> pd.DataFrame:
    """One row per (configuration, size, seed): :func:`semisynthetic_scores` on ``semisynthetic_data()``
    (the issue-2 benchmark data; W2 floors and twins against its held-out rows) of ``model``, any
    roisynth synthesizer by name (scores it cannot give, e.g. twins of a GMM, are NaN)."""
    import roisynth

    data = semisynthetic_data()
    rows = []
    estimator = getattr(roisynth, model)
    quiet = {"verbose": False} if "verbose" in estimator().get_params() else {}
    for config in configs:
        for size in sizes:
            for seed in range(seeds):
                synthesizer = estimator(random_state=seed, **quiet, **parse_config(config))
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", SmallDataWarning)
                    scores = semisynthetic_scores(synthesizer, data, n_train=size, random_state=seed, n_sample=10_000)
                rows.append({"config": config, "size": f"{size[0]}/{size[1]}", "seed": seed,
                             **{name: scores.get(key, np.nan) for key, name in FIDELITY.items()}})
                print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def severity_ixi(seeds: int, train_fraction: float = 0.7) -> pd.DataFrame:
    """Every severity definition on real covariance: the 291 healthy IXI adults (``../shared/data``,
    3 sites, 145 single ROIs) split and atrophied by ``make_semisynthetic`` (Table 1 subtypes), a
    ``train_fraction`` of each half fitted (CovariateResidualizer on age, sex, ICV + ContrastiveVAE),
    the rest scored ("CN" = background, "AD" = atrophied); one split per seed."""
    from bench_harmonization import load_ixi

    from roisynth import CovariateResidualizer, make_pipeline

    ixi = load_ixi().rename(columns={"ICV": "icv"}).drop(columns=["participant_id", "site"])
    rows = []
    for seed in range(seeds):
        data = datasets.make_semisynthetic(ixi, random_state=seed)
        rng = np.random.default_rng(seed)
        halves = [half.assign(diagnosis=label) for half, label in ((data.background, "CN"), (data.target, "AD"))]
        train = [rng.random(len(half)) < train_fraction for half in halves]
        held_out = pd.concat([half[~t] for half, t in zip(halves, train)]).reset_index(drop=True)
        healthy = halves[0][train[0]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SmallDataWarning)
            pipeline = make_pipeline(CovariateResidualizer(), ContrastiveVAE(random_state=seed, verbose=False))
            pipeline.fit(healthy, halves[1][train[1]])
        for option in SEVERITY_OPTIONS:
            table = severity_comparison(_PipelineSeverity(pipeline, held_out, option), healthy, held_out,
                                        list(data.rois))
            name = "severity " + ", ".join(f"{k}={v!r}" for k, v in option.items())
            rows.append({"seed": seed, "score": name, **table.loc["severity"].to_dict()})
        rows += [{"seed": seed, "score": reference, **table.loc[reference].to_dict()}
                 for reference in ("hippocampal_z", "normative_mean_abs_z")]
        print(rows[-1], flush=True)
    return summarize(pd.DataFrame(rows), keys=("score",))


def severity_seeds(configs: list[str], sizes: list[tuple[int, int]], seeds: int) -> pd.DataFrame:
    """:func:`severity_at` of every configuration and seed, mean [min–max] over seeds; the
    references (hippocampal z, normative mean |z|) depend only on the CN subset, listed once."""
    tables = []
    for config in configs:
        for seed in range(seeds):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SmallDataWarning)
                table = severity_at(sizes, seed=seed, **parse_config(config)).reset_index()
            reference = ~table.score.str.startswith("severity")
            table.loc[reference, "config"] = "(reference)"
            table.loc[~reference, "config"] = config
            tables.append(table.assign(seed=seed))
    table = pd.concat(tables).drop_duplicates(["config", "train", "score", "seed"])
    return summarize(table, keys=("train", "config", "score"))


def ablations(data) -> pd.DataFrame:
    rows = {name: semisynthetic_scores(ContrastiveVAE(random_state=0, verbose=False, **params), data, n_train=1050)
            for name, params in ABLATIONS.items()}
    return pd.DataFrame(rows).T


def sampling_speed(n: int = 1_000_000) -> dict:
    cohort = datasets.load_example()
    rois = datasets.roi_names()
    model = ContrastiveVAE(epochs=5, verbose=False, random_state=0)
    model.fit(cohort.loc[cohort.diagnosis == "CN", rois], cohort.loc[cohort.diagnosis != "CN", rois])
    result = {}
    for threads in (1, 2):
        model.set_params(n_threads=threads)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            model.sample_paired(n)
            times.append(time.perf_counter() - start)
        result[f"{threads} thread(s)"] = min(times)
    return result


def severity() -> pd.DataFrame:
    cohort = datasets.load_example()
    rois = datasets.roi_names()
    rng = np.random.default_rng(0)  # the demo's split
    cn_train, cn_test = split(cohort[cohort.diagnosis == "CN"], 0.2, rng)
    pt_train, pt_test = split(cohort[cohort.diagnosis.isin(PATIENTS)], 0.2, rng)
    model = ContrastiveVAE(random_state=0, verbose=False).fit(cn_train[rois], pt_train[rois])
    held_out = pd.concat([cn_test, pt_test])
    adjusted = "severity (age/sex/ICV-adjusted)"
    with_covariates = severity_comparison(model, cn_train, held_out, rois).rename(
        index=lambda s: f"{s} (age/sex/ICV-adjusted)")
    raw = severity_comparison(model, cn_train, held_out, rois, covariates=()).drop(index="severity")
    return pd.concat([with_covariates.loc[[adjusted]].rename(index={adjusted: "model severity"}),
                      raw.rename(index=lambda s: f"{s} (raw volumes)"), with_covariates.drop(index=adjusted)])


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants (Linux /proc), in KB."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            with open(f"/proc/{current}/status") as f:
                total += next((int(line.split()[1]) for line in f if line.startswith("VmRSS:")), 0)
            with open(f"/proc/{current}/task/{current}/children") as f:
                stack.extend(int(child) for child in f.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def demo() -> dict:
    """Wall time and peak resident memory of `roisynth demo`, its ComBat-GAM workers included
    (the process tree is sampled every 0.1 s)."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "roisynth.cli", "demo", "--quiet", "--output", out],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peak = 0
        while process.poll() is None:
            peak = max(peak, _tree_rss_kb(process.pid))
            time.sleep(0.1)
        seconds = time.perf_counter() - start
        if process.returncode:
            raise RuntimeError(f"roisynth demo exited with {process.returncode}")
    return {"wall_seconds": seconds, "peak_memory_MB": peak / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--effects", action="store_true", help="run only the issue-15 effects study")
    parser.add_argument("--sizes", nargs="+", default=["1050/1050", "100/190"], help="CN/patient training sizes")
    parser.add_argument("--configs", nargs="+", default=["default"], help="ContrastiveVAE keyword arguments")
    parser.add_argument("--severity", action="store_true",
                        help="the severity study (alone, or with --effects / --fidelity); size 'all' = the whole split")
    parser.add_argument("--fidelity", action="store_true",
                        help="run only the fidelity study (semisynthetic_scores per config, size and seed)")
    parser.add_argument("--severity-ixi", action="store_true",
                        help="the severity study on IXI healthy adults with planted atrophy (real covariance)")
    parser.add_argument("--model", default="ContrastiveVAE", help="with --fidelity: the synthesizer (a roisynth name)")
    parser.add_argument("--no-record", action="store_true", help="print only, do not write RESULTS.md")
    parser.add_argument("--record", action="store_true", help="with --fidelity: record in RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.severity_ixi:
        command = ("`OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_contrastive_vae.py --severity-ixi --seeds "
                   f"{args.seeds}`")
        body = (f"### Severity on real covariance: IXI healthy adults with planted atrophy, mean [min–max] over "
                f"{args.seeds} splits ({time.strftime('%Y-%m-%d')})\n\n{command}\n\n"
                f"{severity_ixi(args.seeds).to_markdown()}")
        print(body)
        if not args.no_record:
            record("Severity: IXI", body)
        return
    if args.severity and not (args.fidelity or args.effects):
        sizes = [None if size == "all" else tuple(int(n) for n in size.split("/")) for size in args.sizes]
        command = (f"`OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_contrastive_vae.py --severity --seeds "
                   f"{args.seeds} --sizes {' '.join(args.sizes)} --configs {' '.join(repr(c) for c in args.configs)}`")
        body = (f"### Severity on held-out subjects of the bundled cohort, every definition, mean [min–max] over "
                f"{args.seeds} seeds ({time.strftime('%Y-%m-%d')})\n\n{command}\n\n"
                f"{severity_seeds(args.configs, sizes, args.seeds).to_markdown()}")
        print(body)
        if not args.no_record:
            record("Severity: " + ", ".join(args.configs), body)
        return
    if args.fidelity:
        sizes = [tuple(int(n) for n in size.split("/")) for size in args.sizes]
        body = summarize(fidelity(args.configs, sizes, args.seeds, args.model), keys=("size", "config")).to_markdown()
        if args.severity:
            body += "\n\n" + severity_seeds(args.configs, sizes, args.seeds).to_markdown()
        print(body)
        if args.record:
            command = (f"`OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_contrastive_vae.py --fidelity --record "
                       f"--seeds {args.seeds} --sizes {' '.join(args.sizes)} --configs "
                       f"{' '.join(repr(c) for c in args.configs)}{' --severity' if args.severity else ''}`")
            record("ContrastiveVAE fidelity: " + ", ".join(args.configs),
                   f"### Semi-synthetic fidelity, mean [min–max] over {args.seeds} seeds "
                   f"({time.strftime('%Y-%m-%d')}; fit seconds on a shared machine)\n\n{command}\n\n{body}")
        return
    if args.effects:
        sizes = [tuple(int(n) for n in size.split("/")) for size in args.sizes]
        table = effects(args.configs, sizes, args.seeds)
        body = f"""### Effects on the semi-synthetic data, mean [min–max] over {args.seeds} seeds

`OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_contrastive_vae.py --effects --seeds {args.seeds} \
--sizes {' '.join(args.sizes)} --configs {' '.join(repr(c) for c in args.configs)}`

{summarize(table).to_markdown()}
"""
        if args.severity:
            params = parse_config(args.configs[0])
            sev = severity_at([None, *sizes], **params)
            body += f"""
### Severity on held-out subjects of the bundled cohort (CovariateResidualizer + ContrastiveVAE, demo split)

{sev.to_markdown(floatfmt=".3f")}
"""
        print(body)
        if not args.no_record:
            record("Faithful disease effects (issue 15): " + ", ".join(args.configs), body)
        return
    data = semisynthetic_data()
    semi = semisynthetic(data, args.seeds)
    ablation = ablations(data)
    summary = semi.agg(["mean", "min", "max"]).T.drop(index="epochs")
    summary["target"] = [TARGETS.get(k, "") for k in summary.index]
    dem = demo()
    speed = sampling_speed()
    sev = severity()
    body = f"""## ContrastiveVAE (`benchmarks/bench_contrastive_vae.py`)

Measured {time.strftime('%Y-%m-%d')} on {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch \
thread, torch {torch.__version__}, \
`OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_contrastive_vae.py --seeds {args.seeds}`.

### Semi-synthetic benchmark (1050 training subjects per cohort, 139 ROIs, paper setting, early stopping)
Figures in z-scores of the background training cohort; W2 ratio = W2(synthetic, held-out) / W2(real training, held-out).

{summary.to_markdown(floatfmt=".3f")}

Per seed:

{semi.to_markdown(floatfmt=".3f")}

Ablations (seed 0): each row switches one of roisynth's additions to the paper's model back off.

{ablation.to_markdown(floatfmt=".3f")}

### Sampling 1,000,000 paired rows (2 × 1,000,000 × 139 float32, best of 3)

{pd.Series(speed, name="seconds").to_frame().to_markdown(floatfmt=".2f")}

### Severity on held-out subjects of the bundled cohort (the demo's 80/20 split)
Mean score per diagnosis and AUC of AD vs CN. The model sees raw ROI volumes only; the baselines
are given once with raw volumes (the same information) and once with age, sex and ICV regressed out
in the healthy training cohort (more information than the model had).

{sev.to_markdown(floatfmt=".3f")}

### `roisynth demo` (pipeline: ComBat-GAM, covariate correction, ContrastiveVAE)
Wall time {dem['wall_seconds']:.1f} s (environment already installed), peak memory {dem['peak_memory_MB']:.0f} MB
(all processes, the ComBat-GAM workers included).
"""
    print(body)
    record("ContrastiveVAE", body)


if __name__ == "__main__":
    main()
