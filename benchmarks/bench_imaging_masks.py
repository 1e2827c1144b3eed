"""Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_imaging_masks.py

Benchmark of the Counterfactual Mask Generator (``roisynth.imaging.masks.edit_masks``):
time of one ROI edit (left hippocampus, -5 % and +5 %, default blurred one-hot posteriors)
on a 256³ label map and its 128³ nearest-neighbour downsample (every other voxel). Uses
SynthSeg's ``training_seg_01`` from ``../shared/data/synthseg_label_maps`` when present, else
a procedural phantom (hippocampus ball in CSF in WM). Prints and records the section
"Imaging: masks" of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

import numpy as np
from roisynth.imaging.labels import CSF
from roisynth.imaging.masks import edit_masks
from roisynth.imaging.nifti import load_nifti

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared/data/synthseg_label_maps"
HIPPO = 17


def _label_map() -> tuple[np.ndarray, str]:
    if (DATA / "training_seg_01.nii.gz").exists():
        return load_nifti(DATA / "training_seg_01.nii.gz")[0], "SynthSeg training_seg_01"
    grid = np.indices((256, 256, 256), dtype=np.int16) - 128
    dist = np.sqrt((grid.astype(np.float32) ** 2).sum(axis=0))
    labels = np.full((256,) * 3, 2, dtype=np.int16)
    labels[dist <= 22] = CSF
    labels[dist <= 15] = HIPPO
    return labels, "procedural phantom (ball r 15 in CSF r 22 in WM)"


def _best_time(labels, target, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        edit = edit_masks(labels, None, {HIPPO: target})
        times.append(time.perf_counter() - start)
    assert np.count_nonzero(edit.labels == HIPPO) == round(target)
    return min(times)


def main() -> None:
    full, source = _label_map()
    rows = []
    for name, labels in [("128³", full[::2, ::2, ::2].copy()), ("256³", full)]:
        n = int(np.count_nonzero(labels == HIPPO))
        for factor in (0.95, 1.05):
            seconds = _best_time(labels, n * factor)
            rows.append(f"| {name} | {n} | {factor - 1:+.0%} | {seconds:.3f} |")
            print(rows[-1])
    body = "\n".join([
        "## Imaging: masks (`benchmarks/bench_imaging_masks.py`)",
        "",
        f"One ROI edit with `edit_masks` (left hippocampus, code 17, default posteriors) on "
        f"{source}; best of 3; {platform.processor() or platform.machine()}, one thread.",
        "",
        "| map | hippocampus voxels | change | seconds |",
        "|---|---|---|---|",
        *rows,
    ])
    record("Imaging: masks", body)


if __name__ == "__main__":
    main()
