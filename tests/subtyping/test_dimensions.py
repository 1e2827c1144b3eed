"""salient_dimensions: severities and patterns from a contrastive model's salient effects, on small planted data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from roisynth import GaussianMixtureSynthesizer, LinearContrastive
from roisynth.subtyping import match_dimensions, salient_dimensions

ROIS = [f"roi{i}" for i in range(8)]
PATTERNS = np.array([[1, 1, 1, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1, 0, 0]], dtype=float)


@pytest.fixture(scope="module")
def planted():
    """CN ~ N(100, 5²) per ROI; patients lose 25 · r_k on pattern k's ROIs, r ~ Uniform(0, 1)²; a linear model."""
    rng = np.random.default_rng(0)
    r = rng.uniform(size=(400, 2))
    cn = pd.DataFrame(rng.normal(100, 5, (400, 8)), columns=ROIS)
    pt = pd.DataFrame(rng.normal(100, 5, (400, 8)) - 25 * r @ PATTERNS, columns=ROIS)
    return LinearContrastive(n_common=2, n_salient=2, random_state=0).fit(cn, pt), pt, r


def test_severities_and_patterns_are_recovered(planted):
    model, pt, r = planted
    result = salient_dimensions(model, pt, n_dimensions=2, n_folds=3, random_state=0)
    estimate = result.r_indices.to_numpy()
    order = match_dimensions(r, estimate)
    assert min(np.corrcoef(r[:, k], estimate[:, j])[0, 1] for k, j in enumerate(order)) > 0.85
    assert result.fold_corr > 0.9 and ((estimate >= 0) & (estimate <= 1)).all()
    assert list(result.r_indices.index) == list(pt.index)
    strongest = {tuple(sorted(result.pattern_maps[c].nsmallest(3).index)) for c in result.pattern_maps}
    assert strongest == {("roi0", "roi1", "roi2"), ("roi3", "roi4", "roi5")}


def test_errors_name_the_argument(planted):
    model, pt, _ = planted
    with pytest.raises(ValueError, match="n_dimensions"):
        salient_dimensions(model, pt, n_dimensions=0)
    with pytest.raises(TypeError, match="model must be"):
        salient_dimensions(GaussianMixtureSynthesizer(), pt)
    with pytest.raises(NotFittedError, match="model must be fitted"):
        salient_dimensions(LinearContrastive(), pt)
