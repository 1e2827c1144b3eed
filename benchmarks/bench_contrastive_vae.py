"""Benchmark of the ContrastiveVAE in the seed paper's full setting (issue 2 targets).

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_contrastive_vae.py [--seeds 3]

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
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from roisynth import ContrastiveVAE, datasets
from roisynth.demo import PATIENTS, split
from roisynth.evaluation import semisynthetic_data, semisynthetic_scores, severity_comparison

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402

TARGETS = {"effect_r": ">= 0.95", "effect_scale": "≈ 1", "twin_rmse_ratio": "<= 0.5", "common_auc": "<= 0.6", "salient_completeness": ">= 0.6",
           "w2_background_ratio": "<= 1.2", "w2_target_ratio": "<= 1.2", "fit_seconds": "<= 10"}


ABLATIONS = {  # design choices of roisynth that the paper does not have, switched back one at a time
    "default": {},
    "noise='diagonal' (per-ROI variance only)": {"noise": "diagonal"},
    "latent_sampling='prior' (codes from N(0, I))": {"latent_sampling": "prior"},
    "background_salient_weight=0 (no MM-cVAE term)": {"background_salient_weight": 0.0},
}


def semisynthetic(data, seeds: int) -> pd.DataFrame:
    rows = []
    for seed in range(seeds):
        scores = semisynthetic_scores(ContrastiveVAE(random_state=seed, verbose=False), data, n_train=1050, random_state=seed)
        rows.append({"seed": seed, **scores})
        print(rows[-1], flush=True)
    return pd.DataFrame(rows).set_index("seed")


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
    with_covariates = severity_comparison(model, cn_train, held_out, rois).rename(index=lambda s: f"{s} (age/sex/ICV-adjusted)")
    raw = severity_comparison(model, cn_train, held_out, rois, covariates=()).drop(index="severity")
    return pd.concat([with_covariates.loc[["severity (age/sex/ICV-adjusted)"]].rename(index={"severity (age/sex/ICV-adjusted)": "model severity"}),
                      raw.rename(index=lambda s: f"{s} (raw volumes)"), with_covariates.drop(index="severity (age/sex/ICV-adjusted)")])


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
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = semisynthetic_data()
    semi = semisynthetic(data, args.seeds)
    ablation = ablations(data)
    summary = semi.agg(["mean", "min", "max"]).T.drop(index="epochs")
    summary["target"] = [TARGETS.get(k, "") for k in summary.index]
    dem = demo()
    speed = sampling_speed()
    sev = severity()
    body = f"""## ContrastiveVAE (`benchmarks/bench_contrastive_vae.py`)

Measured {time.strftime('%Y-%m-%d')} on {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread,
torch {torch.__version__}, `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_contrastive_vae.py --seeds {args.seeds}`.

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
