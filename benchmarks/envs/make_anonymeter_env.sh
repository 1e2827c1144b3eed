#!/usr/bin/env bash
# Create benchmarks/envs/.anonymeter-venv: a separate interpreter with anonymeter 1.1.0 (the
# reference implementation of Giomi et al., PETS 2023), used by benchmarks/bench_privacy_audit.py.
# anonymeter pins numpy < 1.27 and Python < 3.12, below roisynth's stack, so it never enters the
# project's own virtual environment. Usage: bash benchmarks/envs/make_anonymeter_env.sh [python3.11]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${1:-python3.11}"
"$python" -m venv "$here/.anonymeter-venv"
"$here/.anonymeter-venv/bin/python" -m pip install --quiet --upgrade pip
"$here/.anonymeter-venv/bin/python" -m pip install --quiet "anonymeter==1.1.0"
"$here/.anonymeter-venv/bin/python" -c "import anonymeter, numpy, pandas; print('anonymeter env ready:', numpy.__version__, pandas.__version__)"
