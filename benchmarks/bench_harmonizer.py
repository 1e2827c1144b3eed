"""Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_harmonizer.py [--skip-library]

The vectorized Harmonizer (ComBat-GAM, issue 18) against neuroHarmonize 2.4.5's
``harmonizationLearn``, side by side in one run on one thread, with the same model: smooth
age (bounds 0-120), linear sex and ICV, 139 ROIs (the single non-ventricular MUSE ROIs).

1. The real IXI table (``../shared/data/ixi_dlmuse``, 291 subjects, 3 sites; read at run time,
   not copied) when present, and a simulated 5000 × 139 table
   (``datasets.simulate_cohort(5000, sites=4)``): fit time of both, the ratio, and the
   agreement of the harmonized tables (max and median relative difference), once with
   neuroHarmonize's own penalty search (random folds: statsmodels 0.15 draws them from fresh
   entropy) and once with neuroHarmonize given each ROI's penalty as the Harmonizer chose it;
   for scale, two runs of neuroHarmonize differ from each other by its random folds.
2. Scaling: the Harmonizer's fit and transform time at 500, 5000 and 50 000 simulated
   subjects (neuroHarmonize at 50 000 is not run: its cost is linear in n, ten times its
   5000-row time).

Our times are the best of 3 fits; neuroHarmonize's a single fit. Prints and records the
section "Harmonizer: vectorized ComBat-GAM vs neuroHarmonize" of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from neuroHarmonize import harmonizationLearn
from statsmodels.gam.generalized_additive_model import GLMGam
from threadpoolctl import threadpool_limits

from roisynth import datasets
from roisynth.preprocessing import Harmonizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402

IXI = Path(__file__).resolve().parents[2] / "shared" / "data" / "ixi_dlmuse"
ROIS = datasets.roi_names()
COVARIATES = ("age", "sex", "icv")
SECTION = "Harmonizer: vectorized ComBat-GAM vs neuroHarmonize"
COMMAND = "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_harmonizer.py"


def timed(fn, repeat: int = 1):
    """(result of the last call, best wall time of ``repeat`` calls)."""
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return result, best


def ixi_table() -> pd.DataFrame | None:
    """The IXI table with site, age, sex, icv and the ROI columns (None when absent)."""
    if not (IXI / "IXI_DLMUSE.csv").exists():
        return None
    demog = pd.read_csv(IXI / "IXI_demog.csv").rename(columns={"ID": "participant_id", "Age": "age", "Sex": "sex"})
    demog["site"] = demog.participant_id.str.split("-").str[1]  # IXI016-Guys-0697-T1 -> Guys
    volumes = datasets.read_rois(IXI / "IXI_DLMUSE.csv").rename(columns={"ID": "participant_id", "ICV": "icv"})
    return demog.merge(volumes[["participant_id", "icv", *ROIS]], on="participant_id")


@contextlib.contextmanager
def given_penalties(penalties: np.ndarray):
    """statsmodels' penalty search answers each ROI's penalty in turn (neuroHarmonize fits ROIs in order)."""
    answers = iter(penalties)
    original = GLMGam.select_penweight_kfold
    GLMGam.select_penweight_kfold = lambda self, **kwargs: ((next(answers),), None)
    try:
        yield
    finally:
        GLMGam.select_penweight_kfold = original


def library_fit(table: pd.DataFrame) -> np.ndarray:
    """neuroHarmonize's harmonizationLearn with the same model; its harmonized training table."""
    covars = pd.DataFrame({"SITE": table.site.astype(str).to_numpy(object), "age": table.age.to_numpy(float),
                           "sex": table.sex.astype(str).str.upper().str[0].eq("M").to_numpy(float),
                           "icv": table.icv.to_numpy(float)})
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        _, harmonized = harmonizationLearn(table[ROIS].to_numpy(float), covars, smooth_terms=["age"],
                                           smooth_term_bounds=(0, 120))
    return harmonized


def agreement(ours: np.ndarray, theirs: np.ndarray) -> str:
    rel = np.abs(ours / theirs - 1)
    return f"max {rel.max():.1e}, median {np.median(rel):.1e}"


def side_by_side(name: str, table: pd.DataFrame) -> dict:
    harmonizer = Harmonizer(covariates=COVARIATES, smooth=("age",), rois=ROIS, random_state=0)
    model, ours_s = timed(lambda: harmonizer.fit(table), repeat=3)
    ours = model.transform(table)[ROIS].to_numpy()
    theirs, theirs_s = timed(lambda: library_fit(table))
    again = library_fit(table)
    with given_penalties(model.penalty_[:, 0]):
        same_penalty = library_fit(table)
    row = {"table": name, "n × ROIs": f"{len(table)} × {len(ROIS)}", "Harmonizer fit (s)": f"{ours_s:.3f}",
           "neuroHarmonize fit (s)": f"{theirs_s:.1f}", "ratio": f"{theirs_s / ours_s:.0f}×",
           "agreement, own CV": agreement(ours, theirs), "agreement, same penalties": agreement(ours, same_penalty),
           "neuroHarmonize run to run": agreement(again, theirs)}
    print(row, flush=True)
    return row | {"seconds": theirs_s}


def scaling(sizes: list[int]) -> list[dict]:
    rows = []
    for n in sizes:
        table = datasets.simulate_cohort(n, sites=4, random_state=0)
        harmonizer = Harmonizer(covariates=COVARIATES, smooth=("age",), rois=ROIS, random_state=0)
        model, fit_s = timed(lambda: harmonizer.fit(table), repeat=3)  # noqa: B023
        _, transform_s = timed(lambda: model.transform(table), repeat=3)  # noqa: B023
        rows.append({"n subjects": n, "fit (s)": f"{fit_s:.3f}", "transform (s)": f"{transform_s:.3f}"})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-library", action="store_true", help="only the Harmonizer's scaling table")
    args = parser.parse_args()
    with threadpool_limits(1):
        comparison = []
        if not args.skip_library:
            ixi = ixi_table()
            if ixi is not None:
                comparison.append(side_by_side("IXI (real, 3 sites)", ixi))
            comparison.append(side_by_side("simulated, 4 sites", datasets.simulate_cohort(5000, sites=4,
                                                                                          random_state=0)))
        scale = scaling([500, 5000, 50000])
    body = [f"## {SECTION} (`benchmarks/bench_harmonizer.py`)", "",
            f"`{COMMAND}`; {platform.processor() or platform.machine()}, one thread, "
            f"Python {platform.python_version()}. Model: smooth age (0-120), linear sex and ICV, "
            f"{len(ROIS)} ROIs; Harmonizer best of 3 fits, neuroHarmonize 2.4.5 `harmonizationLearn` one fit.", ""]
    if comparison:
        body += ["### Side by side", "", pd.DataFrame(comparison).drop(columns="seconds").to_markdown(index=False), "",
                 "Agreement: relative difference of the harmonized training tables. *Own CV*: neuroHarmonize's "
                 "penalty search on its own random folds (a few ROIs get a neighbouring penalty); *same "
                 "penalties*: neuroHarmonize given each ROI's penalty as the Harmonizer chose it (what remains "
                 "is neuroCombat's looser stop of the empirical-Bayes iteration); *run to run*: two neuroHarmonize "
                 "fits of the same table.", ""]
    body += ["### Harmonizer scaling (simulated 4-site cohorts)", "", pd.DataFrame(scale).to_markdown(index=False),
             "", "neuroHarmonize at 50 000 × 139 was not run: it fits 57 GAMs per ROI (11 penalties × 5 folds, "
             "then the final fits), each linear in n"
             + (f", so about ten times its 5000-row time, {10 * comparison[-1]['seconds'] / 60:.0f} min."
                if comparison else ".")]
    print("\n".join(body))
    record(SECTION, "\n".join(body))


if __name__ == "__main__":
    main()
