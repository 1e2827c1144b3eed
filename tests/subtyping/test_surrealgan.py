"""SurrealGAN and select_k on small planted data: severities recovered, K recovered, files round-trip, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from roisynth import GaussianMixtureSynthesizer, SurrealGAN
from roisynth.subtyping import dimension_agreement, match_dimensions, select_k

ROIS = [f"roi{i}" for i in range(8)]
PATTERNS = np.array([[1, 1, 1, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1, 0, 0]], dtype=float)


def planted(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """CN ~ N(100, 5²) per ROI; patients lose 25 · r_k on pattern k's ROIs, r ~ Uniform(0, 1)²."""
    rng = np.random.default_rng(seed)
    r = rng.uniform(size=(n, 2))
    cn = pd.DataFrame(rng.normal(100, 5, (n, 8)), columns=ROIS)
    pt = pd.DataFrame(rng.normal(100, 5, (n, 8)) - 25 * r @ PATTERNS, columns=ROIS)
    return cn, pt, r


def small(**kwargs) -> SurrealGAN:
    return SurrealGAN(**{"n_patterns": 2, "n_folds": 3, "max_iter": 50, "inverse_iter": 300, "verbose": False,
                         "random_state": 0, **kwargs})


@pytest.fixture(scope="module")
def fitted():
    cn, pt, r = planted()
    return small().fit(cn, pt), cn, pt, r


def test_r_indices_correlate_with_the_planted_severities(fitted):
    model, _, pt, r = fitted
    estimate = model.transform(pt).to_numpy()
    order = match_dimensions(r, estimate)
    correlations = [np.corrcoef(r[:, k], estimate[:, j])[0, 1] for k, j in enumerate(order)]
    assert min(correlations) > 0.85 and model.fold_corr_ > 0.85
    assert ((estimate >= 0) & (estimate <= 1)).all()


def test_pattern_maps_put_each_pattern_on_its_rois(fitted):
    model, *_ = fitted
    maps = model.pattern_maps()
    assert list(maps.columns) == ["r1", "r2"] and list(maps.index) == ROIS
    strongest = {tuple(sorted(maps[c].nsmallest(3).index)) for c in maps}  # atrophy: the most negative changes
    assert strongest == {("roi0", "roi1", "roi2"), ("roi3", "roi4", "roi5")}


def test_sample_paired_maps_synthetic_healthy_people(fitted):
    model, cn, *_ = fitted
    healthy, patient = model.sample_paired(50, r=[1.0, 0.0], random_state=1)
    assert healthy.shape == patient.shape == (50, 8)
    assert not healthy.isin(cn.to_numpy().ravel()).any().any()  # synthetic, not real rows
    change = (patient - healthy).mean()
    assert (change[model.pattern_maps()["r1"].nsmallest(3).index] < -10).all()
    unchanged, same = model.sample_paired(5, r=0.0, random_state=1)
    pd.testing.assert_frame_equal(unchanged, same, atol=1e-3)


def test_save_load_round_trip(fitted, tmp_path):
    model, _, pt, _ = fitted
    model.save(tmp_path / "m.roisynth")
    loaded = SurrealGAN.load(tmp_path / "m.roisynth")
    pd.testing.assert_frame_equal(loaded.transform(pt), model.transform(pt))
    pd.testing.assert_frame_equal(loaded.pattern_maps(), model.pattern_maps())


def test_select_k_recovers_the_planted_number():
    cn, pt, _ = planted(seed=1)
    result = select_k(small(n_folds=2, max_iter=20, inverse_iter=200), cn, pt, ks=[1, 2, 3])
    assert result.recommended == 2
    assert list(result.table.columns) == ["agreement", "criterion", "stable", "recommended"]


def test_select_k_recovers_three_planted_patterns():
    """Three patterns on 3 of 30 ROIs each: two patterns fit clearly worse, four are not reproducible."""
    rng = np.random.default_rng(1)
    patterns = np.zeros((3, 30))
    for k in range(3):
        patterns[k, 3 * k:3 * k + 3] = 1
    r = rng.uniform(size=(300, 3))
    columns = [f"roi{i}" for i in range(30)]
    cn = pd.DataFrame(rng.normal(100, 5, (300, 30)), columns=columns)
    pt = pd.DataFrame(rng.normal(100, 5, (300, 30)) - 25 * r @ patterns, columns=columns)
    result = select_k(small(n_folds=2, max_iter=20, inverse_iter=200), cn, pt, ks=[2, 3, 4])
    assert result.recommended == 3
    assert result.table.loc[2, "criterion"] > 2 * result.table.loc[3, "criterion"]


class _PlantedModel:
    """Stands in for a fitted GAN: synthetic patients = synthetic healthy people (ROIs independent, unlike the
    real controls) + three planted patterns, the last two with one common severity when ``merged``."""

    def __init__(self, loadings, patterns, merged):
        self.loadings, self.patterns, self.merged = loadings, patterns, merged

    def sample_paired(self, n, random_state=None):
        rng = np.random.default_rng(random_state)
        healthy = rng.normal(size=(n, len(self.loadings))) * np.sqrt((self.loadings**2).sum(1) + 1)
        r = rng.uniform(size=(n, 3))
        if self.merged:
            r[:, 2] = r[:, 1]
        columns = [f"roi{i}" for i in range(len(self.loadings))]
        return pd.DataFrame(healthy, columns=columns), pd.DataFrame(healthy + r @ self.patterns, columns=columns)


def test_criterion_sees_a_missing_pattern_that_the_all_roi_mmd_misses():
    """139 ROIs with correlated healthy variation that the synthetic healthy people miss: the MMD² over all ROIs is
    the same whether a model has three patterns or merges two; in the disease directions it is not."""
    from roisynth.metrics import mmd
    from roisynth.subtyping._select_k import _criterion, _disease_directions

    rng = np.random.default_rng(0)
    p, n = 139, 600
    loadings = rng.normal(0, 0.6, (p, 5))
    patterns = np.zeros((3, p))
    for k in range(3):
        patterns[k, 5 * k:5 * k + 5] = -4.0
    cn = rng.normal(size=(n, 5)) @ loadings.T + rng.normal(size=(n, p))
    pt = rng.normal(size=(n, 5)) @ loadings.T + rng.normal(size=(n, p)) + rng.uniform(size=(n, 3)) @ patterns
    project, eigenvalues = _disease_directions(cn, pt, 4)
    assert eigenvalues[2] > 2 * eigenvalues[3]  # three directions carry the disease
    target = pd.DataFrame(pt, columns=[f"roi{i}" for i in range(p)])
    three, merged = (_PlantedModel(loadings, patterns, m) for m in (False, True))
    assert _criterion(merged, target, project, 0)[1] > 2 * _criterion(three, target, project, 0)[1]
    mean, sd = cn.mean(0), cn.std(0, ddof=1)
    everywhere = [mmd((m.sample_paired(n, 0)[1].to_numpy() - mean) / sd, (pt - mean) / sd) for m in (three, merged)]
    assert abs(everywhere[0] - everywhere[1]) < 0.05 * everywhere[0]


def test_errors_name_the_argument(fitted):
    model, cn, pt, _ = fitted
    with pytest.raises(ValueError, match="target"):
        small().fit(cn)
    with pytest.raises(ValueError, match="n_patterns"):
        small(n_patterns=20).fit(cn, pt.iloc[:50])
    with pytest.raises(ValueError, match="r must"):
        model.sample_paired(3, r=[2.0, 0.0])
    with pytest.raises(TypeError, match="n_patterns or n_subtypes"):
        select_k(GaussianMixtureSynthesizer(), cn, pt)


def test_dimension_agreement_is_one_for_permuted_copies():
    r = np.random.default_rng(0).uniform(size=(40, 3))
    assert np.allclose(dimension_agreement(r, r[:, [1, 2, 0]]), 1.0)
