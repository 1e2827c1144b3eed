"""ContrastiveVAE: API contract, scikit-learn conventions, reproducibility, files, bad input."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from roisynth import ContrastiveVAE


def test_sample_paired_shapes_columns_and_pairing(small_model, cohorts):
    healthy, disease = small_model.sample_paired(257, random_state=1)
    for table in (healthy, disease):
        assert table.shape == (257, cohorts[0].shape[1])
        assert list(table.columns) == list(cohorts[0].columns)
        assert np.isfinite(table.to_numpy()).all()
    # the unpaired patient sample with the same seed is the same synthetic people
    pd.testing.assert_frame_equal(small_model.sample(257, cohort="target", random_state=1), disease)
    # an unpaired healthy sample decodes healthy subjects' codes, not patients' healthy twins
    background = small_model.sample(257, cohort="background", random_state=1)
    assert not np.allclose(background.to_numpy(), healthy.to_numpy())


def test_prior_sampling_mode(cohorts):
    cn, pt = cohorts[0].iloc[:100], cohorts[1].iloc[:100]
    model = ContrastiveVAE(epochs=3, verbose=False, random_state=0, latent_sampling="prior").fit(cn, pt)
    assert model.target_latents_ is None and model.sample_paired(20)[0].shape == (20, cn.shape[1])


def test_sampling_is_chunked_without_changing_the_draws(small_model, monkeypatch):
    import roisynth.synthesizers._neural as module

    reference = small_model.sample(1000, random_state=3)
    monkeypatch.setattr(module, "_CHUNK", 1000)
    pd.testing.assert_frame_equal(small_model.sample(1000, random_state=3), reference)


def test_fit_leaves_the_callers_torch_state_alone(cohorts):
    threads, rng_state = torch.get_num_threads(), torch.random.get_rng_state()
    ContrastiveVAE(epochs=2, verbose=False, random_state=0, n_threads=1).fit(cohorts[0].iloc[:50], cohorts[1].iloc[:50])
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.random.get_rng_state(), rng_state)


def test_foreign_and_damaged_files_are_rejected(small_model, tmp_path):
    text = tmp_path / "notes.roisynth"
    text.write_text("hello")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    good = tmp_path / "good.roisynth"
    small_model.save(good)
    truncated = tmp_path / "truncated.roisynth"
    truncated.write_bytes(good.read_bytes()[:2000])
    for path in (text, foreign, truncated):
        with pytest.raises(ValueError, match="roisynth model file"):
            ContrastiveVAE.load(path)
    with pytest.raises(FileNotFoundError):
        ContrastiveVAE.load(tmp_path / "missing.roisynth")


class _Exploit:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_loading_never_executes_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.roisynth"
    path.write_bytes(pickle.dumps({"format": "roisynth-model/1", "payload": _Exploit()}))
    with pytest.raises(ValueError):
        ContrastiveVAE.load(path)
    assert not (tmp_path / "PWNED").exists()


def test_feature_names_and_array_input(toy):
    bg, tg = toy
    fitted = ContrastiveVAE(epochs=2, verbose=False, random_state=0).fit(bg, tg)
    assert list(fitted.feature_names_in_) == list(bg.columns) and fitted.n_features_in_ == 6
    # arrays in: columns named x0.., and array input to a fitted model works positionally
    array_model = ContrastiveVAE(epochs=2, verbose=False, random_state=0).fit(bg.to_numpy(), tg.to_numpy())
    assert list(array_model.sample(3).columns) == [f"x{i}" for i in range(6)]
    assert array_model.transform(tg.to_numpy()).shape == (60, 10)


def test_transform_columns_and_index(small_model, cohorts):
    pt = cohorts[1].iloc[:25]
    latents = small_model.transform(pt)
    assert list(latents.columns) == [f"z{i}" for i in range(1, 6)] + [f"s{i}" for i in range(1, 6)]
    assert latents.index.equals(pt.index)


def test_counterfactual_modes_and_identities(small_model, cohorts):
    pt = cohorts[1].iloc[:40]
    twins = small_model.counterfactual(pt, to="background")
    decoded = small_model.counterfactual(pt, to="background", mode="decode")
    assert twins.index.equals(pt.index) and list(twins.columns) == list(pt.columns)
    # residual mode = the person plus the model's disease-removal shift; decode mode = reconstruction
    shift = (twins - pt).to_numpy()
    assert np.abs(shift).max() > 0
    assert not np.allclose(decoded.to_numpy(), twins.to_numpy())
    # a diseased twin with zero salient expression is the person themself
    same = small_model.counterfactual(pt, to="target", salient=np.zeros(5))
    np.testing.assert_allclose(same.to_numpy(), pt.to_numpy(), rtol=1e-12)
    # seeded prior draws are reproducible
    a = small_model.counterfactual(pt, to="target", random_state=4)
    pd.testing.assert_frame_equal(a, small_model.counterfactual(pt, to="target", random_state=4))


def test_severity_is_a_named_nonnegative_series(small_model, cohorts):
    severity = small_model.severity(cohorts[1].iloc[:30])
    assert isinstance(severity, pd.Series) and severity.name == "severity"
    assert (severity >= 0).all() and severity.index.equals(cohorts[1].iloc[:30].index)


def test_columns_are_matched_by_name_not_position(small_model, cohorts):
    pt = cohorts[1].iloc[:10]
    shuffled = pt[pt.columns[::-1]]
    pd.testing.assert_frame_equal(small_model.transform(shuffled), small_model.transform(pt))


# -- bad input -------------------------------------------------------------------------------


def _fit(bg, tg, **kw):
    return ContrastiveVAE(epochs=1, verbose=False, **kw).fit(bg, tg)


def test_nan_and_inf_are_named(toy):
    bg, tg = toy
    bad = bg.copy()
    bad.iloc[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite.*roi2.*rows 3"):
        _fit(bad, tg)
    bad = tg.copy()
    bad.iloc[5, 1] = np.inf
    with pytest.raises(ValueError, match=r"target has NaN or infinite.*roi1"):
        _fit(bg, bad)


def test_non_numeric_columns_are_named(toy):
    bg, tg = toy
    with pytest.raises(TypeError, match="non-numeric column.*'site'"):
        _fit(bg.assign(site="A"), tg.assign(site="B"))


def test_columns_that_differ_between_cohorts(toy):
    bg, tg = toy
    with pytest.raises(ValueError, match=r"target columns differ.*missing \['roi5'\].*unexpected \['other'\]"):
        _fit(bg, tg.rename(columns={"roi5": "other"}))


def test_too_few_rows(toy):
    bg, tg = toy
    with pytest.raises(ValueError, match="9 rows; at least 10"):
        _fit(bg, tg.iloc[:9])


def test_constant_columns(toy):
    bg, tg = toy
    with pytest.raises(ValueError, match=r"constant column.*roi0"):
        _fit(bg.assign(roi0=5.0), tg)


def test_negative_volumes(toy):
    bg, tg = toy
    bad = tg.copy()
    bad.iloc[7, 4] = -1.0
    with pytest.raises(ValueError, match=r"negative volumes.*roi4.*rows 7"):
        _fit(bg, bad)


def test_missing_target(toy):
    with pytest.raises(ValueError, match="needs both cohorts"):
        ContrastiveVAE().fit(toy[0], None)


@pytest.mark.parametrize(
    "params, message",
    [({"n_common": 0}, "n_common"), ({"mmd_weight": -1.0}, "mmd_weight"), ({"noise": "low"}, "noise"),
     ({"validation_fraction": 0.7}, "validation_fraction"), ({"latent_sampling": "posterior"}, "latent_sampling"),
     ({"regularizer": "hsic"}, "regularizer"), ({"tc_weight": float("nan")}, "tc_weight")],
)
def test_bad_hyperparameters(toy, params, message):
    with pytest.raises(ValueError, match=message):
        _fit(*toy, **params)


def test_unknown_choices_and_counts(small_model, cohorts):
    pt = cohorts[1].iloc[:5]
    with pytest.raises(ValueError, match="to='healthy'"):
        small_model.counterfactual(pt, to="healthy")
    with pytest.raises(ValueError, match="mode='twin'"):
        small_model.counterfactual(pt, mode="twin")
    with pytest.raises(ValueError, match="cohort='patients'"):
        small_model.sample(5, cohort="patients")
    with pytest.raises(ValueError, match="positive integer"):
        small_model.sample_paired(0)
    with pytest.raises(ValueError, match="salient must be"):
        small_model.counterfactual(pt, to="target", salient=np.zeros(3))
    with pytest.raises(ValueError, match="missing"):
        small_model.transform(pt.drop(columns=pt.columns[0]))
    with pytest.raises(TypeError, match="DataFrame or a 2-D NumPy array"):
        small_model.transform("table.csv")


def test_explicit_validation_tables(cohorts):
    cn, pt = cohorts
    model = ContrastiveVAE(epochs=10, eval_every=2, verbose=False, random_state=0)
    model.fit(cn.iloc[:200], pt.iloc[:200], validation=(cn.iloc[200:260], pt.iloc[200:260]))
    assert model.history_.val_epochs == [2, 4, 6, 8, 10]
    assert model.n_epochs_ == model.history_.val_epochs[int(np.argmin(model.history_.val_score))]
    with pytest.raises(TypeError, match="validation must be"):
        model.fit(cn.iloc[:200], pt.iloc[:200], validation=cn.iloc[200:260])


def test_total_correlation_regularizer_trains_its_discriminator_and_round_trips(cohorts, tmp_path):
    cn, pt = cohorts[0].iloc[:200], cohorts[1].iloc[:200]
    model = ContrastiveVAE(regularizer="tc", epochs=20, verbose=False, random_state=0).fit(cn, pt)
    # the discriminator separates joint (z, s) of patients from (z, s) with s shuffled: trained, it
    # scores joint draws higher on average (or the codes are already independent: then ~equal)
    module = model.module_
    x = torch.as_tensor(model._standardize(pt.to_numpy()), dtype=torch.float32)
    with torch.no_grad():
        z, s = module.common(x)[0], module.salient(x)[0]
        joint = module.discriminator(torch.cat([z, s], 1)).mean()
        shuffled = module.discriminator(torch.cat([z, s[torch.randperm(len(s))]], 1)).mean()
    assert joint >= shuffled - 0.1
    again = ContrastiveVAE(regularizer="tc", epochs=20, verbose=False, random_state=0).fit(cn, pt)
    assert again.transform(pt).equals(model.transform(pt))
    model.save(tmp_path / "tc.roisynth")
    loaded = ContrastiveVAE.load(tmp_path / "tc.roisynth")
    pd.testing.assert_frame_equal(loaded.sample_paired(30)[1], model.sample_paired(30)[1])
