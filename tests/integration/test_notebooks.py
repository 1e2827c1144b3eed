"""Every notebook in notebooks/ runs from top to bottom without error (and is stored clean).

Each notebook is executed in memory (the file in the repository is never rewritten) by a
``python3`` kernel started with *this* interpreter, so the kernel sees the same environment
as the tests (e.g. the ``.venv`` made by ``make test``), whatever kernels are installed
elsewhere on the machine.
"""

import asyncio
import json
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOKS = sorted((Path(__file__).parents[2] / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 600  # seconds per cell
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory) -> KernelSpecManager:
    """Kernel specs holding only a ``python3`` kernel that runs ``sys.executable``."""
    folder = tmp_path_factory.mktemp("kernels") / "python3"
    folder.mkdir()
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3",
        "language": "python",
    }
    (folder / "kernel.json").write_text(json.dumps(spec))
    return KernelSpecManager(kernel_dirs=[str(folder.parent)], ensure_native_kernel=False)


def _read(path: Path):
    with path.open(encoding="utf-8") as f:
        return nbformat.read(f, as_version=4)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path, kernel_specs):
    nb = _read(path)
    km = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=kernel_specs)
    client = NotebookClient(
        nb,
        km=km,
        kernel_name="python3",
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(path.parent)}},  # cwd of the kernel
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    try:
        client.execute(env=env)
    except CellExecutionError as exc:  # its message holds the cell's source and traceback
        pytest.fail(f"{path.name}: a cell failed\n{ANSI_COLOUR.sub('', str(exc))}", pytrace=False)
    finally:  # nbclient leaves a kernel it did not start running: each held ~0.7 GB until the session ended
        if km.has_kernel:
            asyncio.run(km.shutdown_kernel(now=True))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stored_clean(path):
    """Valid nbformat 4 with a python3 kernel, saved without outputs (small, readable diffs)."""
    nb = _read(path)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    code = [(i, cell) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    dirty = [i for i, cell in code if cell.outputs or cell.execution_count is not None]
    assert not dirty, f"{path.name}: code cells {dirty} have outputs or execution counts; clear them before committing"
