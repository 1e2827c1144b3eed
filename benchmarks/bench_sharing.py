"""Shareable by construction (issue 16): generated covariates, interactions, the demo's release.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sharing.py [--seeds 3] [--no-record]

1. The demo (``roisynth.demo.run_demo``, bundled cohort, 80 % train / 20 % held out): synthetic
   rows whose (site, age, sex, ICV) equals a real subject's, in ``paired_synthetic.csv`` and in
   the release; Gaussian W2 / floor per cohort; the release audit's risks and flags.
2. A planted age × disease interaction (:func:`roisynth.datasets.make_age_interaction`, 1500
   subjects per cohort, truth −12 mm³ per year): the synthetic extra age slope of the patients
   (8000 synthetic subjects per cohort) with ``interactions=True`` and ``False``, for a Gaussian
   mixture and the contrastive VAE behind a ``CovariateResidualizer``, next to the training
   data's own estimate.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from roisynth import ContrastiveVAE, CovariateResidualizer, GaussianMixtureSynthesizer, datasets, make_pipeline
from roisynth.demo import run_demo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402

COMMAND = "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sharing.py"
QUASI_IDENTIFIERS = ["site", "age", "sex", "icv"]


def age_slope(table: pd.DataFrame, roi: str) -> float:
    """Age coefficient of ``roi`` adjusted for sex and ICV (least squares)."""
    design = np.column_stack([np.ones(len(table)), table.age, table.sex == "M", table.icv]).astype(float)
    return float(np.linalg.lstsq(design, table[roi].to_numpy(float), rcond=None)[0][1])


def demo_figures() -> tuple[str, float]:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        result = run_demo(folder, verbose=False)
        real = set(datasets.load_example()[QUASI_IDENTIFIERS].itertuples(index=False, name=None))
        copies = {}
        for name in ("paired_synthetic.csv", "release/synthetic.csv"):
            table = pd.read_csv(Path(folder) / name)
            tuples = table[QUASI_IDENTIFIERS].itertuples(index=False, name=None)
            copies[name] = (sum(row in real for row in tuples), len(table))
        audit = json.loads((Path(folder) / "release" / "release.json").read_text())
    seconds = time.perf_counter() - start
    fidelity = result["fidelity"]
    lines = ["| output | rows with a real (site, age, sex, ICV) |", "|---|---|"]
    lines += [f"| {name} | {n} of {total} |" for name, (n, total) in copies.items()]
    lines += ["", "| cohort | W2 | floor | W2 / floor |", "|---|---:|---:|---:|"]
    lines += [f"| {c} | {r.w2:.3f} | {r.floor:.3f} | {r.ratio:.3f} |" for c, r in fidelity.iterrows()]
    lines += ["", "| release audit measure | risk [95 % CI] or copies |", "|---|---|"]
    for m in audit["privacy"]["measures"]:
        figure = (f"{m['risk']:.3f} [{m['risk_low']:.3f}, {m['risk_high']:.3f}]" if m.get("risk_low") is not None
                  else f"{m['copies']:.0f} of {m['n_checked']:.0f}" if m.get("copies") is not None else "—")
        lines.append(f"| {m['measure']} | {figure} |")
    lines.append(f"\nFlags: {audit['privacy']['flags'] or 'none'}. Demo total: {result['total_seconds']:.0f} s.")
    return "\n".join(lines), seconds


def interaction_figures(seeds: int) -> str:
    synthesizers = {"GaussianMixture": lambda: GaussianMixtureSynthesizer(max_components=1, random_state=0),
                    "ContrastiveVAE": lambda: ContrastiveVAE(epochs=200, verbose=False, random_state=0)}
    rows = []
    for seed in range(seeds):
        healthy, patients = datasets.make_age_interaction(random_state=seed)
        roi = healthy.columns[3]
        row = {"seed": seed, "training data": age_slope(patients, roi) - age_slope(healthy, roi)}
        for name, make in synthesizers.items():
            for interactions in (True, False):
                pipe = make_pipeline(CovariateResidualizer(), make())
                pipe.set_params(rois=list(healthy.columns[3:]), interactions=interactions, random_state=0)
                pipe.fit(healthy, patients)
                healthy_synthetic, patients_synthetic = (pipe.sample(8000, cohort=c, random_state=i)
                                                         for i, c in enumerate(("background", "target")))
                row[f"{name}, interactions={interactions}"] = (age_slope(patients_synthetic, roi)
                                                               - age_slope(healthy_synthetic, roi))
        rows.append(row)
        print(row, flush=True)
    table = pd.DataFrame(rows).set_index("seed")
    return table.round(2).to_markdown()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--no-record", action="store_true", help="do not write benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    demo, seconds = demo_figures()
    print(demo, flush=True)
    interactions = interaction_figures(args.seeds)
    print(interactions)
    body = (
        "## Shareable by construction (`benchmarks/bench_sharing.py`)\n\n"
        f"Command: `{COMMAND} --seeds {args.seeds}`. Machine: 2 shared cores, OMP_NUM_THREADS=1.\n\n"
        "### The demo (`make demo` settings: bundled cohort, 80 % train, 20 % held out)\n\n"
        "Before issue 16 every row of `paired_synthetic.csv` (2356 of 2356) carried a training subject's "
        "(site, age, sex, ICV) and W2 / floor was 1.069 (background) and 1.074 (target) at 6b8b959.\n\n"
        + demo + f"\n\n(benchmark step {seconds:.0f} s)\n\n"
        "### Planted age × disease interaction (truth −12 mm³ per year)\n\n"
        "Extra age slope of the patients' Hippocampus_L over the healthy one (mm³ per year), synthetic "
        "cohorts of 8000 per cohort, next to the training data's own estimate:\n\n" + interactions
    )
    if not args.no_record:
        record("sharing", body)


if __name__ == "__main__":
    main()
