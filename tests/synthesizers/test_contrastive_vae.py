"""ContrastiveVAE: API contract, scikit-learn conventions, reproducibility, files, bad input."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from roisynth import ContrastiveVAE, datasets


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


def test_sampling_gives_the_same_rows_for_any_number_of_threads(small_model, monkeypatch, tmp_path):
    """Chunks draw from their own seeds: n_threads workers give the same rows bit for bit (in
    memory and streamed), a longer draw extends a shorter one chunk by chunk, and the caller's
    torch thread count is left alone."""
    import copy

    import roisynth.io as rio
    import roisynth.synthesizers._neural as module

    monkeypatch.setattr(module, "_CHUNK", 128)  # 1000 rows: 8 chunks, the last one partial
    before = torch.get_num_threads()
    reference = small_model.sample_paired(1000, random_state=3)
    rio.write_samples(small_model, 1000, tmp_path / "pairs1.parquet", random_state=5)
    streamed = pd.read_parquet(tmp_path / "pairs1.parquet")
    for n_threads in (2, 3):
        model = copy.deepcopy(small_model).set_params(n_threads=n_threads)
        for ours, theirs in zip(model.sample_paired(1000, random_state=3), reference):
            pd.testing.assert_frame_equal(ours, theirs)
        assert torch.get_num_threads() == before
        path = tmp_path / f"pairs{n_threads}.parquet"
        rio.write_samples(model, 1000, path, random_state=5)
        pd.testing.assert_frame_equal(pd.read_parquet(path), streamed)
    from roisynth.exceptions import InvalidParameterError

    for bad in (0, -2):
        with pytest.raises(InvalidParameterError, match=f"n_threads={bad} is not valid"):
            copy.deepcopy(small_model).set_params(n_threads=bad).sample(10)
    longer = small_model.sample_paired(1300, random_state=3)
    for ours, theirs in zip(longer, reference):
        pd.testing.assert_frame_equal(ours.iloc[:896], theirs.iloc[:896])  # the 7 full chunks
    # the partial chunk draws 128 codes, not 104: other rows
    assert not np.allclose(longer[0].iloc[896:1000], reference[0].iloc[896:])


def test_streamed_pairs_are_sample_tables_rows(small_model, tmp_path, monkeypatch):
    """iter_samples interleaves each block's pairs itself: the rows, columns and dtypes of
    sample_table with the block's seed, ids continuing across blocks; the Parquet file holds them."""
    import roisynth.io as rio
    from roisynth.utils.validation import seed_from

    monkeypatch.setattr(rio, "BLOCK", 300)
    blocks = list(rio.iter_samples(small_model, 700, random_state=5))
    assert [len(b) for b in blocks] == [600, 600, 200]
    seed = np.random.SeedSequence([seed_from(5), 1]).generate_state(1)[0]
    expected = rio.sample_table(small_model, 300, random_state=int(seed))
    expected["synthetic_id"] += 300
    pd.testing.assert_frame_equal(blocks[1], expected.reset_index(drop=True))
    path = tmp_path / "pairs.parquet"
    assert rio.write_samples(small_model, 700, path, random_state=5) == 1400
    pd.testing.assert_frame_equal(pd.read_parquet(path), pd.concat(blocks, ignore_index=True))


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
    # a diseased twin with zero salient expression is the person plus the calibrated cohort-level
    # effect b_T − b_H (the same shift a synthetic pair with s = 0 shows)
    same = small_model.counterfactual(pt, to="target", salient=np.zeros(5))
    healthy_offset, target_offset = small_model.calibration_offsets_[1:]
    np.testing.assert_allclose(same.to_numpy(), pt.to_numpy() + (target_offset - healthy_offset) * small_model.scale_,
                               rtol=1e-6)
    # seeded prior draws are reproducible
    a = small_model.counterfactual(pt, to="target", random_state=4)
    pd.testing.assert_frame_equal(a, small_model.counterfactual(pt, to="target", random_state=4))


def test_severity_is_a_named_series_of_every_kind(small_model, cohorts):
    rows = cohorts[1].iloc[:30]
    for kind in ("effect_z", "llr", "mahalanobis", "mean_abs"):
        severity = small_model.severity(rows, kind=kind)
        assert isinstance(severity, pd.Series) and severity.name == "severity" and severity.index.equals(rows.index)
        assert np.isfinite(severity).all() and (kind in ("effect_z", "llr") or (severity >= 0).all())
    pd.testing.assert_series_equal(small_model.severity(rows), small_model.severity(rows, kind="effect_z"))
    with pytest.raises(ValueError, match="kind"):
        small_model.severity(rows, kind="max")


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
    with pytest.raises(ValueError, match=r"target has 9 row\(s\); at least 10"):
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


# -- calibration, the paper's model, small data (issue 15) -------------------------------------


def _standardized_means(model, table):
    return ((table.to_numpy(dtype=float) - model.mean_) / model.scale_).mean(0)


def test_calibrated_cohort_means_and_paired_difference_equal_the_training_means(small_model, cohorts):
    """Synthetic cohort means = training means (to Monte-Carlo error), and the mean paired
    difference = the synthetic cohort difference, in background-SD units."""
    cn, pt = (table.iloc[:400] for table in cohorts)
    real_b, real_t = _standardized_means(small_model, cn), _standardized_means(small_model, pt)
    synth_b = _standardized_means(small_model, small_model.sample(100_000, cohort="background", random_state=1))
    synth_t = _standardized_means(small_model, small_model.sample(100_000, cohort="target", random_state=2))
    healthy, disease = (_standardized_means(small_model, t) for t in small_model.sample_paired(100_000, random_state=3))
    for synthetic, real in ((synth_b, real_b), (synth_t, real_t), (healthy, real_b), (disease, real_t)):
        assert np.abs(synthetic - real).max() < 0.03
    np.testing.assert_allclose(disease - healthy, synth_t - synth_b, atol=0.04)
    # exactly, in expectation: E[f(z,s) + b_T] − E[f(z,0) + b_H] over the calibration codes = x̄_T − x̄_B
    uncalibrated = clone_without_calibration(small_model)
    h0, d0 = (_standardized_means(small_model, t) for t in uncalibrated.sample_paired(100_000, random_state=3))
    offsets = small_model.calibration_offsets_
    np.testing.assert_allclose(disease - healthy, d0 - h0 + offsets[2] - offsets[1], atol=1e-4)


def clone_without_calibration(model):
    """The fitted ``model`` with its calibration switched off (same network and latent mixtures)."""
    other = pickle.loads(pickle.dumps(model))
    other.calibration, other.calibration_offsets_ = "none", None
    return other


def test_calibration_none_is_the_uncalibrated_model(small_model, cohorts):
    """The calibration changes nothing in training (local generator): the uncalibrated fit has the
    same weights, and its samples differ from the calibrated ones by exactly the offsets."""
    cn, pt = (table.iloc[:400] for table in cohorts)
    plain = ContrastiveVAE(epochs=15, verbose=False, random_state=0, calibration="none").fit(cn, pt)
    assert plain.calibration_offsets_ is None
    for name, weight in small_model.module_.state_dict().items():
        assert torch.equal(weight, plain.module_.state_dict()[name]), name
    offsets = small_model.calibration_offsets_ * small_model.scale_
    for cohort, row in (("background", 0), ("target", 2)):
        shift = (small_model.sample(500, cohort=cohort, random_state=5)
                 - plain.sample(500, cohort=cohort, random_state=5))
        np.testing.assert_allclose(shift.to_numpy(), np.broadcast_to(offsets[row], shift.shape), rtol=1e-3, atol=0.05)
    healthy = small_model.sample_paired(500, random_state=5)[0] - plain.sample_paired(500, random_state=5)[0]
    np.testing.assert_allclose(healthy.to_numpy(), np.broadcast_to(offsets[1], healthy.shape), rtol=1e-3, atol=0.05)
    twins = small_model.counterfactual(pt.iloc[:20]) - plain.counterfactual(pt.iloc[:20])
    np.testing.assert_allclose(twins.to_numpy(), np.broadcast_to(offsets[1] - offsets[2], twins.shape), atol=0.05)


def test_calibration_is_reproducible_and_saved(small_model, cohorts, tmp_path):
    again = ContrastiveVAE(epochs=15, verbose=False, random_state=0).fit(cohorts[0].iloc[:400], cohorts[1].iloc[:400])
    np.testing.assert_array_equal(again.calibration_offsets_, small_model.calibration_offsets_)
    assert small_model.calibration_offsets_.shape == (3, small_model.n_features_in_)
    small_model.save(tmp_path / "model.roisynth")
    loaded = ContrastiveVAE.load(tmp_path / "model.roisynth")
    np.testing.assert_array_equal(loaded.calibration_offsets_, small_model.calibration_offsets_)
    pd.testing.assert_frame_equal(loaded.sample_paired(200, random_state=1)[0],
                                  small_model.sample_paired(200, random_state=1)[0])
    # a file written before calibration existed (no parameter, no offsets) loads as the model it held
    metadata, tensors = small_model._get_state()
    del metadata["params"]["calibration"], tensors["calibration_offsets_"]
    old = ContrastiveVAE._from_state(metadata, tensors)
    assert old.calibration == "none" and old.calibration_offsets_ is None


@pytest.fixture(scope="module")
def semisynthetic_fit():
    """A fit (to convergence) on 300 / 300 semi-synthetic subjects (one site, Table 1 atrophy) and the held-out rest."""
    cn = datasets.simulate_cohort(n=1400, diagnosis={"CN": 1.0}, random_state=0)
    data = datasets.make_semisynthetic(cn[["age", "sex", "icv", *datasets.roi_names()]], random_state=0)
    bg, tg = data.background[data.rois], data.target[data.rois]
    model = ContrastiveVAE(verbose=False, random_state=0).fit(bg.iloc[:300], tg.iloc[:300])
    return model, (bg.iloc[:300], tg.iloc[:300]), (bg.iloc[300:], tg.iloc[300:])


def test_calibrated_effects_have_their_real_size(semisynthetic_fit):
    """A quick fit on the semi-synthetic data reproduces the training data's Cohen's d map."""
    from roisynth.metrics import effect_scale

    model, (bg, tg), _ = semisynthetic_fit
    synthetic = [model.sample(4000, cohort=c, random_state=1) for c in ("background", "target")]
    assert 0.9 <= effect_scale(bg, tg, *synthetic) <= 1.1


def test_effect_z_is_a_z_score_of_healthy_people(semisynthetic_fit):
    """Held-out healthy people score about N(0, 1); held-out patients clearly above."""
    from sklearn.metrics import roc_auc_score

    model, _, (bg, tg) = semisynthetic_fit
    healthy, patients = model.severity(bg), model.severity(tg)
    assert abs(healthy.mean()) < 0.15 and 0.8 < healthy.std() < 1.25
    assert patients.mean() > 1 and roc_auc_score([0] * len(bg) + [1] * len(tg), [*healthy, *patients]) > 0.75


def test_severity_is_zero_for_healthy_people_and_ordered(small_model, example):
    rois = list(small_model.feature_names_in_)
    held_out = example.iloc[2000:]
    means = small_model.severity(held_out[rois]).groupby(held_out.diagnosis.to_numpy()).mean()
    assert abs(means["CN"]) < 0.2 * means["AD"] and means["CN"] < means["MCI"] < means["AD"]


def test_effect_z_is_the_matched_filter_of_the_salient_effect(small_model, example):
    """severity(kind="effect_z") = wᵀ(x − m_H) / √(wᵀΣw), w = ((1 − λ)Σ + λ diag Σ)⁻¹ Δ̄, recomputed in
    float64 from the model's parts for λ = 0, ½ (default) and 1."""
    rois = list(small_model.feature_names_in_)
    held_out = example.iloc[2000:]
    x = small_model._standardize(held_out[rois].to_numpy(float))
    mu_z, _ = small_model._posterior_means(held_out[rois].to_numpy(float))
    decoder = small_model.module_.decoder
    with torch.no_grad():
        z, s = small_model._draw_codes(16_384, torch.Generator().manual_seed(0), joint=True)
        effect = (decoder(z, s) - decoder(z)).double().mean(0).numpy()
        twin = decoder(mu_z).double().numpy() + small_model.calibration_offsets_[1]
        sigma = (lambda a: a.T @ a)(decoder.noise_factor().double().numpy())
    for shrinkage in (0.0, 0.5, 1.0):
        w = np.linalg.solve((1 - shrinkage) * sigma + shrinkage * np.diag(np.diag(sigma)), effect)
        expected = (x - twin) @ w / np.sqrt(w @ sigma @ w)
        np.testing.assert_allclose(small_model.severity(held_out[rois], shrinkage=shrinkage).to_numpy(), expected,
                                   rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="shrinkage"):
        small_model.severity(held_out[rois], shrinkage=1.5)


def test_mean_only_decoder_samples_the_decoder_means(cohorts):
    """noise="none" (the seed paper's decoder): samples are f(z, s) + b_T exactly."""
    model = ContrastiveVAE(epochs=3, verbose=False, random_state=0, noise="none", latent_sampling="prior",
                           calibration="none").fit(cohorts[0].iloc[:200], cohorts[1].iloc[:200])
    assert not any("log_scale" in name for name, _ in model.module_.named_parameters())
    generator = torch.Generator().manual_seed(int(model._chunk_seeds(50, 7)[0]))  # 50 rows: one chunk
    z, s = model._draw_codes(50, generator, joint=True)
    with torch.no_grad():
        means = model.module_.decoder(z, s).double().numpy() * model.scale_ + model.mean_
    np.testing.assert_allclose(model.sample(50, random_state=7).to_numpy(), means, rtol=1e-5)


def test_small_data_warning(cohorts):
    from roisynth.exceptions import SmallDataWarning

    cn, pt = cohorts
    message = (r"ContrastiveVAE\(n_hidden=64, noise='full'\) fitted a dense observation covariance \(9730 parameters\)"
               r".* 85 healthy and 255 patient training rows \(of 100 and 300 given\) for 139 ROIs.*add subjects")
    with pytest.warns(SmallDataWarning, match=message):
        ContrastiveVAE(epochs=1, verbose=False, random_state=0).fit(cn.iloc[:100], pt.iloc[:300])
    with warnings.catch_warnings():
        warnings.simplefilter("error", SmallDataWarning)
        ContrastiveVAE(epochs=1, verbose=False, random_state=0).fit(cn.iloc[:300], pt.iloc[:300])
