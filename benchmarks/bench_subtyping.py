"""Subtyping benchmark: roisynth's SmileGAN (and other subtyping models) against the reference
Smile-GAN package (``smilegan==0.1.4``) on the same data, folds and fraction.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_subtyping.py [--data all|sample|semisynthetic]
      [--timeout 900] [--reference-epochs 9000 14000] [--skip-reference]

Data: the Smile-GAN sample data (``../shared/data/smilegan_sample/sample_data.csv``: 600 CN, then
600 PT in three simulated patterns of 200 rows; skipped when absent) and the semi-synthetic
cohort (``simulate_cohort(n=1500, CN)`` → ``make_semisynthetic``, 3 subtypes). Reported: ARI of
the consensus labels with the true subtypes, the fold models' mean pairwise ARI and wall time.

The reference is installed with ``pip install --no-deps smilegan==0.1.4`` into a venv in the
temp folder that sees this project's packages (torch, numpy, pandas, scikit-learn) through a
``.pth`` file, and run in a subprocess with ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (it saves
its checkpoints with pickle) and a hard timeout, since it retrains a fold until its stopping
rule holds, possibly forever. It is called as
``cross_validated_clustering(data, 3, N_FOLDS, FRACTION, start_saving_epoch, max_epoch, out,
WD, AQ, cluster_loss, "highest_matching_clustering", batchSize=...)`` with its README's
recommended WD = 0.11, AQ = n_PT / 20, cluster_loss = 0.0015, batch = n_PT / 10 and its epochs
(``--reference-epochs``, default the README's 9000 14000; one attempt of one fold then takes about
15 minutes on one core). Its log is kept: on a timeout the note says which fold it had reached
and how many times it had restarted a fold.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from roisynth import datasets
from roisynth.subtyping import SalientSubtypes, SmileGAN

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared/data/smilegan_sample/sample_data.csv"
N_SUBTYPES, N_FOLDS, FRACTION = 3, 3, 0.8
SEEDS = (0, 1, 2, 3)  # roisynth's models are fitted with each; the reference runs once (half an hour)
REFERENCE_CACHE = Path(__file__).resolve().parent / "subtyping_reference.json"
"""The reference's results per data set, written when it runs, reused by --skip-reference."""
README_EPOCHS = (9000, 14000)  # the reference README's start_saving_epoch, max_epoch

# Subtyping models compared on every data set: name -> factory(random_state). Another model is
# one more entry here (it needs fit(background, target) and labels_ or predict(target)).
MODELS = {
    "roisynth SmileGAN": lambda seed: SmileGAN(n_subtypes=N_SUBTYPES, n_folds=N_FOLDS, fraction=FRACTION, verbose=False,
                                               random_state=seed),
    "roisynth SalientSubtypes (ContrastiveVAE)": lambda seed: SalientSubtypes(n_subtypes=N_SUBTYPES, n_folds=N_FOLDS,
                                                                              fraction=FRACTION, random_state=seed),
}

REFERENCE_RUNNER = f"""
import json, os, sys, pandas as pd
from SmileGAN.Smile_GAN_clustering import clustering_result, cross_validated_clustering
from SmileGAN.clustering import Smile_GAN_train
data_path, out, start, stop, folds, fraction, mode = (sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6]),
                                                      float(sys.argv[6]), sys.argv[7])
data = pd.read_csv(data_path)
n_pt = int((data["diagnosis"] == 1).sum())
settings = dict(WD_threshold=0.11, AQ_threshold=n_pt // 20, cluster_loss_threshold=0.0015,
                batchSize=max(n_pt // 10, 25))
if mode == "released":  # the package's own cross-validation: retrains a fold until its stopping rule holds
    cross_validated_clustering(data, {N_SUBTYPES}, folds, fraction, start, stop, out,
                               consensus_type="highest_matching_clustering", **settings)
    result = pd.read_csv(out + "/clustering_result.csv")
    labels, fold_ari = (result["cluster_label"] - 1).tolist(), [c for c in result.columns if c.startswith("ARI")]
    fold_ari = fold_ari[0].replace("ARI = ", "") if fold_ari else ""
else:  # one training per fold (same seeds and fraction); the converged model, else the one at max_epoch
    trainer = Smile_GAN_train({N_SUBTYPES}, start, stop, **settings)
    models = []
    for fold in range(folds):
        folder = os.path.join(out, "fold%d" % fold)
        os.makedirs(folder)
        converged = trainer.train("converged", data, None, folder, random_seed=fold, data_fraction=fraction,
                                  verbose=True)
        print("fold", fold, "converged" if converged else "not converged", flush=True)
        models.append(os.path.join(folder, "converged" if converged else "latest"))
    labels, _, mean, sd = clustering_result(models, "highest_matching_clustering", data)
    labels, fold_ari = list(map(int, labels)), "%.2f+- %.2f" % (mean, sd)
print("RESULT " + json.dumps({{"labels": labels, "fold_ari": fold_ari}}))
"""


def load_sample() -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray] | None:
    if not SAMPLE.exists():
        return None
    data = pd.read_csv(SAMPLE)
    rois = [c for c in data.columns if c.startswith("ROI")]
    return data.loc[data.diagnosis == -1, rois], data.loc[data.diagnosis == 1, rois], np.repeat(np.arange(3), 200)


def load_semisynthetic() -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    cohort = datasets.simulate_cohort(n=1500, diagnosis={"CN": 1.0}, random_state=0)
    data = datasets.make_semisynthetic(cohort, n_subtypes=N_SUBTYPES, random_state=0)
    return data.background[data.rois], data.target[data.rois], data.subtype


def fit_seeds(factory, cn, pt, truth, seeds=SEEDS) -> dict:
    """Fit ``factory(seed).fit(cn, pt)`` (background, target) for each seed: lists of the ARI of its labels with
    ``truth``, its fold ARI (nan without folds) and its wall time in seconds."""
    runs = {"ari": [], "fold_ari": [], "seconds": []}
    for seed in seeds:
        start = time.perf_counter()
        model = factory(seed).fit(cn, pt)
        runs["seconds"].append(time.perf_counter() - start)
        labels = model.labels_ if hasattr(model, "labels_") else model.predict(pt)
        runs["ari"].append(adjusted_rand_score(truth, np.asarray(labels)))
        runs["fold_ari"].append(getattr(model, "fold_ari_", float("nan")))
    return runs


def run_model(factory, cn, pt, truth) -> dict:
    """Fit with each of :data:`SEEDS`: ARI and fold ARI as mean [min–max], mean seconds."""
    runs = fit_seeds(factory, cn, pt, truth)
    spread = lambda v: f"{np.mean(v):.3f} [{min(v):.3f}–{max(v):.3f}]"  # noqa: E731
    return {"ari": float(np.mean(runs["ari"])), "ari_text": spread(runs["ari"]), "fold_ari": spread(runs["fold_ari"]),
            "seconds": float(np.mean(runs["seconds"]))}


def reference_python() -> Path:
    """A venv with smilegan==0.1.4 (no deps) on top of this interpreter's packages."""
    env = Path(tempfile.gettempdir()) / "roisynth-bench-smilegan"
    python = env / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "roisynth_base.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    if subprocess.run([str(python), "-c", "import SmileGAN"], capture_output=True).returncode:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", site,
                        "smilegan==0.1.4"], check=True)
    return python


def _progress(log: str) -> str:
    """Where a reference run stood: its last fold and how many times it restarted one."""
    folds = [line for line in log.splitlines() if "Starting training of Fold" in line]
    restarts = log.count("Start retraining")
    return f"fold {folds[-1].split('Fold ')[1].split()[0] if folds else '?'}, {restarts} restarts"


def run_reference(python: Path, cn, pt, truth, timeout: float, epochs: tuple[int, int], mode: str) -> dict:
    """The reference on (cn, pt): ``mode`` "released" runs its cross_validated_clustering as
    shipped, "single" trains each fold once (its retry loop bypassed) and keeps the converged
    model or, failing that, the one at max_epoch."""
    with tempfile.TemporaryDirectory() as work:
        rois = pd.concat([cn, pt], ignore_index=True).set_axis([f"ROI{i}" for i in range(cn.shape[1])], axis=1)
        ids = pd.DataFrame({"participant_id": [f"s{i}" for i in range(len(rois))],
                            "diagnosis": [-1] * len(cn) + [1] * len(pt)})
        table = pd.concat([ids, rois], axis=1)
        table.to_csv(Path(work, "data.csv"), index=False)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "PYTHONUNBUFFERED": "1"}
        command = [str(python), "-c", REFERENCE_RUNNER, str(Path(work, "data.csv")), work, *map(str, epochs),
                   str(N_FOLDS), str(FRACTION), mode]
        start = time.perf_counter()
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, cwd=work)
        except subprocess.TimeoutExpired as stopped:
            output = stopped.stdout or ""
            log = output.decode(errors="replace") if isinstance(output, bytes) else output
            return {"ari": float("nan"), "fold_ari": "", "seconds": timeout,
                    "note": f"timed out after {timeout:.0f} s ({_progress(log)})"}
        seconds = time.perf_counter() - start
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        return {"ari": float("nan"), "fold_ari": "", "seconds": seconds,
                "note": "failed: " + done.stderr.strip()[-300:]}
    result = json.loads(lines[-1][len("RESULT "):])
    note = ", ".join(line for line in done.stdout.splitlines() if line.startswith("fold "))
    return {"ari": adjusted_rand_score(truth, np.asarray(result["labels"])), "fold_ari": result["fold_ari"],
            "seconds": seconds, "note": note}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed to each reference run")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--reference-epochs", type=int, nargs=2, default=README_EPOCHS, metavar=("START", "MAX"),
                        help="the reference's start_saving_epoch and max_epoch (default: its README's)")
    parser.add_argument("--single-epochs", type=int, nargs=2, default=(500, 2000), metavar=("START", "MAX"),
                        help="epochs of the reference's one-training-per-fold run (default 500 2000)")
    parser.add_argument("--data", choices=("all", "sample", "semisynthetic"), default="all")
    args = parser.parse_args()
    loaders = {"sample": ("Smile-GAN sample data (600 CN, 600 PT, 145 ROIs)", load_sample),
               "semisynthetic": ("semi-synthetic (750 CN, 750 PT, 145 ROIs)", load_semisynthetic)}
    python = None if args.skip_reference else reference_python()
    for key, (data_name, load) in loaders.items():
        if args.data not in ("all", key):
            continue
        data = load()
        if data is None:
            print(f"{data_name}: data absent, skipped", flush=True)
            continue
        results = {name: run_model(factory, *data) for name, factory in MODELS.items()}
        cache = json.loads(REFERENCE_CACHE.read_text()) if REFERENCE_CACHE.exists() else {}
        if python is not None:
            cache[key] = {
                "settings": f"start_saving_epoch, max_epoch = {tuple(args.reference_epochs)} as released, "
                            f"{tuple(args.single_epochs)} trained once per fold; timeout {args.timeout:.0f} s",
                "smilegan 0.1.4 as released": run_reference(python, *data, args.timeout, tuple(args.reference_epochs),
                                                            "released"),
                "smilegan 0.1.4, one training per fold": run_reference(python, *data, args.timeout,
                                                                       tuple(args.single_epochs), "single")}
            REFERENCE_CACHE.write_text(json.dumps(cache, indent=1) + "\n")
        reference = cache.get(key, {})
        results.update({name: r for name, r in reference.items() if name != "settings"})
        rows = []
        for name, r in results.items():
            print(f"{data_name} | {name}: ARI {r['ari']:.3f}, fold ARI {r['fold_ari']}, {r['seconds']:.1f} s "
                  f"{r.get('note', '')}", flush=True)
            ari = r.get("ari_text") or f"{r['ari']:.3f}"
            rows.append(f"| {name} | {ari} | {r['fold_ari']} | {r['seconds']:.1f} | {r.get('note', '')} |")
        body = "\n".join([
            f"## Subtyping: {data_name}",
            "",
            f"`benchmarks/bench_subtyping.py --data {key}`: {N_SUBTYPES} subtypes, {N_FOLDS} fold models on "
            f"{FRACTION:.0%} of each cohort; ARI of the consensus labels with the true subtypes "
            "(roisynth: mean [min–max] over seeds "
            f"{', '.join(map(str, SEEDS))}, mean wall time); one thread, {platform.processor() or platform.machine()}. "
            "Reference smilegan 0.1.4 (one run): as released (retrains a fold until its stopping rule holds) and "
            "trained once per fold (its retry loop bypassed; the converged model, else the one at max_epoch), same "
            f"folds and fraction; {reference.get('settings', 'not run')}"
            f"{'' if python is not None else ' (recorded in benchmarks/subtyping_reference.json)'}.",
            "",
            "| model | ARI vs truth | fold ARI | wall time (s) | note |",
            "|---|---|---|---|---|",
            *rows,
        ])
        record(f"Subtyping: {key}", body)
        print(body)


if __name__ == "__main__":
    main()
