"""Privacy audit benchmark: roisynth's anonymeter-style attacks against anonymeter 1.1.0 itself.

Run:  bash benchmarks/envs/make_anonymeter_env.sh        # once: anonymeter in its own venv
      OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_privacy_audit.py [--epochs 100] [--n-attacks 500]
      [--skip-reference] [--no-record]

Data: the bundled cohort (``datasets.load_example()``), CN as the background cohort and MCI + AD
as the target, ROI columns; 20 % of each cohort held out (the control rows), the rest trains
the models. Synthetic tables (as many rows per cohort as training rows, both cohorts pooled):

- ``copier``: the training rows themselves (the worst case: must be flagged);
- ``fresh draws``: new subjects from the simulator that made the cohort (a perfect generator
  that never saw the training rows: must not be flagged);
- ``KDE``: :class:`~roisynth.KDESynthesizer` (its kernels sit on the training rows);
- ``GaussianMixture``: :class:`~roisynth.GaussianMixtureSynthesizer`;
- ``ContrastiveVAE``: :class:`~roisynth.ContrastiveVAE` (``--epochs``, default 100).

Each table is audited by :func:`roisynth.metrics.privacy_audit` (singling out univariate and
multivariate, linkability between the columns at even and odd positions, inference of three
ROIs from all the others; ``--n-attacks`` queries / targets) and, on the same tables written to
CSV, by anonymeter's ``SinglingOutEvaluator``, ``LinkabilityEvaluator`` and
``InferenceEvaluator`` with the same settings (``regression=True`` for the numeric secrets),
run by the interpreter of ``benchmarks/envs/.anonymeter-venv`` in a subprocess. Agreement: the
two 95 % intervals of a risk overlap; for this comparison our singling-out attacks use
anonymeter's control-size correction (``size_correction="anonymeter"``). Flags:
:func:`roisynth.metrics.privacy_flags` of roisynth's default audit (``size_correction="match"``:
training and control compared at equal sizes), next to the rows anonymeter's figures would flag
by the same rule (lower bound > 0.1).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from roisynth import ContrastiveVAE, GaussianMixtureSynthesizer, KDESynthesizer, datasets
from roisynth.demo import split
from roisynth.metrics import PRIVACY_THRESHOLDS, privacy_audit, privacy_flags

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402

ROOT = Path(__file__).resolve().parent
REFERENCE_PYTHON = ROOT / "envs" / ".anonymeter-venv" / "bin" / "python"
COMMAND = "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_privacy_audit.py"

# Run by the anonymeter interpreter: argv = folder with settings.json and <model>_{synthetic,train,control}.csv.
REFERENCE_SCRIPT = r'''
import json, sys, time
from pathlib import Path
import pandas as pd
from anonymeter.evaluators import InferenceEvaluator, LinkabilityEvaluator, SinglingOutEvaluator

folder = Path(sys.argv[1])
settings = json.loads((folder / "settings.json").read_text())
results = {}
for model in settings["models"]:
    syn, ori, control = (pd.read_csv(folder / f"{model}_{kind}.csv") for kind in ("synthetic", "train", "control"))
    rows, start = {}, time.perf_counter()

    def keep(name, evaluator):
        result = evaluator.results()
        risk = evaluator.risk()
        rows[name] = {"risk": risk.value, "risk_low": risk.ci[0], "risk_high": risk.ci[1],
                      "main_rate": result.attack_rate.value, "control_rate": result.control_rate.value,
                      "baseline_rate": result.baseline_rate.value}

    for mode in ("univariate", "multivariate"):
        evaluator = SinglingOutEvaluator(ori=ori, syn=syn, control=control, n_attacks=settings["n_attacks"],
                                         n_cols=3, seed=settings["seed"])
        keep(f"singling_out_{mode}", evaluator.evaluate(mode=mode))
    evaluator = LinkabilityEvaluator(ori=ori, syn=syn, control=control, n_attacks=settings["n_targets"],
                                     aux_cols=tuple(settings["aux_columns"]), n_neighbors=1)
    keep("linkability", evaluator.evaluate(n_jobs=1))
    for secret in settings["secrets"]:
        evaluator = InferenceEvaluator(ori=ori, syn=syn, control=control, n_attacks=settings["n_targets"],
                                       aux_cols=[c for c in ori.columns if c != secret], secret=secret,
                                       regression=True)
        keep(f"inference_{secret}", evaluator.evaluate(n_jobs=1))
    results[model] = {"rows": rows, "seconds": time.perf_counter() - start}
    print(model, f"{results[model]['seconds']:.1f} s", flush=True)
(folder / "reference.json").write_text(json.dumps(results))
'''


def synthetic_tables(epochs: int, random_state: int = 0):
    """(synthetic tables by model, pooled training rows, pooled control rows, fit seconds by model)."""
    cohort = datasets.load_example()
    rois = datasets.roi_names()
    rng = np.random.default_rng(random_state)
    cohorts = (cohort.loc[cohort.diagnosis == "CN", rois], cohort.loc[cohort.diagnosis != "CN", rois])
    (train_b, test_b), (train_t, test_t) = (split(t, 0.2, rng) for t in cohorts)
    train, control = pd.concat([train_b, train_t]), pd.concat([test_b, test_t])
    fresh = datasets.simulate_cohort(2 * len(cohort), random_state=12345)
    fresh_tables = (fresh.loc[fresh.diagnosis == "CN", rois], fresh.loc[fresh.diagnosis != "CN", rois])
    tables = {"copier": train.copy(),
              "fresh draws": pd.concat([t.iloc[:len(real)] for t, real in zip(fresh_tables, (train_b, train_t))])}
    fit_seconds = {"copier": 0.0, "fresh draws": 0.0}
    models = {"KDE": KDESynthesizer(random_state=random_state),
              "GaussianMixture": GaussianMixtureSynthesizer(random_state=random_state),
              "ContrastiveVAE": ContrastiveVAE(epochs=epochs, verbose=False, random_state=random_state)}
    for name, model in models.items():
        start = time.perf_counter()
        model.fit(train_b, train_t)
        fit_seconds[name] = time.perf_counter() - start
        tables[name] = pd.concat([model.sample(len(train_b), cohort="background", random_state=1),
                                  model.sample(len(train_t), cohort="target", random_state=2)])[rois]
        print(f"{name}: fitted in {fit_seconds[name]:.1f} s", flush=True)
    return tables, train, control, fit_seconds


def reference_audits(tables: dict, train, control, audits: dict, n_attacks: int, timeout: int) -> dict:
    """anonymeter's risks on the same tables, with the settings of our audits."""
    any_audit = next(iter(audits.values()))
    secrets = [name.removeprefix("inference_") for name in any_audit.index if name.startswith("inference_")]
    columns = list(train.columns)
    settings = {"models": list(tables), "n_attacks": n_attacks, "seed": 0, "secrets": secrets,
                "n_targets": int(min(n_attacks, len(train), len(control))),
                "aux_columns": [columns[::2], columns[1::2]]}  # privacy_audit's split without quasi-identifiers
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "settings.json").write_text(json.dumps(settings))
        (folder / "reference.py").write_text(REFERENCE_SCRIPT)
        for model, table in tables.items():  # full float precision: the copier's rows stay exact copies
            for kind, frame in (("synthetic", table), ("train", train), ("control", control)):
                frame.to_csv(folder / f"{model}_{kind}.csv", index=False, float_format="%.17g")
        subprocess.run([str(REFERENCE_PYTHON), str(folder / "reference.py"), str(folder)], check=True,
                       timeout=timeout, env={"OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "PATH": "/usr/bin"})
        return json.loads((folder / "reference.json").read_text())


def _interval(row) -> str:
    return f"{row['risk']:.3f} [{row['risk_low']:.3f}, {row['risk_high']:.3f}]"


def comparison(audits: dict, reference: dict | None) -> pd.DataFrame:
    """One row per (model, measure): our risk [CI] next to anonymeter's, and whether they overlap."""
    rows = []
    for model, audit in audits.items():
        for measure, ours in audit.iterrows():
            if measure.startswith("exact_"):
                continue
            row = {"model": model, "measure": measure, "roisynth": _interval(ours),
                   "rates main / control / baseline": f"{ours['main_rate']:.3f} / {ours['control_rate']:.3f} / "
                                                      f"{ours['baseline_rate']:.3f}"}
            if reference is not None:
                theirs = reference[model]["rows"][measure]
                row |= {"anonymeter": _interval(theirs),
                        "anonymeter main / control / baseline": f"{theirs['main_rate']:.3f} / "
                        f"{theirs['control_rate']:.3f} / {theirs['baseline_rate']:.3f}",
                        "agree": "yes" if ours["risk_low"] <= theirs["risk_high"] and theirs["risk_low"]
                        <= ours["risk_high"] else "NO"}
            rows.append(row)
    return pd.DataFrame(rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--n-attacks", type=int, default=500)
    parser.add_argument("--timeout", type=int, default=3600, help="seconds allowed to anonymeter")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--no-record", action="store_true", help="do not write benchmarks/RESULTS.md")
    args = parser.parse_args(argv)

    tables, train, control, fit_seconds = synthetic_tables(args.epochs)
    audits, matched, seconds, flags = {}, {}, {}, {}
    for model, table in tables.items():
        start = time.perf_counter()
        matched[model] = privacy_audit(table, train, control, n_attacks=args.n_attacks, random_state=0)
        seconds[model] = time.perf_counter() - start
        audits[model] = privacy_audit(table, train, control, n_attacks=args.n_attacks, random_state=0,
                                      size_correction="anonymeter")
        flags[model] = privacy_flags(matched[model])
        print(f"{model}: audit in {seconds[model]:.1f} s, {len(flags[model])} flag(s)", flush=True)
    reference = None
    if not args.skip_reference:
        if not REFERENCE_PYTHON.exists():
            sys.exit(f"{REFERENCE_PYTHON} is missing: run bash benchmarks/envs/make_anonymeter_env.sh first "
                     "(or pass --skip-reference)")
        reference = reference_audits(tables, train, control, audits, args.n_attacks, args.timeout)
    table = comparison(audits, reference)
    with pd.option_context("display.width", 250, "display.max_columns", 20, "display.max_rows", 100):
        print(table.to_string(index=False))

    limit = PRIVACY_THRESHOLDS["risk"]
    lines = [f"| model | flagged by roisynth (reasons) | singling out multivariate, matched sizes | flagged by "
             f"anonymeter (risk low > {limit}) | exact rows, cells | audit (s), roisynth | anonymeter (s) | fit (s) |",
             "|---|---|---|---|---|---:|---:|---:|"]
    for model, audit in audits.items():
        ours = "; ".join(flags[model]) or "no"
        theirs = "—" if reference is None else ", ".join(
            name for name, row in reference[model]["rows"].items() if row["risk_low"] > limit) or "no"
        anonymeter_seconds = "—" if reference is None else f"{reference[model]['seconds']:.0f}"
        multivariate = _interval(matched[model].loc["singling_out_multivariate"])
        lines.append(f"| {model} | {ours} | {multivariate} | {theirs} | {audit.loc['exact_rows', 'copies']:.0f}, "
                     f"{audit.loc['exact_cells', 'copies']:.0f} | {seconds[model]:.1f} | {anonymeter_seconds} | "
                     f"{fit_seconds[model]:.0f} |")
    print("\n".join(lines))
    agreement = "" if reference is None else (
        f"Agreement (95 % intervals overlap): {int((table['agree'] == 'yes').sum())} of {len(table)} risks.\n\n")
    body = (
        "## Privacy audit vs anonymeter 1.1.0 (`benchmarks/bench_privacy_audit.py`)\n\n"
        f"Command: `bash benchmarks/envs/make_anonymeter_env.sh && {COMMAND}` (epochs={args.epochs}, "
        f"n_attacks={args.n_attacks}). Bundled cohort, ROI columns, CN = background, MCI + AD = target; "
        f"{len(train)} training rows, {len(control)} held-out control rows (20 % of each cohort); synthetic "
        "tables as large as the training one, cohorts pooled. Risk [95 % CI]; rates main / control / baseline. "
        "Machine: 2 shared cores, OMP_NUM_THREADS=1.\n\n"
        + agreement + table.to_markdown(index=False) + "\n\n" + "\n".join(lines)
    )
    if not args.no_record:
        record("privacy-audit", body)


if __name__ == "__main__":
    main()
