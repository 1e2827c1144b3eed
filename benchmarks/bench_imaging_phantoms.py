"""Phantom generation time: procedural 64³ and 96³, and 1 mm from a real SynthSeg label map.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_imaging_phantoms.py

Each case is timed as the best of REPEATS runs (seed 0) on one thread; the 1 mm case also
reports peak resident memory of the process. The real-map case is skipped when the shared
label maps (``../shared/data/synthseg_label_maps``) are absent.
"""

from __future__ import annotations

import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
from roisynth.imaging.phantoms import SYNTHSEG_LABEL_MAPS, make_phantom

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402

REPEATS = 3
CASES = [("procedural 64³", dict(shape=(64, 64, 64))), ("procedural 96³", dict(shape=(96, 96, 96))),
         ("procedural 128³", dict(shape=(128, 128, 128)))]
REAL = SYNTHSEG_LABEL_MAPS / "training_seg_01.nii.gz"
if REAL.is_file():
    CASES += [("real map → 64³", dict(shape=(64, 64, 64), source=REAL)),
              ("real map 1 mm (256³)", dict(shape="1mm", source=REAL))]


def main() -> None:
    rows = []
    for name, kwargs in CASES:
        times = []
        for _ in range(REPEATS if "1 mm" not in name else 1):
            start = time.perf_counter()
            phantom = make_phantom(random_state=0, volume_changes={17: -0.1}, **kwargs)
            times.append(time.perf_counter() - start)
        argmax = np.array(phantom.posterior_labels)[phantom.posteriors.argmax(axis=0)]
        unmodelled = (argmax == -1) & ~np.isin(phantom.labels, phantom.posterior_labels)
        agree = np.mean((argmax == phantom.labels) | unmodelled)
        rows.append(f"| {name} | {min(times):.2f} | {len(phantom.posterior_labels)} | "
                    f"{phantom.posteriors.nbytes / 2**20:.0f} | {agree:.4f} |")
        print(rows[-1], flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    body = "\n".join([
        "## Imaging: phantoms (`benchmarks/bench_imaging_phantoms.py`)",
        "",
        f"`make_phantom(..., volume_changes={{17: -0.1}}, random_state=0)`, best of {REPEATS} (1 mm: one run), "
        f"one thread, {platform.processor() or platform.machine()}, Python {platform.python_version()}. "
        "Posterior argmax agreement: share of voxels whose most probable stored channel is their label "
        "(or OTHER for labels not stored).",
        "",
        "| case | seconds | posterior channels | posteriors MiB | argmax = label |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"Peak resident memory of the whole run: {peak:.2f} GiB.",
    ])
    record("Imaging: phantoms", body)


if __name__ == "__main__":
    main()
