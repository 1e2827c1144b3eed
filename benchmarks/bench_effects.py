"""Faithful disease effects at two study sizes, every model (issue 15, item 2).

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_effects.py [--seeds 3]
          [--models ContrastiveVAE,ConditionalVAE,LinearContrastive,GaussianMixture] [--sizes 100x190,1050x1050]
          [--data semisynthetic,bundled] [--model-kwargs '{"ContrastiveVAE": {"n_hidden": 256}}'] [--no-record]

Every model is fitted at every training size (background x target subjects) and seed on
(a) semi-synthetic data: ``simulate_cohort`` (one site, CN only, large enough that about
    10 000 held-out subjects per cohort give the true d) split by ``make_semisynthetic`` into
    a background half and a target half with the seed paper's Table 1 atrophy; unaffected ROIs
    = those the atrophy leaves untouched in every target subject;
(b) the bundled cohort (``load_example``: CN vs MCI+AD) subsampled at random; the reference d
    is that of the rows not drawn for training (no ground truth, so no spurious figures).
Each fitted model is scored by :func:`roisynth.evaluation.effect_scores` on 2000 synthetic
subjects per cohort (and 2000 synthetic pairs for pairing models): effect scale (slope of the
synthetic d on the training d over ROIs with |d_train| >= 0.2, 1 ideal), effect error ratio
(RMSE of synthetic d vs reference d over that of the training d, 1 = as informative as the
training data), spurious mean |d| on unaffected ROIs next to the training data's own.
Prints the table (mean [min-max] over seeds) and records it in benchmarks/RESULTS.md, section
"Effects: two sizes" (with --model-kwargs, a section of its own named after them).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from roisynth import (  # noqa: E402
    ConditionalVAE,
    ContrastiveVAE,
    GaussianMixtureSynthesizer,
    KDESynthesizer,
    LinearContrastive,
    datasets,
)
from roisynth.evaluation import effect_scores  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402

MODELS = {"ContrastiveVAE": ContrastiveVAE, "ConditionalVAE": ConditionalVAE, "LinearContrastive": LinearContrastive,
          "GaussianMixture": GaussianMixtureSynthesizer, "KDE": KDESynthesizer}
NEURAL = ("ContrastiveVAE", "ConditionalVAE")
DEFAULT_MODELS = "ContrastiveVAE,ConditionalVAE,LinearContrastive,GaussianMixture"
DATA = ("semisynthetic", "bundled")
HELD_OUT = 10_000  # semi-synthetic held-out subjects per cohort (the true d)
N_EFFECT = 2000  # synthetic subjects per cohort, and synthetic pairs
COLUMNS = {  # effect_scores key -> column of the table
    "effect_scale_d": "effect scale", "effect_error_ratio": "effect error ratio", "spurious_d": "spurious |d|",
    "paired_effect_scale_d": "paired effect scale", "paired_effect_error_ratio": "paired effect error ratio",
    "paired_spurious_d": "paired spurious |d|",
}
LABELS = COLUMNS | {"spurious_d_train": "training spurious |d|"}


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """'100x190,1050x1050' -> [(100, 190), (1050, 1050)] (background x target training subjects)."""
    sizes = []
    for item in text.split(","):
        try:
            background, target = (int(n) for n in item.lower().split("x"))
        except ValueError:
            raise SystemExit(f"--sizes: {item!r} is not BACKGROUNDxTARGET, e.g. 100x190") from None
        sizes.append((background, target))
    return sizes


def parse_models(text: str, kwargs: dict) -> dict[str, dict]:
    """Model name -> its keyword arguments (besides random_state), checked against MODELS."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in [*names, *kwargs] if n not in MODELS]
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown} (--models / --model-kwargs); choose among {list(MODELS)}")
    return {name: ({"verbose": False} if name in NEURAL else {}) | kwargs.get(name, {}) for name in names}


def semisynthetic(sizes: list[tuple[int, int]], seed: int):
    """(background, target, unaffected ROIs) of a semi-synthetic cohort with ``HELD_OUT`` spare rows per cohort."""
    n = 2 * (HELD_OUT + max(max(size) for size in sizes))
    cohort = datasets.simulate_cohort(n=n, diagnosis={"CN": 1.0}, sites=1, random_state=seed)
    data = datasets.make_semisynthetic(cohort[["age", "sex", "icv", *datasets.roi_names()]], random_state=seed)
    return data.background[data.rois], data.target[data.rois], (data.factors == 0).all()


def bundled():
    """(CN, MCI+AD) ROI tables of the bundled cohort; no ROI is known to be unaffected."""
    cohort, rois = datasets.load_example(), datasets.roi_names()
    return cohort.loc[cohort.diagnosis == "CN", rois], cohort.loc[cohort.diagnosis != "CN", rois], None


def split(table: pd.DataFrame, n: int, rng) -> tuple[pd.DataFrame, pd.DataFrame]:
    if n + 10 > len(table):
        raise SystemExit(f"--sizes: {n} training rows leave fewer than 10 of {len(table)} held out")
    order = rng.permutation(len(table))
    return table.iloc[np.sort(order[:n])], table.iloc[np.sort(order[n:])]


def run(models: dict[str, dict], sizes, seeds: int, data: list[str]) -> pd.DataFrame:
    """One row per (data, size, model, seed): the effect figures and the fit time."""
    rows = []
    for seed in range(seeds):
        for source in data:
            background, target, unaffected = semisynthetic(sizes, seed) if source == "semisynthetic" else bundled()
            for size in sizes:
                rng = np.random.default_rng(seed)
                (train_b, test_b), (train_t, test_t) = split(background, size[0], rng), split(target, size[1], rng)
                for name, params in models.items():
                    model = MODELS[name](random_state=seed, **params)
                    start = time.perf_counter()
                    model.fit(train_b, train_t)
                    seconds = time.perf_counter() - start
                    scores = effect_scores(model, (train_b, train_t), reference=(test_b, test_t),
                                           unaffected=unaffected, n_sample=N_EFFECT, random_state=seed)
                    rows.append({"data": source, "size": f"{size[0]} / {size[1]}", "model": name, "seed": seed,
                                 **scores, "fit_seconds": seconds, "held_out": f"{len(test_b)} / {len(test_t)}"})
                    print(f"{source} {size[0]}/{size[1]} {name} seed {seed}: fit {seconds:.1f} s, "
                          + ", ".join(f"{LABELS[k]} {v:.3f}" for k, v in scores.items() if np.isfinite(v)),
                          flush=True)
    return pd.DataFrame(rows)


def _spread(values: pd.Series, digits: int = 2) -> str:
    """'mean [min–max]' over seeds ('—' when the model cannot produce the figure)."""
    if values.isna().all():
        return "—"
    mean, low, high = (f"{v:.{digits}f}" for v in (values.mean(), values.min(), values.max()))
    return f"{mean} [{low}–{high}]" if len(values) > 1 else mean


def summarize(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, size, data), in the order run: mean [min–max] over seeds."""
    rows = []
    for (source, size, model), group in scores.groupby(["data", "size", "model"], sort=False):
        row = {"model": model, "size (CN / patients)": size, "data": source}
        row |= {label: _spread(group[key], 3 if "spurious" in key else 2) for key, label in COLUMNS.items()}
        if group["spurious_d_train"].notna().any():
            row["spurious |d|"] += f" ({group['spurious_d_train'].mean():.3f})"
        row["fit (s)"] = f"{group['fit_seconds'].mean():.1f}"
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["size (CN / patients)", "data"], key=_size_order, kind="stable")


def _size_order(column: pd.Series) -> pd.Series:
    """Sort key: sizes by their number of background subjects, other columns as they are."""
    if column.name == "size (CN / patients)":
        return column.str.split(" / ").str[0].astype(int)
    return column


def provenance() -> str:
    """Which roisynth was measured: its git commit, and whether its package has uncommitted changes."""
    import roisynth

    where = Path(roisynth.__file__).resolve().parent
    git = ["git", "-C", str(where)]
    try:
        commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        status = subprocess.run([*git, "status", "--porcelain", "--", "."], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "roisynth from outside a git checkout"
    dirty = " with uncommitted changes in roisynth/" if status.stdout.strip() else ""
    return f"roisynth at commit {commit.stdout.strip()}{dirty}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=DEFAULT_MODELS, help=f"comma-separated, among {', '.join(MODELS)}")
    parser.add_argument("--sizes", default="100x190,1050x1050",
                        help="BACKGROUNDxTARGET training subjects, comma-separated")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..SEEDS-1 (split, simulation and model)")
    parser.add_argument("--data", default=",".join(DATA), help=f"comma-separated, among {', '.join(DATA)}")
    parser.add_argument("--model-kwargs", default="{}",
                        help='JSON per model, e.g. \'{"ContrastiveVAE": {"n_hidden": 256}}\'')
    parser.add_argument("--no-record", action="store_true", help="print only; leave benchmarks/RESULTS.md alone")
    args = parser.parse_args()
    try:
        kwargs = json.loads(args.model_kwargs)
    except json.JSONDecodeError as error:
        raise SystemExit(f"--model-kwargs is not valid JSON: {error}") from None
    if not isinstance(kwargs, dict) or not all(isinstance(v, dict) for v in kwargs.values()):
        raise SystemExit('--model-kwargs must map model names to keyword arguments, e.g. {"ContrastiveVAE": {...}}')
    models = parse_models(args.models, kwargs)
    sizes = parse_sizes(args.sizes)
    data = [d.strip() for d in args.data.split(",")]
    if any(d not in DATA for d in data) or args.seeds < 1:
        raise SystemExit(f"--data must be among {DATA} and --seeds >= 1")

    start = time.perf_counter()
    scores = run(models, sizes, args.seeds, data)
    minutes = (time.perf_counter() - start) / 60
    table = summarize(scores).to_markdown(index=False)
    print(table)
    if args.no_record:
        return
    command = "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_effects.py " + shlex.join(sys.argv[1:])
    held_out = scores.groupby(["data", "size"], sort=False)["held_out"].first()
    held_out = "; ".join(f"{source} {size}: {rows}" for (source, size), rows in held_out.items())
    variants = f" `--model-kwargs {args.model_kwargs}`" if kwargs else ""
    body = f"""## Faithful disease effects at two study sizes (`benchmarks/bench_effects.py`){variants}

Measured {time.strftime('%Y-%m-%d')} on {platform.processor() or platform.machine()}, one thread, {minutes:.0f} min,
{provenance()}, `{command.strip()}`.

Each model fitted on background / target training subjects (size), seeds 0–{args.seeds - 1} (split, simulation and
model); mean [min–max] over seeds. Data: *semisynthetic* = `simulate_cohort` (one site, CN) split by
`make_semisynthetic` (Table 1 atrophy), true d from the held-out rows; *bundled* = `load_example()` CN vs
MCI+AD subsampled, reference d from the rows not drawn (held-out background / target rows: {held_out}).
`effect_scores` on {N_EFFECT} synthetic subjects per cohort (and {N_EFFECT} pairs): **effect scale** = slope of
synthetic d on training d over ROIs with |d_train| ≥ 0.2 (target [0.95, 1.05]); **effect error ratio** =
RMSE(synthetic d − reference d) / RMSE(training d − reference d) (target ≤ 1.1); **spurious |d|** = mean |d| over
the ROIs the atrophy leaves untouched, the training data's own in brackets (target ≤ training + 0.01); the
paired columns score the two arms of `sample_paired` the same way (— for models that do not pair).

Reading the effect error ratio: the {N_EFFECT} synthetic draws per cohort carry sampling noise of their
own, adding about 2/{N_EFFECT} to the mean squared error of d, so a generator that reproduced its training
distribution exactly would score about √(1 + (2/{N_EFFECT}) / (1/n_CN + 1/n_patients + 2/n_held-out)): ≈ 1.2 at
1050 / 1050 on the semi-synthetic data, ≈ 1.03 at 100 / 190. The ratio also moves between seeds because ROI
volumes are correlated, so a training sample's errors in d are shared across ROIs (spurious |d| of the
training data varies between seeds by more than the sampling noise of a mean of independent |d|).

{table}
"""
    record("Effects: two sizes" + (f" {json.dumps(kwargs, sort_keys=True)}" if kwargs else ""), body)


if __name__ == "__main__":
    main()
