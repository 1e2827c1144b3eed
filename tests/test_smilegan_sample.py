"""SmileGAN on the Smile-GAN sample data (its own file, so that it runs beside test_smilegan.py)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from roisynth.smilegan import SmileGAN

SAMPLE = Path(__file__).resolve().parents[1].parent / "shared/data/smilegan_sample/sample_data.csv"


def test_recovers_reference_sample_data():
    if not SAMPLE.exists():
        pytest.skip(f"{SAMPLE} absent")
    data = pd.read_csv(SAMPLE)
    rois = [c for c in data.columns if c.startswith("ROI")]
    cn, pt = data.loc[data.diagnosis == -1, rois], data.loc[data.diagnosis == 1, rois]
    model = SmileGAN(max_retries=1, verbose=False, random_state=0).fit(cn, pt)
    assert adjusted_rand_score(np.repeat([0, 1, 2], 200), model.labels_) >= 0.95  # 1.000 measured; the issue asks 0.8
