"""Every synthesizer on the semi-synthetic benchmark: `roisynth benchmark`, timed and recorded
(issues 4 and 5: baselines, Table A1, evaluation speed).

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_models.py [--seeds 1] [--skip-full]

Records in benchmarks/RESULTS.md (section "Models"):
1. 1000 bootstrap replicates of `gaussian_w2` on 450 × 139 vs 450 × 139 (target ≤ 10 s);
2. wall time of `roisynth benchmark --quick` (target ≤ 5 min) and of the full
   `roisynth benchmark` (target ≤ 30 min), both on one thread;
3. the full run's table: the seed paper's Table A1 (W2 of generated vs real target and
   background, generated background vs target next to the real value, 95 % bootstrap
   intervals) and the figures no paper reports, for every model.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from roisynth.metrics import bootstrap, gaussian_w2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402


def bootstrap_speed() -> float:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(450, 139)), rng.normal(size=(450, 139)) + 0.1
    start = time.perf_counter()
    bootstrap(gaussian_w2, a, b, n=1000, random_state=0, method="centered")
    return time.perf_counter() - start


def benchmark_command(*options: str) -> tuple[float, str]:
    """Wall time of `roisynth benchmark OPTIONS` and its Markdown table."""
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "roisynth.cli", "benchmark", "-o", out, *options], check=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
        return time.perf_counter() - start, (Path(out) / "benchmark.md").read_text()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--skip-full", action="store_true", help="time the quick run only (nothing recorded)")
    args = parser.parse_args()
    seconds_bootstrap = bootstrap_speed()
    print(f"1000 bootstrap replicates of gaussian_w2, 450 x 139: {seconds_bootstrap:.2f} s", flush=True)
    seconds_quick, _ = benchmark_command("--quick", "--quiet")
    print(f"roisynth benchmark --quick: {seconds_quick:.0f} s", flush=True)
    if args.skip_full:
        return
    seconds_full, table = benchmark_command("--seeds", str(args.seeds))
    table = table.split("\n", 2)[2]  # drop the file's title
    quick_row = (f"| `roisynth benchmark --quick` (9 models, neural ones capped at 60 epochs, 200 replicates) | "
                 f"{seconds_quick / 60:.1f} min | ≤ 5 min |")
    body = f"""## Models: `roisynth benchmark` (`benchmarks/bench_models.py`)

Measured {time.strftime('%Y-%m-%d')} on {platform.processor() or platform.machine()}, one torch/BLAS thread,
`OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_models.py{f' --seeds {args.seeds}' if args.seeds != 1 else ''}`.

| task | measured | target |
|---|---|---|
| 1000 bootstrap replicates of `gaussian_w2`, 450 × 139 vs 450 × 139 | {seconds_bootstrap:.1f} s | ≤ 10 s |
{quick_row}
| `roisynth benchmark` (9 models, full training, 1000 replicates) | {seconds_full / 60:.1f} min | ≤ 30 min |

Table of the full run (`benchmark_output/benchmark.md`). All figures on held-out rows in z-scores of
the background training cohort. W2 columns are the seed paper's Table A1, with 95 % centered
bootstrap intervals (the spread of the value over fresh samples of the same sizes; in 139 dimensions
W2 between two real samples of 1000 is itself ≈ 2.5, hence the W2/floor columns, 1 = as close as
fresh real data). Twin RMSE ratio, effect-map r against the truth, effect size ratio (1 ideal),
decoupling AUC (common space, 0.5 ideal) and subtype completeness use the semi-synthetic ground
truth; effect-map r (real d) compares synthetic and held-out Cohen's d maps; TSTR: AUC on real
held-out rows of a CN-vs-patient classifier trained on synthetic rows (trained on real rows in
brackets); DCR ratio (≪ 1: synthetic rows copy training rows) and membership-inference AUC
(0.5 = no leakage) measure privacy.

{table}
"""
    print(body)
    record("Models", body)


if __name__ == "__main__":
    main()
