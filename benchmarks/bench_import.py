"""Start-up time of roisynth: ``import roisynth``, ``roisynth --help`` and a few heavier imports
(issue 14, part 3: "Fast to import, thin at the edges").

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_import.py [--runs 7] [--no-record]

Each command runs ``--runs`` times in a fresh subprocess with ``OMP_NUM_THREADS=1``; the table
gives the median and the fastest wall time (interpreter start included; ``python -c pass`` is
listed for the interpreter alone). Records in benchmarks/RESULTS.md, section
"Import and CLI start-up".
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402

PYTHON = sys.executable
SCRIPT = Path(PYTHON).with_name("roisynth")  # the venv's console script
CLI = [str(SCRIPT)] if SCRIPT.exists() else [PYTHON, "-m", "roisynth.cli"]
TARGETS = {"import roisynth": "≤ 1.0 s", "roisynth --help": "≤ 0.5 s"}
COMMANDS = {
    "python -c pass (interpreter only)": [PYTHON, "-c", "pass"],
    "import roisynth": [PYTHON, "-c", "import roisynth"],
    "roisynth --help": [*CLI, "--help"],
    "roisynth fit --help": [*CLI, "fit", "--help"],
    "import roisynth.metrics": [PYTHON, "-c", "import roisynth.metrics"],
    "from roisynth import ContrastiveVAE (loads torch)": [PYTHON, "-c", "from roisynth import ContrastiveVAE"],
}


def wall_times(argv: list[str], runs: int) -> list[float]:
    """Wall time of ``argv`` in ``runs`` fresh processes with one BLAS/OpenMP thread."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, env=env, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per command (default 7)")
    parser.add_argument("--no-record", action="store_true", help="print the table only")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error(f"--runs must be >= 1, got {args.runs}")
    rows = ["| command | median (s) | fastest (s) | target |", "|---|---|---|---|"]
    for label, argv in COMMANDS.items():
        times = wall_times(argv, args.runs)
        rows.append(f"| `{label}` | {statistics.median(times):.2f} | {min(times):.2f} | {TARGETS.get(label, '')} |")
        print(rows[-1], flush=True)
    if args.no_record:
        return
    runs = f"--runs {args.runs}" if args.runs != 7 else ""
    body = "\n".join([
        "## Import and CLI start-up (`benchmarks/bench_import.py`)",
        "",
        f"Measured {date.today():%Y-%m-%d} on {platform.machine()}, Python {platform.python_version()}, "
        f"{args.runs} fresh processes per command, one BLAS/OpenMP thread,",
        f"`OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_import.py{' ' + runs if runs else ''}`. "
        "Wall time of the whole process (interpreter start included). `import roisynth` and the "
        "parser behind `--help` load none of torch, statsmodels, neuroHarmonize, matplotlib or MONAI "
        "(`tests/integration/test_imports.py`); the estimators import them on first use.",
        "",
        *rows,
    ])
    record("Import and CLI start-up", body)


if __name__ == "__main__":
    main()
