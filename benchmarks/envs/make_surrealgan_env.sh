#!/usr/bin/env bash
# Create benchmarks/envs/.surrealgan-venv: a separate interpreter with the reference Surreal-GAN package
# (surrealgan 0.1.1, Yang, Wen & Davatzikos), used by benchmarks/bench_dimensions.py for comparison only.
# surrealgan 0.1.1 pins torch==1.10.2, which has no wheel for Python 3.11, so it is installed with
# --no-deps on top of this project's own packages (torch, numpy, pandas, scikit-learn, scipy, tqdm), seen
# through a .pth file; its one other requirement, lifelines, is installed normally (pip finds the shared
# packages already satisfied). Nothing of this enters the project's virtual environment.
# Usage: bash benchmarks/envs/make_surrealgan_env.sh [path/to/project/python]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
project_python="${1:-$here/../../.venv/bin/python}"
"$project_python" -m venv --without-pip "$here/.surrealgan-venv"
venv_python="$here/.surrealgan-venv/bin/python"
site="$("$venv_python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")"
"$project_python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" > "$site/roisynth_project.pth"
"$project_python" -m pip install --quiet --no-deps --target "$site" "surrealgan==0.1.1"
"$project_python" -m pip install --quiet --target "$site" --no-deps lifelines autograd autograd-gamma formulaic \
    interface-meta wrapt narwhals
"$venv_python" -c "import SurrealGAN.Surreal_GAN_representation_learning, torch; print('surrealgan env ready, torch', torch.__version__)"
