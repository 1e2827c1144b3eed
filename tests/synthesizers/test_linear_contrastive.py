"""LinearContrastive: recovery of a planted model, EM, pairing, counterfactuals, API contract."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.linalg import subspace_angles
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

import roisynth
from roisynth.synthesizers import LinearContrastive

P, K, M = 20, 3, 1


@pytest.fixture(scope="module")
def planted():
    """Raw-unit cohorts from x_b = μ + D(Sz + ε), x_t = μ + D(Sz + ε + δ + wt), D = diag(scale)."""
    rng = np.random.default_rng(0)
    truth = {
        "S": rng.normal(0, 1, (P, K)),
        "w": rng.normal(0, 1, (P, M)),
        "psi": rng.uniform(0.2, 0.6, P),
        "delta": rng.normal(0, 0.5, P),
        "scale": rng.uniform(5, 50, P),
        "mu": rng.uniform(500, 2000, P),
    }

    def healthy(n):
        return rng.standard_normal((n, K)) @ truth["S"].T + rng.standard_normal((n, P)) * np.sqrt(truth["psi"])

    def raw(x):
        return pd.DataFrame(truth["mu"] + truth["scale"] * x, columns=[f"roi{j}" for j in range(P)])

    n = 2000
    background = raw(healthy(n))
    pre = healthy(n)
    t = rng.standard_normal((n, M))
    target = raw(pre + truth["delta"] + t @ truth["w"].T)
    model = LinearContrastive(n_common=K, n_salient=M, random_state=0).fit(background, target)
    return {**truth, "background": background, "target": target, "pre": raw(pre), "t": t, "model": model}


def test_planted_loadings_noise_and_shift_are_recovered(planted):
    model, scale = planted["model"], planted["scale"]
    # fitted loadings live in background-SD units: compare with diag(scale / scale_) · truth
    to_fitted = (scale / model.scale_)[:, None]
    w = (to_fitted * planted["w"])[:, 0]
    fitted_w = model.salient_loadings_["s1"].to_numpy()
    assert abs(fitted_w @ w) / np.linalg.norm(fitted_w) / np.linalg.norm(w) >= 0.95
    angles = np.degrees(subspace_angles(model.common_loadings_.to_numpy(), to_fitted * planted["S"]))
    assert angles.max() < 5
    S, psi = model.common_loadings_.to_numpy(), model.noise_variance_.to_numpy()
    fitted_cov = (S @ S.T + np.diag(psi)) * np.outer(model.scale_, model.scale_)
    true_cov = (planted["S"] @ planted["S"].T + np.diag(planted["psi"])) * np.outer(scale, scale)
    assert np.linalg.norm(fitted_cov - true_cov) / np.linalg.norm(true_cov) < 0.06
    np.testing.assert_allclose(psi, planted["psi"] / (model.scale_ / scale) ** 2, rtol=0.15)
    # of a difference of means
    standard_error = np.sqrt((2 * np.diag(true_cov) + (scale * planted["w"][:, 0]) ** 2) / 2000)
    assert (np.abs(model.target_shift_.to_numpy() - scale * planted["delta"]) < 4 * standard_error).all()
    assert list(model.target_shift_.index) == list(planted["background"].columns)


def test_loadings_are_canonical_and_do_not_depend_on_row_order(planted):
    model = planted["model"]
    for loadings in (model.common_loadings_.to_numpy(), model.salient_loadings_.to_numpy()):
        gram = loadings.T @ loadings
        np.testing.assert_allclose(gram, np.diag(np.diag(gram)), atol=1e-10)  # orthogonal columns
        assert (np.diff(np.diag(gram)) <= 0).all()  # ordered by variance explained
        assert (loadings[np.abs(loadings).argmax(0), np.arange(loadings.shape[1])] > 0).all()
    order = np.random.default_rng(1).permutation(2000)
    shuffled = clone(model).fit(planted["background"].iloc[order], planted["target"].iloc[order[::-1]])
    pd.testing.assert_frame_equal(shuffled.transform(planted["target"]), model.transform(planted["target"]), atol=1e-6)


@pytest.mark.parametrize("noise", ["diagonal", "isotropic"])
def test_log_likelihood_never_decreases_and_matches_score_samples(planted, noise):
    model = LinearContrastive(n_common=K, n_salient=2, noise=noise, tol=1e-9)
    model = model.fit(planted["background"], planted["target"])
    ll = np.asarray(model.log_likelihood_)
    assert model.converged_ and len(ll) == model.n_iter_ + 1 > 2
    assert (np.diff(ll) >= -1e-9 * np.abs(ll[:-1])).all()
    total = (
        model.score_samples(planted["background"], cohort="background").sum()
        + model.score_samples(planted["target"]).sum()
    )
    np.testing.assert_allclose(total, ll[-1], rtol=1e-10)
    if noise == "isotropic":
        assert np.ptp(model.noise_variance_.to_numpy()) == 0


def test_score_samples_is_the_gaussian_log_density_in_raw_units(planted):
    model = planted["model"]
    S, W = model.common_loadings_.to_numpy(), model.salient_loadings_.to_numpy()
    D = np.diag(model.scale_)
    cov = D @ (S @ S.T + W @ W.T + np.diag(model.noise_variance_.to_numpy())) @ D
    x = planted["target"].iloc[:5].to_numpy()
    diff = x - model.mean_ - model.target_shift_.to_numpy()
    quadratic = np.einsum("ij,ij->i", diff @ np.linalg.inv(cov), diff)
    expected = -0.5 * (P * np.log(2 * np.pi) + np.linalg.slogdet(cov)[1] + quadratic)
    np.testing.assert_allclose(model.score_samples(planted["target"].iloc[:5]).to_numpy(), expected, rtol=1e-10)


def test_max_iter_reached_warns(planted):
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        model = LinearContrastive(n_common=K, n_salient=M, max_iter=1).fit(planted["background"], planted["target"])
    assert not model.converged_ and model.n_iter_ == 1


def test_paired_samples_differ_by_the_disease_effect(planted):
    model = planted["model"]
    healthy, diseased = model.sample_paired(20_000, random_state=3)
    assert list(healthy.columns) == list(diseased.columns) == list(planted["background"].columns)
    diff = (diseased - healthy).to_numpy()
    W = model.salient_loadings_.to_numpy() * model.scale_[:, None]
    standard_error = np.sqrt(np.diag(W @ W.T) / len(diff))
    assert (np.abs(diff.mean(0) - model.target_shift_.to_numpy()) < 4 * standard_error).all()
    np.testing.assert_allclose(np.cov(diff.T), W @ W.T, atol=0.03 * np.abs(W @ W.T).max())
    # the unpaired samples with the same seed are the two halves of the same people
    pd.testing.assert_frame_equal(model.sample(20_000, "target", random_state=3), diseased)
    pd.testing.assert_frame_equal(model.sample(20_000, "background", random_state=3), healthy)
    # healthy twins are draws of the background model: covariance SSᵀ + Ψ (raw units)
    S = model.common_loadings_.to_numpy() * model.scale_[:, None]
    background_cov = S @ S.T + np.diag(model.noise_variance_.to_numpy() * model.scale_**2)
    assert np.linalg.norm(np.cov(healthy.to_numpy().T) - background_cov) / np.linalg.norm(background_cov) < 0.05


def test_counterfactual_to_background_recovers_the_pre_disease_rows(planted):
    model, pre, target = planted["model"], planted["pre"], planted["target"]
    twins = model.counterfactual(target, to="background")
    assert twins.index.equals(target.index) and list(twins.columns) == list(target.columns)

    def rmse(table):
        return np.sqrt(np.mean(((table.to_numpy() - pre.to_numpy()) / planted["scale"]) ** 2))

    assert rmse(twins) < 0.5 * rmse(target)
    # decode: the mean reconstruction μ_b + S ẑ lies in the common subspace (raw units)
    decoded = model.counterfactual(target, to="background", mode="decode").to_numpy()
    basis = np.linalg.qr(model.common_loadings_.to_numpy())[0]
    centred = (decoded - model.mean_) / model.scale_
    np.testing.assert_allclose(centred - centred @ basis @ basis.T, 0, atol=1e-10)


def test_counterfactual_to_target_adds_the_displacement_and_inverts_the_healthy_twin(planted):
    model, target = planted["model"], planted["target"].iloc[:50]
    W = model.salient_loadings_.to_numpy() * model.scale_[:, None]
    twin = model.counterfactual(target, to="target", salient=[1.5])
    expected = np.broadcast_to(model.target_shift_ + 1.5 * W[:, 0], target.shape)
    np.testing.assert_allclose(twin - target, expected, atol=1e-9)
    # healthy twin, then back with the patient's own salient code: the patient again
    own = model.transform(target)[["s1"]].to_numpy()
    back = model.counterfactual(model.counterfactual(target, to="background"), to="target", salient=own)
    np.testing.assert_allclose(back.to_numpy(), target.to_numpy(), rtol=1e-12)
    drawn = [model.counterfactual(target, to="target", random_state=5) for _ in range(2)]
    pd.testing.assert_frame_equal(*drawn)
    assert not np.allclose(drawn[0], model.counterfactual(target, to="target", random_state=6))


def test_transform_recovers_the_salient_code_and_severity_separates_cohorts(planted):
    model = planted["model"]
    latents = model.transform(planted["target"])
    assert list(latents.columns) == [f"z{i + 1}" for i in range(K)] + ["s1"]
    assert abs(np.corrcoef(latents["s1"], planted["t"][:, 0])[0, 1]) > 0.8
    severity_t, severity_b = model.severity(planted["target"]), model.severity(planted["background"])
    assert severity_t.name == "severity" and severity_t.index.equals(planted["target"].index)
    assert severity_t.mean() > 1.5 * severity_b.mean()
    # severity is the distance to the healthy twin, in background-SD units
    gap = (planted["target"] - model.counterfactual(planted["target"], to="background")) / model.scale_
    np.testing.assert_allclose(severity_t.to_numpy(), gap.abs().mean(axis=1).to_numpy(), rtol=1e-10)


def test_save_load_round_trip_is_exact(planted, tmp_path):
    model, target = planted["model"], planted["target"].iloc[:40]
    path = tmp_path / "linear.roisynth"
    model.save(path)
    for loaded in (LinearContrastive.load(path), roisynth.load(path)):
        assert type(loaded) is LinearContrastive and loaded.get_params() == model.get_params()
        for name in ("common_loadings_", "salient_loadings_"):
            pd.testing.assert_frame_equal(getattr(loaded, name), getattr(model, name), check_exact=True)
        for name in ("noise_variance_", "target_shift_"):
            pd.testing.assert_series_equal(getattr(loaded, name), getattr(model, name), check_exact=True)
        assert loaded.log_likelihood_ == model.log_likelihood_ and loaded.n_iter_ == model.n_iter_
        assert loaded.converged_ == model.converged_
        pd.testing.assert_frame_equal(loaded.transform(target), model.transform(target), check_exact=True)
        pd.testing.assert_frame_equal(loaded.counterfactual(target), model.counterfactual(target), check_exact=True)
        pd.testing.assert_frame_equal(loaded.sample_paired(25)[1], model.sample_paired(25)[1], check_exact=True)
        pd.testing.assert_series_equal(loaded.score_samples(target), model.score_samples(target), check_exact=True)


def test_numpy_arrays_in_dataframes_out(planted):
    bg, tg = planted["background"].to_numpy(), planted["target"].to_numpy()
    model = LinearContrastive(n_common=K, n_salient=M).fit(bg, tg)
    assert list(model.sample(5).columns) == [f"x{j}" for j in range(P)]
    assert list(model.salient_loadings_.index) == [f"x{j}" for j in range(P)]
    assert model.counterfactual(tg[:5]).shape == (5, P)


def test_bad_input_is_named(planted):
    bg, tg = planted["background"], planted["target"]
    with pytest.raises(ValueError, match="both cohorts"):
        LinearContrastive(n_common=K, n_salient=M).fit(bg)
    for params, message in [
        ({"n_salient": 0}, "n_salient"),
        ({"n_common": 2.5}, "n_common"),
        ({"noise": "full"}, "noise"),
        ({"tol": -1.0}, "tol"),
        ({"max_iter": 0}, "max_iter"),
        ({"n_common": 15, "n_salient": 5}, "smaller than the number of ROIs"),
    ]:
        with pytest.raises(ValueError, match=message):
            LinearContrastive(**{"n_common": K, "n_salient": M, **params}).fit(bg, tg)
    model = planted["model"]
    with pytest.raises(ValueError, match="salient must be finite with shape"):
        model.counterfactual(tg.iloc[:5], to="target", salient=np.zeros((4, M)))
    with pytest.raises(ValueError, match="salient must be finite with shape"):
        model.counterfactual(tg.iloc[:5], to="target", salient=[np.nan])
    with pytest.raises(ValueError, match="to="):
        model.counterfactual(tg.iloc[:5], to="healthy")
    with pytest.raises(ValueError, match="cohort="):
        model.score_samples(tg, cohort="patients")
    with pytest.raises(ValueError, match="missing"):
        model.transform(tg.drop(columns="roi3"))


def test_fit_without_warnings_on_the_bundled_cohort(cohorts):
    cn, pt = cohorts
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = LinearContrastive(random_state=0).fit(cn.iloc[:1000], pt.iloc[:1000])
    assert model.converged_
    healthy, diseased = model.sample_paired(200)
    assert healthy.shape == diseased.shape == (200, cn.shape[1]) and np.isfinite(diseased.to_numpy()).all()
