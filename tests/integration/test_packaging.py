"""The built wheel holds every subpackage and data file, and works outside the source tree."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True, capture_output=True,
    )
    (path,) = out.glob("roisynth-*.whl")
    return path


def test_wheel_contains_every_package_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for init in (ROOT / "roisynth").rglob("__init__.py"):
        assert str(init.relative_to(ROOT)) in names
    for module in (ROOT / "imaging").rglob("*.py"):  # the top-level imaging/ folder is roisynth.imaging
        assert f"roisynth/imaging/{module.relative_to(ROOT / 'imaging')}" in names
    for data in (ROOT / "datasets").iterdir():
        if data.suffix in {".csv", ".json", ".npz"}:
            assert f"roisynth/data/{data.name}" in names


def test_installed_wheel_runs_outside_the_checkout(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    # -I: ignore PYTHONPATH and the current folder; the wheel's copy goes first on sys.path
    code = (
        f"import sys; sys.path.insert(0, {str(target)!r}); "
        "import roisynth, roisynth.metrics, roisynth.nn, roisynth.imaging; "
        f"assert roisynth.__file__.startswith({str(target)!r}), roisynth.__file__; from roisynth import datasets; "
        "assert datasets.load_example().shape == (3000, 151) and len(datasets.roi_names()) == 139"
    )
    run = subprocess.run([sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
