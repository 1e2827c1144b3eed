"""ConditionalVAE: recovery of a planted atrophy map, healthy twins, pairing, files, conventions."""

import numpy as np
import pandas as pd
import pytest
import torch

from roisynth import datasets
from roisynth.evaluation import standardizer
from roisynth.nn import rbf_mmd
from roisynth.nn.conditional import ConditionalVAEModule
from roisynth.synthesizers import ConditionalVAE

N_TRAIN = 500
PARAMS = {"epochs": 100, "verbose": False, "random_state": 0}


@pytest.fixture(scope="module")
def semi():
    """Semi-synthetic benchmark (simulated CN, Table 1 atrophy on half of them), 139 ROIs:
    (data, background train, target train, background test, target test)."""
    cn = datasets.simulate_cohort(n=1200, diagnosis={"CN": 1.0}, random_state=0)
    data = datasets.make_semisynthetic(cn[["age", "sex", "icv", *datasets.roi_names()]], random_state=0)
    bg, tg = data.background[data.rois], data.target[data.rois]
    return data, bg.iloc[:N_TRAIN], tg.iloc[:N_TRAIN], bg.iloc[N_TRAIN:], tg.iloc[N_TRAIN:]


@pytest.fixture(scope="module")
def model(semi):
    return ConditionalVAE(**PARAMS).fit(semi[1], semi[2])


# -- quality: the planted truth is recovered --------------------------------------------------


def test_paired_difference_recovers_the_atrophy_map(model, semi):
    data, train_b = semi[0], semi[1]
    z = standardizer(train_b)
    healthy, disease = model.sample_paired(5000, random_state=1)
    synthetic = (z(disease) - z(healthy)).mean()
    truth = (z(data.target[data.rois]) - z(data.target_healthy[data.rois])).mean()
    assert np.corrcoef(synthetic, truth)[0, 1] >= 0.9  # measured 0.976 (0.971-0.976 over seeds 0-2)


def test_healthy_twins_are_closer_to_the_truth_than_the_patients(model, semi):
    data, train_b, test_t = semi[0], semi[1], semi[4]
    z = standardizer(train_b)
    truth = z(data.target_healthy.loc[test_t.index, data.rois])
    twins = model.counterfactual(test_t, to="background")
    rmse = lambda table: np.sqrt(((z(table) - truth) ** 2).to_numpy().mean())  # noqa: E731
    assert rmse(twins) <= 0.85 * rmse(test_t)  # measured ratio 0.70 (0.70-0.74 over seeds 0-2)


def test_mmd_weight_aligns_the_cohorts_posterior_means(model, semi):
    aligned = ConditionalVAE(**PARAMS, mmd_weight=10.0).fit(semi[1], semi[2])

    def mmd(m):
        tables = ((semi[4], "target"), (semi[3], "background"))
        codes = [torch.tensor(m.transform(x, cohort=c).to_numpy()) for x, c in tables]
        return rbf_mmd(*codes).item()

    assert mmd(aligned) <= 0.5 * mmd(model)  # measured 0.065 vs 0.29


def test_module_loss_adds_the_weighted_mmd_of_posterior_means():
    torch.manual_seed(0)
    module = ConditionalVAEModule(n_features=4, n_latent=3, n_hidden=8, noise="diagonal")
    xb, xt = torch.randn(20, 4), torch.randn(15, 4) + 1.0
    with torch.random.fork_rng():
        plain = module.loss(xb, xt, 0.0)
    weighted = module.loss(xb, xt, 2.5)
    expected = 2.5 * rbf_mmd(module.posterior(xt, 1.0)[0], module.posterior(xb, 0.0)[0])
    torch.testing.assert_close(weighted - plain, expected)


# -- pairing ---------------------------------------------------------------------------------


def test_pairing_is_one_latent_decoded_under_both_labels(model, semi):
    healthy, disease = model.sample_paired(300, random_state=2)
    columns = list(semi[1].columns)
    assert healthy.shape == disease.shape == (300, len(columns)) and list(disease.columns) == columns
    pd.testing.assert_frame_equal(model.sample(300, cohort="target", random_state=2), disease)
    # the same seed gives the same people; the model's own int seed is used when none is given
    pd.testing.assert_frame_equal(model.sample_paired(300, random_state=2)[0], healthy)
    pd.testing.assert_frame_equal(model.sample(50), model.sample(50))
    assert not np.allclose(model.sample(50, random_state=3), model.sample(50, random_state=4))
    # unpaired healthy subjects come from healthy codes, not from patients' twins
    assert not np.allclose(model.sample(300, cohort="background", random_state=2), healthy)


def test_counterfactual_encodes_under_the_own_label_and_decodes_under_the_other(model, semi):
    test_b, test_t = semi[3].iloc[:30], semi[4].iloc[:30]
    decoder = model.module_.decoder
    offset = {0.0: model.calibration_offsets_[1], 1.0: model.calibration_offsets_[2]}  # b_H healthy, b_T patient
    for rows, own, to, label in ((test_t, "target", "background", 0.0), (test_b, "background", "target", 1.0)):
        z = torch.tensor(model.transform(rows, cohort=own).to_numpy(), dtype=torch.float32)
        with torch.no_grad():
            new = decoder(z, torch.full((len(rows), 1), label)).double().numpy() + offset[label]
            old = decoder(z, torch.full((len(rows), 1), 1.0 - label)).double().numpy() + offset[1.0 - label]
        decoded = model.counterfactual(rows, to=to, mode="decode")
        np.testing.assert_allclose(decoded.to_numpy(), new * model.scale_ + model.mean_, rtol=1e-10)
        residual = model.counterfactual(rows, to=to)
        np.testing.assert_allclose(residual.to_numpy(), rows.to_numpy() + (new - old) * model.scale_, rtol=1e-10)
        assert residual.index.equals(rows.index)


def test_salient_codes_are_rejected(model, semi):
    with pytest.raises(ValueError, match="no salient code"):
        model.counterfactual(semi[3].iloc[:5], to="target", salient=np.zeros(5))


def test_calibrated_cohort_means_equal_the_training_means(model, semi):
    """calibration="moments": synthetic cohort means and both sides of pairs have the training
    means (to Monte-Carlo error), in background-SD units."""
    z = standardizer(semi[1])
    real_b, real_t = z(semi[1]).mean().to_numpy(), z(semi[2]).mean().to_numpy()
    samples = [model.sample(60_000, cohort=c, random_state=1) for c in ("background", "target")]
    for table, real in (*zip(samples, (real_b, real_t)), *zip(model.sample_paired(60_000, random_state=2),
                                                                (real_b, real_t))):
        assert np.abs(z(table).mean().to_numpy() - real).max() < 0.04


# -- transform, files, conventions ---------------------------------------------------------


def test_transform_reads_the_cohort_label(model, semi):
    rows = semi[4].iloc[:20]
    as_patients = model.transform(rows)
    assert list(as_patients.columns) == [f"z{i}" for i in range(1, 11)] and as_patients.index.equals(rows.index)
    pd.testing.assert_frame_equal(model.transform(rows, cohort="target"), as_patients)
    assert not np.allclose(model.transform(rows, cohort="background"), as_patients)
    with pytest.raises(ValueError, match="cohort='patients'"):
        model.transform(rows, cohort="patients")


def test_prior_sampling(toy):
    model = ConditionalVAE(latent_sampling="prior", epochs=3, verbose=False, random_state=0).fit(*toy)
    assert model.target_latents_ is None and model.sample_paired(20)[1].shape == (20, 6)


def test_fit_needs_both_cohorts(toy):
    with pytest.raises(ValueError, match="needs both cohorts"):
        ConditionalVAE().fit(toy[0], None)


@pytest.mark.parametrize(
    "params, message",
    [({"n_latent": 0}, "n_latent"), ({"mmd_weight": -1.0}, "mmd_weight"), ({"noise": "low"}, "noise"),
     ({"latent_sampling": "posterior"}, "latent_sampling")],
)
def test_bad_hyperparameters(toy, params, message):
    with pytest.raises(ValueError, match=message):
        ConditionalVAE(epochs=1, verbose=False, **params).fit(*toy)
