"""Run: .venv/bin/python benchmarks/bench_imaging_diffusion.py [--config 64] [--output DIR] [--skip-train]
     [--subjects 50]

Benchmark of the mask-guided latent diffusion pipeline (issue 8): trains every stage of the
preset on phantoms with :func:`roisynth.imaging.training.train` (bf16 autocast on CUDA;
``--output`` keeps the folder, and a rerun resumes it, skipping finished stages), then scores
counterfactuals of the held-out phantoms (hippocampi and amygdalae -15 %, diagnosis -> AD)
with :func:`roisynth.imaging.training.evaluate` (segmenter calibrated on phantom pairs) and
times one counterfactual volume alone (DDIM inversion + sampling + decoding; CUDA-synchronized,
best of 3 after a warm-up). Prints and records the section "Imaging: diffusion" of
benchmarks/RESULTS.md ("Imaging: diffusion <config> <GPU|CPU>") with the issue's targets next to
the measured values.

CPU smoke run (about a minute; its figures mean nothing): ``--config 32 --steps 2
--train-subjects 8 --subjects 2`` (``--config 16`` trains, but its 16³ phantoms have no
hippocampi or amygdalae left to edit, so the evaluation stops with an error).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from roisynth.imaging.config import get_config
from roisynth.imaging.masks import edit_masks
from roisynth.imaging.training import STAGES, evaluate, load_run, smoke_config, train

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402

CHANGE = -0.15
ROI_CODES = (17, 53, 18, 54)


def _seconds_per_counterfactual(folder: Path, repeats: int = 3) -> float:
    """Best of ``repeats`` timings of one counterfactual (after a warm-up), CUDA-synchronized."""
    model, _, test = load_run(folder)
    labels = test.labels[0]
    present = {code: float(np.count_nonzero(labels == code)) * (1 + CHANGE) for code in ROI_CODES
               if np.count_nonzero(labels == code)}
    edited = edit_masks(labels, None, present).labels if present else labels
    meta = test.metadata.iloc[[0]][["age", "sex", "diagnosis"]]
    meta_cf = meta.assign(diagnosis="AD")
    sync = torch.cuda.synchronize if model.device.type == "cuda" else (lambda: None)
    times = []
    for _ in range(repeats + 1):
        sync()
        start = time.perf_counter()
        model.counterfactual(test.images[0], labels, edited, meta, meta_cf)
        sync()
        times.append(time.perf_counter() - start)
    return min(times[1:])


def _row(name: str, target: str, value: float, ok: bool | None, fmt: str = "{:.3f}") -> str:
    verdict = "n/a" if ok is None else ("pass" if ok else "fail")
    return f"| {name} | {target} | {fmt.format(value)} | {verdict} |"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))  # the "Run:" line
    parser.add_argument("--config", default="64", help="preset (default 64; 16 for a CPU smoke run)")
    parser.add_argument("--output", default=None, help="training folder (default: a folder in the temp dir)")
    parser.add_argument("--skip-train", action="store_true", help="use the trained folder --output as it is")
    parser.add_argument("--subjects", type=int, default=50, help="held-out subjects to evaluate (default 50)")
    parser.add_argument("--steps", type=int, default=None, help="override every stage's steps (smoke runs)")
    parser.add_argument("--train-subjects", type=int, default=None, help="training phantoms (default: the preset's)")
    args = parser.parse_args(argv)
    config = smoke_config(get_config(args.config), args.steps, args.train_subjects)
    folder = Path(args.output or Path(tempfile.gettempdir()) / f"roisynth-imaging-diffusion-{config.name}")
    cuda = torch.cuda.is_available()
    if args.skip_train:
        progress = folder / "progress.json"
        finished = json.loads(progress.read_text())["finished"] if progress.is_file() else []
        if set(finished) != set(STAGES):
            raise SystemExit(f"--skip-train: {folder} is not a fully trained folder (finished: {finished})")
        trained = json.loads((folder / "timings.json").read_text())
    else:
        trained = train(config, folder, resume=True, bf16=cuda, n_jobs=min(16, os.cpu_count() or 1) if cuda else 1)
    _, summary = evaluate(folder, n_subjects=args.subjects)
    seconds = _seconds_per_counterfactual(folder, repeats=3 if cuda else 1)
    device = torch.cuda.get_device_name() if cuda else "CPU"
    print(json.dumps(summary, indent=1, default=str))
    print(f"{seconds:.2f} s per counterfactual on {device}")

    grid = f"{config.shape}³"
    rows = [
        _row("median relative error of the ROI volume changes (calibrated segmenter)", "≤ 25 %",
             summary["volume_error_median"], summary["volume_error_median"] <= 0.25, "{:.1%}"),
        _row("ROI changes within 25 % of intended", "—", summary["volume_within_25"], None, "{:.0%}"),
        _row("null-intervention SSIM (reconstruction vs input)", "≥ 0.9", summary["null_ssim"],
             summary["null_ssim"] >= 0.9),
        _row("locality: mean abs. difference outside / inside the edit band", "≤ 1/3", summary["locality_ratio"],
             summary["locality_ratio"] <= 1 / 3),
        _row(f"seconds per {grid} counterfactual ({device})", "≤ 5 s for 64³ on an H100", seconds,
             seconds <= 5 if config.shape == 64 and "H100" in device else None, "{:.2f}"),
        _row("MS-SSIM generated vs real (held-out)", "—", summary["ms_ssim"], None),
        _row("FID on segmenter features, generated vs real", "—", summary["fid_segmenter_features"], None, "{:.3g}"),
        _row("MMD² of 4³-block-mean images, generated vs real", "—", summary["mmd_images"], None, "{:.3g}"),
    ]
    stages = " · ".join(f"{s} {trained['seconds'][s]:.0f} s" for s in STAGES)
    body = "\n".join([
        f"## Imaging: diffusion, {grid} on {'GPU' if cuda else 'CPU'} "
        f"(`benchmarks/bench_imaging_diffusion.py --config {config.name}`)",
        "",
        f"Mask-guided latent diffusion, config `{config.name}` ({grid} phantoms, {config.n_subjects} training "
        f"subjects), {summary['n_subjects']} held-out subjects, {summary['steps']} DDIM steps; "
        f"{device}{', bf16 autocast' if cuda else ''}. Counterfactual: hippocampi and amygdalae "
        f"{CHANGE:+.0%} (masks edited with `edit_masks`), diagnosis -> AD; volumes measured by the "
        f"trained segmenter, calibrated on phantom pairs. Training: {stages} "
        f"({sum(trained['seconds'][s] for s in STAGES) / 60:.1f} min in all).",
        "",
        "| figure | target | measured | verdict |",
        "|---|---|---|---|",
        *rows,
    ])
    print(body)
    record(f"Imaging: diffusion {config.name} {'GPU' if cuda else 'CPU'}", body)


if __name__ == "__main__":
    main()
