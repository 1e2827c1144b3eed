"""Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_harmonization.py

What the Harmonizer (ComBat-GAM) does to real data. Prints and records in
benchmarks/RESULTS.md (section "Harmonizer"):
1. transform + inverse_transform time and round-trip error for 5000 rows (model fitted on 450);
2. on the real IXI table (``../shared/data/ixi_dlmuse``, 3 sites, all 145 single ROIs), when
   present: the between-site share of variance before/after, the hippocampal age slopes,
   and whether two fits with the same random_state agree exactly.
Fit times against neuroHarmonize, agreement with it and scaling to 50 000 subjects:
``benchmarks/bench_harmonizer.py``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm

from roisynth import datasets
from roisynth.preprocessing import Harmonizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402

IXI = Path(__file__).resolve().parents[2] / "shared" / "data" / "ixi_dlmuse"
MODEL_KEYS = ("B_hat", "var_pooled", "gamma_star", "delta_star")


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def apply_times(model: Harmonizer, table: pd.DataFrame) -> dict:
    harmonized, forward = timed(lambda: model.transform(table))
    back, inverse = timed(lambda: model.inverse_transform(harmonized))
    rois = list(model.feature_names_in_)
    error = float(np.max(np.abs(back[rois].to_numpy() / table[rois].to_numpy() - 1)))
    return {"rows": str(len(table)), "transform s": forward, "inverse_transform s": inverse,
            "round-trip max rel. error": error}


def load_ixi() -> pd.DataFrame:
    demog = pd.read_csv(IXI / "IXI_demog.csv").rename(columns={"ID": "participant_id", "Age": "age", "Sex": "sex"})
    demog["site"] = demog.participant_id.str.split("-").str[1]  # IXI016-Guys-0697-T1 -> Guys
    volumes = datasets.read_rois(IXI / "IXI_DLMUSE.csv").rename(columns={"ID": "participant_id"})
    return demog.merge(volumes, on="participant_id")


def between_site_share(table: pd.DataFrame, rois) -> float:
    """Mean over ROIs of R² of site dummies in an OLS of the (age, sex)-residualized ROI."""
    covariates = sm.add_constant(np.column_stack([table.age, table.sex.eq("M")]).astype(float))
    sites = sm.add_constant(pd.get_dummies(table.site, drop_first=True, dtype=float).to_numpy())
    return float(np.mean([sm.OLS(sm.OLS(table[r].to_numpy(float), covariates).fit().resid, sites).fit().rsquared
                          for r in rois]))


def age_slope(table: pd.DataFrame, roi: str) -> float:
    X = sm.add_constant(np.column_stack([table.age, table.sex.eq("M")]).astype(float))
    return float(sm.OLS(table[roi].to_numpy(float), X).fit().params[1])


def ixi_figures() -> tuple[pd.DataFrame, str]:
    table = load_ixi()
    rois = datasets.roi_names(include_ventricles=True)
    model, seconds = timed(lambda: Harmonizer(rois=rois, random_state=0).fit(table))
    harmonized = model.transform(table)
    again = Harmonizer(rois=rois, random_state=0).fit(table).transform(table)
    raw, after = between_site_share(table, rois), between_site_share(harmonized, rois)
    rows = [{"figure": "between-site share of variance (mean R² over ROIs)", "raw": raw, "harmonized": after,
             "change": f"÷ {raw / after:.1f}", "target": "÷ ≥ 10"}]
    for roi in ("Hippocampus_L", "Hippocampus_R"):
        before, now = age_slope(table, roi), age_slope(harmonized, roi)
        rows.append({"figure": f"age slope of {roi} (mm³/year, OLS on age + sex)", "raw": before, "harmonized": now,
                     "change": f"{100 * (now / before - 1):+.1f} %", "target": "≤ 10 %"})
    same = again.equals(harmonized)
    sites = table.site.value_counts().to_dict()
    note = (f"{len(table)} subjects ({', '.join(f'{k} {v}' for k, v in sites.items())}), {len(rois)} ROIs, "
            f"fit {seconds:.2f} s; two fits with random_state=0 identical: {same}.")
    return pd.DataFrame(rows), note


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    big = datasets.simulate_cohort(5000, sites=4, random_state=1)
    model = Harmonizer(rois=datasets.roi_names()).fit(big.iloc[:450])
    applied = pd.DataFrame([apply_times(model, big)])
    print(applied, flush=True)
    lines = [
        "## Harmonizer (`benchmarks/bench_harmonization.py`)",
        "",
        (f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, `OMP_NUM_THREADS=1 .venv/bin/python "
         "benchmarks/bench_harmonization.py`; ComBat-GAM (smooth age, linear sex, smooth_bounds 0-120)."),
        "",
        "Fit times, agreement with neuroHarmonize and scaling: section \"Harmonizer: vectorized ComBat-GAM vs "
        "neuroHarmonize\" (`benchmarks/bench_harmonizer.py`).",
        "",
        "### Transform and inverse (model fitted on 450 rows)",
        "",
        applied.to_markdown(index=False, floatfmt=".3g"),
    ]
    if (IXI / "IXI_DLMUSE.csv").exists():
        figures, note = ixi_figures()
        print(figures, note, sep="\n", flush=True)
        lines += ["", "### IXI (real, 3 sites)", note, "", figures.to_markdown(index=False, floatfmt=".4g")]
    else:
        lines += ["", f"IXI figures skipped: {IXI} not found."]
    record("Harmonizer", "\n".join(lines))


if __name__ == "__main__":
    main()
