"""Every synthesizer of roisynth on the semi-synthetic benchmark (issue 4: baselines and ablations).

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_baselines.py [--seeds 1] [--quick]

Fits each model of `roisynth.benchmark.benchmark_models()` on 1050 training subjects per
cohort (simulated CN, Table 1 atrophy, 139 ROIs) and scores it on held-out rows: fit time,
time to sample 100,000 target rows, Gaussian W2 to held-out real data for both cohorts (and
its ratio to the real-vs-real floor), and, for models that pair, the recovered effect map,
twin error and latent figures. Prints and records the table in benchmarks/RESULTS.md
(section "Baselines").
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

from roisynth.benchmark import benchmark_models, run_semisynthetic, semisynthetic_data

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402

COLUMNS = {
    "fit_seconds": "fit (s)", "sample_seconds": "sample 100k (s)",
    "w2_background": "W2 background", "w2_background_ratio": "W2/floor background",
    "w2_target": "W2 target", "w2_target_ratio": "W2/floor target",
    "effect_r": "effect-map r", "effect_scale": "effect size ratio", "twin_rmse_ratio": "twin RMSE ratio",
    "common_auc": "common AUC", "salient_completeness": "salient completeness",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="neural models capped at a few epochs (smoke run)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    models = benchmark_models(quick=args.quick)
    scores = run_semisynthetic(models, semisynthetic_data(), seeds=range(args.seeds), progress=lambda line: print(line, flush=True))
    table = scores.groupby(level="model", sort=False)[list(COLUMNS)].mean().rename(columns=COLUMNS)
    table.insert(0, "pairs", ["yes" if models[name].can_pair else "no" for name in table.index])
    command = "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_baselines.py" + (f" --seeds {args.seeds}" if args.seeds != 1 else "") + (" --quick" if args.quick else "")
    body = f"""## Baselines (`benchmarks/bench_baselines.py`)

Measured {time.strftime('%Y-%m-%d')} on {platform.processor() or platform.machine()}, one torch/BLAS thread,
`{command}`; mean over {args.seeds} seed(s).

Semi-synthetic benchmark: 1050 training subjects per cohort, 139 ROIs, figures on held-out rows in
z-scores of the background training cohort. W2 = Gaussian 2-Wasserstein distance between synthetic
and held-out real rows (synthetic sample of the training size); W2/floor divides it by W2 between the
real training rows and the held-out rows (1 = as close as a fresh real sample). Effect-map r, effect
size ratio (synthetic/true atrophy, 1 ideal) and twin RMSE ratio (healthy twin vs true pre-atrophy
volumes, relative to the untouched patient; lower is better) need pairing; common AUC (0.5 ideal) and
salient completeness need latent codes; "—" where a model has none.

{table.to_markdown(floatfmt=".3g").replace(" nan ", "  —  ")}
"""
    print(body)
    record("Baselines", body)


if __name__ == "__main__":
    main()
