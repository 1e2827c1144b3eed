import numpy as np
import pandas as pd
import pytest

from roisynth import ContrastiveVAE, datasets


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
