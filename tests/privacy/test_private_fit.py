"""Private fits of the neural synthesizers: budget met, refused before training when it cannot be,
per-subject loss, DP-SGD step, public standardization, files and seeds."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

import roisynth
from roisynth import ConditionalVAE, ContrastiveVAE, datasets
from roisynth.cli import main
from roisynth.nn import seeded, train_private
from roisynth.nn.contrastive import ContrastiveVAEModule
from roisynth.privacy import DifferentialPrivacy, epsilon, public_bounds
from roisynth.privacy._mechanisms import private_mean
from roisynth.release import _guarantee, describe_model

ROIS = datasets.roi_names()[:6]
QUICK = {"n_hidden": 16, "epochs": 2, "batch_size": 64, "verbose": False}


@pytest.fixture(scope="module")
def cohorts():
    table = datasets.load_example()
    return (table.loc[table.diagnosis == "CN", ROIS].iloc[:300].reset_index(drop=True),
            table.loc[table.diagnosis == "AD", ROIS].iloc[:200].reset_index(drop=True))


@pytest.fixture(scope="module")
def fitted(cohorts):
    return ContrastiveVAE(random_state=0, privacy=DifferentialPrivacy(epsilon=2.0), **QUICK).fit(*cohorts)


def test_spent_budget_is_the_accountants_and_within_the_target(fitted):
    n = 500
    q, steps = 2 * 64 / n, int(np.ceil(2 / (2 * 64 / n)))
    eps, delta = fitted.privacy_spent_
    assert delta == 1 / n**2
    means_sigma = fitted.means_noise_multiplier_  # alone: the Gaussian mechanism at (0.5 ε, δ)
    assert epsilon(1.0, means_sigma, 1, delta) <= 0.5 * 2.0 < epsilon(1.0, 0.99 * means_sigma, 1, delta)
    assert eps == epsilon(q, fitted.noise_multiplier_, steps, delta, (means_sigma,))
    assert 0.99 * 2.0 <= eps <= 2.0  # σ calibrated to the budget, not above it


def test_without_calibration_the_whole_budget_goes_to_the_gradients(cohorts):
    model = ContrastiveVAE(calibration="none", privacy=DifferentialPrivacy(epsilon=2.0), **QUICK).fit(*cohorts)
    assert model.calibration_offsets_ is None and model.means_noise_multiplier_ is None
    n, q = 500, 2 * 64 / 500
    assert model.privacy_spent_[0] == epsilon(q, model.noise_multiplier_, int(np.ceil(2 / q)), 1 / n**2) <= 2.0


def test_private_fit_learns_nothing_outside_the_budget(fitted, cohorts):
    center, scale = DifferentialPrivacy(epsilon=1.0).standardization(ROIS)
    np.testing.assert_array_equal(fitted.mean_, center)
    np.testing.assert_array_equal(fitted.scale_, scale)
    low, high = public_bounds(ROIS)[ROIS[0]]
    assert center[0] == (low + high) / 2
    assert fitted.background_latents_ is None and fitted.target_latents_ is None
    assert fitted.history_.loss == [] and fitted.history_.val_score == [] and fitted.n_epochs_ == 2


@pytest.mark.parametrize("cls", [ContrastiveVAE, ConditionalVAE])
def test_seeded_private_fits_are_bit_identical(cls, cohorts):
    def fit(seed):
        return cls(random_state=seed, privacy=DifferentialPrivacy(epsilon=2.0), **QUICK).fit(*cohorts)

    first, second = fit(0), fit(0)
    for key, value in first.module_.state_dict().items():
        assert torch.equal(value, second.module_.state_dict()[key]), key
    np.testing.assert_array_equal(first.calibration_offsets_, second.calibration_offsets_)
    for a, b in zip(first.sample_paired(50), second.sample_paired(50)):
        pd.testing.assert_frame_equal(a, b)
    if cls is ContrastiveVAE:
        assert not torch.equal(first.module_.decoder.net[0].weight, fit(1).module_.decoder.net[0].weight)


def test_file_keeps_the_spent_budget(fitted, cohorts, tmp_path):
    path = tmp_path / "private.roisynth"
    fitted.save(path)
    for loaded in (ContrastiveVAE.load(path), roisynth.load(path)):
        assert loaded.privacy == fitted.privacy
        assert loaded.privacy_spent_ == fitted.privacy_spent_
        assert loaded.noise_multiplier_ == fitted.noise_multiplier_
        assert loaded.means_noise_multiplier_ == fitted.means_noise_multiplier_
        np.testing.assert_array_equal(loaded.calibration_offsets_, fitted.calibration_offsets_)
        pd.testing.assert_frame_equal(loaded.sample(30, random_state=3), fitted.sample(30, random_state=3))
        pd.testing.assert_frame_equal(loaded.counterfactual(cohorts[1].iloc[:5]),
                                      fitted.counterfactual(cohorts[1].iloc[:5]))


def test_public_bounds_round_trip_through_the_file(cohorts, tmp_path):
    bounds = {c: (0.5 * cohorts[0][c].min(), 2.0 * cohorts[0][c].max()) for c in ROIS}
    model = ConditionalVAE(random_state=0, privacy=DifferentialPrivacy(epsilon=5.0, delta=1e-4, bounds=bounds),
                           **QUICK).fit(*cohorts)
    model.save(tmp_path / "m.roisynth")
    loaded = ConditionalVAE.load(tmp_path / "m.roisynth")
    assert loaded.privacy.to_dict() == model.privacy.to_dict() and loaded.privacy_spent_[1] == 1e-4
    np.testing.assert_array_equal(loaded.mean_, [(lo + hi) / 2 for lo, hi in bounds.values()])


@pytest.mark.parametrize(("privacy", "message"), [
    (DifferentialPrivacy(epsilon=0.1, means_share=0), r"epsilon=0\.1 cannot be met: 39063 steps"),
    (DifferentialPrivacy(epsilon=0.1, means_share=0.1), r"means epsilon=0\.01, too little"),
])
def test_a_budget_that_cannot_be_met_is_refused_before_training(cohorts, privacy, message):
    model = ContrastiveVAE(privacy=privacy, **{**QUICK, "epochs": 10_000})
    with pytest.raises(ValueError, match=message):
        model.fit(*cohorts)
    assert not hasattr(model, "module_")


@pytest.mark.parametrize(("model", "fit_kwargs", "message"), [
    (ContrastiveVAE(privacy=DifferentialPrivacy(epsilon=1.0, delta=0.01)), {}, r"delta=0\.01 is not below 1/n"),
    (ContrastiveVAE(privacy=DifferentialPrivacy(epsilon=1.0), regularizer="tc"), {}, "regularizer='tc'"),
    (ConditionalVAE(privacy=DifferentialPrivacy(epsilon=1.0)), {"validation": "given"}, "validation data"),
    (ContrastiveVAE(privacy=DifferentialPrivacy(epsilon=1.0, bounds={ROIS[0]: (1.0, 2.0)})), {}, "no range"),
])
def test_settings_a_private_fit_cannot_honour_are_named(model, fit_kwargs, message, cohorts):
    if fit_kwargs:
        fit_kwargs = {"validation": cohorts}
    with pytest.raises(ValueError, match=message):
        model.set_params(**QUICK).fit(*cohorts, **fit_kwargs)
    assert not hasattr(model, "module_")


def test_columns_without_public_norms_need_bounds(cohorts):
    renamed = [frame.rename(columns={ROIS[0]: "my_roi"}) for frame in cohorts]
    with pytest.raises(ValueError, match=r"no public norms ship for column\(s\) \['my_roi'\]"):
        ContrastiveVAE(privacy=DifferentialPrivacy(epsilon=1.0), **QUICK).fit(*renamed)


@pytest.mark.parametrize("bad", [{"epsilon": -1}, {"epsilon": 1, "delta": 2.0}, {"epsilon": 1, "max_grad_norm": 0},
                                 {"epsilon": 1, "bounds": {"a": (2.0, 1.0)}}])
def test_bad_budgets_are_named(bad):
    with pytest.raises(ValueError, match=next(k for k in ("delta", "max_grad_norm", "bounds", "epsilon") if k in bad)):
        DifferentialPrivacy(**bad)


def test_per_subject_loss_depends_on_its_own_row_only():
    with seeded(0):
        module = ContrastiveVAEModule(n_features=4, n_common=2, n_salient=2, n_hidden=8)
        x, eps, prior = torch.randn(6, 4), torch.randn(6, 8, 4), torch.randn(64, 2)
        label = torch.tensor([0.0, 0, 0, 1, 1, 1])
        together = module.private_loss(x, label, eps, prior, 10.0, 10.0)
        alone = torch.cat([module.private_loss(x[i:i + 1], label[i:i + 1], eps[i:i + 1], prior, 10.0, 10.0)
                           for i in range(6)])
        changed = module.private_loss(torch.cat([x[:1], 5 * x[1:]]), label, eps, prior, 10.0, 10.0)
    torch.testing.assert_close(together, alone)
    assert together[0] == changed[0] and not torch.equal(together[1:], changed[1:])


def _one_step(model, rows, clip, sigma):
    with seeded(0):
        train_private(model, lambda x, eps: model(x).pow(2).sum(1), (rows,), steps=1, sampling_rate=1.0,
                      noise_multiplier=sigma, max_grad_norm=clip, noise_shape=(1,), lr=0.1, verbose=False)
    return model.weight.detach().clone()


def test_dp_sgd_step_is_adam_on_the_mean_of_clipped_per_row_gradients():
    rows = torch.tensor([[1.0, 0.0], [0.0, 3.0], [2.0, 2.0]])
    with seeded(5):
        start = torch.nn.Linear(2, 1, bias=False)

    def expected(clip):
        model = torch.nn.Linear(2, 1, bias=False)
        model.load_state_dict(start.state_dict())
        w = start.weight.detach()
        grads = torch.stack([2 * (r @ w[0]) * r for r in rows])  # d/dw (w·r)² per row
        factor = (clip / (grads.norm(dim=1) + 1e-6)).clamp(max=1.0)
        model.weight.grad = (factor[:, None] * grads).sum(0, keepdim=True) / len(rows)
        torch.optim.Adam(model.parameters(), lr=0.1, betas=(0.5, 0.999)).step()
        return model.weight.detach()

    for clip in (1e6, 0.5):  # unclipped, then every row clipped
        model = torch.nn.Linear(2, 1, bias=False)
        model.load_state_dict(start.state_dict())
        torch.testing.assert_close(_one_step(model, rows, clip, 0.0), expected(clip))
    noisy = torch.nn.Linear(2, 1, bias=False)
    noisy.load_state_dict(start.state_dict())
    assert not torch.equal(_one_step(noisy, rows, 0.5, 1.0), expected(0.5))


def test_one_subject_moves_the_released_mean_by_at_most_the_clipping_bound():
    with seeded(0):
        rows = torch.randn(50, 9)
    bound = 1.5 * 3.0  # 1.5 √p
    for outlier in (torch.full((1, 9), 1e6), torch.full((1, 9), 0.1)):
        with seeded(1):
            without = private_mean(rows, 1e-12) * 50
        with seeded(1):
            with_outlier = private_mean(torch.cat([rows, outlier]), 1e-12) * 51
        assert (with_outlier - without).norm() <= bound + 1e-9
    with seeded(2):
        noisy = torch.stack([private_mean(rows, 2.0) for _ in range(2000)])
    np.testing.assert_allclose(noisy.std(0).numpy(), 2.0 * bound / 50, rtol=0.1)


def test_release_description_records_the_spent_budget(fitted):
    described = describe_model(fitted)
    assert described["differential_privacy"]["epsilon"] == fitted.privacy_spent_[0]
    assert described["differential_privacy"]["delta"] == fitted.privacy_spent_[1]
    assert described["params"]["privacy"] == fitted.privacy.to_dict()
    json.dumps(described, allow_nan=False)
    assert _guarantee(fitted) == (f" — an (ε = {fitted.privacy_spent_[0]:.3g}, δ = 4e-06)-differentially private model")


def test_command_line_fits_privately(tmp_path, capsys):
    table = datasets.load_example().iloc[:600]
    table.to_parquet(tmp_path / "cohort.parquet")
    model = tmp_path / "m.roisynth"
    assert main(["fit", str(tmp_path / "cohort.parquet"), "-o", str(model), "--rois", ",".join(ROIS), "--epochs", "2",
                 "--epsilon", "3", "--quiet"]) == 0
    assert "(epsilon=3, delta=" in capsys.readouterr().out
    loaded = roisynth.load(model)
    assert loaded.privacy.epsilon == 3.0 and 2.97 <= loaded.privacy_spent_[0] <= 3.0
    assert main(["fit", str(tmp_path / "cohort.parquet"), "-o", str(model), "--delta", "1e-6"]) == 2
    assert "--delta needs --epsilon" in capsys.readouterr().err


def test_an_ordinary_refit_forgets_the_private_fit(cohorts, tmp_path):
    model = ConditionalVAE(random_state=0, privacy=DifferentialPrivacy(epsilon=2.0), **QUICK).fit(*cohorts)
    model.set_params(privacy=None, validation_fraction=0.0).fit(*cohorts)
    assert model.privacy_spent_ is None and model.noise_multiplier_ is None and model.means_noise_multiplier_ is None
    model.save(tmp_path / "m.roisynth")
    assert ConditionalVAE.load(tmp_path / "m.roisynth").privacy_spent_ is None


def test_composed_releases_are_accounted_and_round_trip():
    """Gaussian mechanisms already run on the same subjects (a pipeline's private preprocessing) make
    DP-SGD noisier so the whole chain stays within ε, and survive to_dict / DifferentialPrivacy(**d)."""
    from roisynth.privacy import DifferentialPrivacy, epsilon

    rng = np.random.default_rng(0)
    xb, xt = rng.normal(size=(60, 4)) + 10, rng.normal(size=(60, 4)) + 9
    bounds = {f"r{j}": (6.0, 14.0) for j in range(4)}
    fits = []
    for composed in ((), (3.0, 4.0)):
        budget = DifferentialPrivacy(epsilon=3.0, bounds=bounds, composed_with=composed, means_share=0)
        model = ContrastiveVAE(privacy=budget, epochs=2, batch_size=16, n_hidden=8, random_state=0, verbose=False)
        fits.append(model.fit(pd.DataFrame(xb, columns=list(bounds)), pd.DataFrame(xt, columns=list(bounds))))
    alone, composed = fits
    assert composed.noise_multiplier_ > alone.noise_multiplier_
    n, q = 120, min(1.0, 32 / 120)
    steps = int(np.ceil(2 / q))
    spent = epsilon(q, composed.noise_multiplier_, steps, 1 / n**2, (3.0, 4.0))
    assert composed.privacy_spent_[0] == pytest.approx(spent) and spent <= 3.0
    assert epsilon(q, composed.noise_multiplier_, steps, 1 / n**2) < spent
    again = DifferentialPrivacy(**composed.privacy.to_dict())
    assert again.composed_with == (3.0, 4.0) and again.epsilon == composed.privacy.epsilon
    with pytest.raises(ValueError, match="composed_with"):
        DifferentialPrivacy(epsilon=1.0, composed_with=(0.0,))
