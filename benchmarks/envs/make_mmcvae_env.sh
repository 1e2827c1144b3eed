#!/usr/bin/env bash
# Create benchmarks/envs/.mmcvae-venv and benchmarks/envs/.mmcvae-src: the public MM-cVAE reference
# (Weinberger, Lin & Lee, AISTATS 2022; github.com/suinleelab/MM-cVAE, not on PyPI; measured at commit
# 58df4e0) with pytorch-lightning, used by benchmarks/bench_speed.py. The repository is unpacked
# unchanged into .mmcvae-src; the venv reuses the project's torch (a .pth file appends .venv's
# site-packages) so that both sides of the timing run the same torch build, and pytorch-lightning never
# enters the project's own environment.
# Usage: bash benchmarks/envs/make_mmcvae_env.sh GIT_DIR   (a clone's .git or a bare mirror of the repository)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
git_dir="${1:?give the git directory of a MM-cVAE clone or mirror}"
rm -rf "$here/.mmcvae-src" && mkdir -p "$here/.mmcvae-src"
git --git-dir="$git_dir" archive HEAD | tar -x -C "$here/.mmcvae-src"
"$root/.venv/bin/python" -m venv --without-pip "$here/.mmcvae-venv"
site="$("$here/.mmcvae-venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
"$root/.venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > "$site/zz_project_torch.pth"
"$root/.venv/bin/python" -m pip --python "$here/.mmcvae-venv/bin/python" install --quiet "pytorch-lightning==2.6.6"
"$here/.mmcvae-venv/bin/python" -c "import pytorch_lightning, torch; print('MM-cVAE env ready:', pytorch_lightning.__version__, torch.__version__)"
