"""Fast to import, thin at the edges: ``import roisynth`` and the parser behind ``roisynth --help``
load none of the heavy libraries (what makes them take seconds), and ``--help`` lists every command.

Each check runs in a fresh interpreter: this test process has imported them all long ago."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch", "statsmodels", "neuroHarmonize", "matplotlib", "monai")
COMMANDS = ("demo", "fit", "harmonize", "sample", "counterfactual", "benchmark", "report", "imaging")


def _heavy_modules_after(code: str) -> list[str]:
    """The HEAVY modules in ``sys.modules`` of a fresh interpreter after running ``code``."""
    loaded = f"sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))"
    probe = f"{code}\nimport json, sys\nprint(json.dumps({loaded}))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("code", [
    "import roisynth",
    "import roisynth.cli",
    "from roisynth.cli import build_parser; build_parser()",
    "import roisynth.imaging, roisynth.imaging.cli",
    "import roisynth.preprocessing",
    "import roisynth.metrics",
    "import roisynth.datasets",
    "import roisynth.evaluation",
    "import roisynth.io",
])
def test_light_imports_load_no_heavy_library(code):
    assert _heavy_modules_after(code) == []


@pytest.mark.parametrize("argv", [["--help"], *(["imaging", c, "--help"] for c in ("phantom", "train")),
                                  *([c, "--help"] for c in COMMANDS)])
def test_help_loads_no_heavy_library(argv):
    """Parsing ``--help`` exits inside argparse, so whatever a command imports stays unimported."""
    code = f"from roisynth.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass"
    assert _heavy_modules_after(code) == []


def test_help_exits_0_listing_every_command():
    script = Path(sys.executable).with_name("roisynth")
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "roisynth.cli"]
    result = subprocess.run([*argv, "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for command in COMMANDS:
        assert f"    {command} " in result.stdout or f"    {command}\n" in result.stdout, command


def test_sample_help_names_the_pipeline_site_constant(capsys):
    """The help text spells out pipeline.HARMONIZED without importing the pipeline."""
    from roisynth.cli import main
    from roisynth.pipeline import HARMONIZED

    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    assert f"'{HARMONIZED}'" in capsys.readouterr().out
