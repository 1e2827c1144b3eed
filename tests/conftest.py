from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from roisynth import ContrastiveVAE, datasets

SMILEGAN_SAMPLE = Path(__file__).resolve().parents[1].parent / "shared/data/smilegan_sample/sample_data.csv"


@pytest.fixture(scope="session")
def smilegan_sample():
    """(CN, PT, true pattern 0..2) of the Smile-GAN sample data beside the project (600 CN, then
    3 patterns of 200 PT, in order); the test is skipped when the shared folder is absent."""
    if not SMILEGAN_SAMPLE.exists():
        pytest.skip(f"{SMILEGAN_SAMPLE} absent")
    table = pd.read_csv(SMILEGAN_SAMPLE)
    rois = [c for c in table.columns if c.startswith("ROI")]
    return table.loc[table.diagnosis == -1, rois], table.loc[table.diagnosis == 1, rois], np.repeat([0, 1, 2], 200)


@pytest.fixture(scope="session")
def example():
    return datasets.load_example()


@pytest.fixture(scope="session")
def cohorts(example):
    """(CN, MCI+AD) ROI tables of the bundled cohort."""
    rois = datasets.roi_names()
    return (example.loc[example.diagnosis == "CN", rois], example.loc[example.diagnosis != "CN", rois])


@pytest.fixture(scope="session")
def small_model(cohorts):
    """A quickly fitted model for API tests (few epochs: not for quality checks)."""
    cn, pt = cohorts
    return ContrastiveVAE(epochs=15, verbose=False, random_state=0).fit(cn.iloc[:400], pt.iloc[:400])


@pytest.fixture
def toy():
    """Small positive tables with named columns."""
    rng = np.random.default_rng(0)
    columns = [f"roi{i}" for i in range(6)]
    bg = pd.DataFrame(rng.normal(100, 10, (60, 6)), columns=columns)
    tg = pd.DataFrame(rng.normal(90, 10, (60, 6)), columns=columns)
    return bg, tg


def pytest_collection_modifyitems(items):
    """Schedule by file for ``pytest -n 2 --dist loadgroup``: a test without an explicit
    ``xdist_group`` mark joins its file's group, so a file's module fixtures (fitted models) are
    built on one worker only; a long test marked with its own group runs beside its file."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
