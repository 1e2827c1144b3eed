"""DDIM schedule and exact inversion, and the MaskGuidedDiffusion model's plumbing (tiny 16³)."""

import numpy as np
import pytest
import torch

pytest.importorskip("monai")

from roisynth.imaging import make_phantom  # noqa: E402
from roisynth.imaging.blending import blend_weights  # noqa: E402
from roisynth.imaging.condition import N_MASKS, condition_vector, masks_from_labels  # noqa: E402
from roisynth.imaging.config import PRESETS, DiffusionConfig, get_config  # noqa: E402
from roisynth.imaging.ddim import DDIMSchedule  # noqa: E402
from roisynth.imaging.diffusion import MaskGuidedDiffusion  # noqa: E402
from roisynth.imaging.masks import edit_masks  # noqa: E402
from roisynth.imaging.verification import edit_band, locality  # noqa: E402

CONFIG = get_config("16")
META = {"age": 72, "sex": "F", "diagnosis": "CN"}


@pytest.fixture(scope="module")
def phantom():
    return make_phantom((16, 16, 16), random_state=0)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return MaskGuidedDiffusion(CONFIG).eval()


def smooth_denoiser(schedule):
    """A nonlinear stand-in for a trained ε_θ: the optimal denoiser of N(0, I) data,
    √(1-ᾱ_t) x, bent by a tanh."""
    abar = schedule.alphas_cumprod.float()

    def eps(x, t):
        s = (1 - abar[t]).sqrt().view(-1, *([1] * (x.dim() - 1)))
        return s * x + 0.05 * torch.tanh(x)
    return eps


def test_presets_round_trip_and_latent_grids():
    for config in PRESETS.values():
        assert DiffusionConfig.from_dict(config.to_dict()) == config
        assert config.latent_shape[1] * config.ae_factor == config.shape
    with pytest.raises(ValueError, match="unknown imaging config"):
        get_config("48")


def test_ddim_step_matches_monai():
    from monai.networks.schedulers import DDIMScheduler

    ours = DDIMSchedule(CONFIG)
    theirs = DDIMScheduler(num_train_timesteps=CONFIG.train_timesteps, schedule="scaled_linear_beta",
                           beta_start=CONFIG.beta_start, beta_end=CONFIG.beta_end, clip_sample=False)
    theirs.set_timesteps(5)
    x, eps = torch.randn(2, 2, 4, 4, 4), torch.randn(2, 2, 4, 4, 4)
    ts = ours.timesteps(5)
    for i in range(1, 5):  # MONAI's step goes to t - T/S; its last step differs only in ᾱ_prev = 1 vs ᾱ_0
        assert torch.allclose(ours.step(eps, ts[i], x, ts[i - 1]), theirs.step(eps, ts[i], x)[0], atol=1e-5)


def test_exact_inversion_reproduces_the_latent_where_the_naive_one_does_not():
    schedule = DDIMSchedule(CONFIG)
    eps = smooth_denoiser(schedule)
    z = torch.randn(2, 2, 8, 8, 8, generator=torch.Generator().manual_seed(1))
    errors = {}
    for iterations in (0, 60):
        z_T, residual = schedule.invert(eps, z, steps=5, iterations=iterations, tol=1e-7)
        errors[iterations] = float((schedule.sample(eps, z_T, steps=5) - z).abs().max())
    assert errors[60] < 1e-4 * float(z.abs().max())
    assert residual < 1e-6
    assert errors[0] > 100 * errors[60]


def test_inversion_reports_its_residual():
    schedule = DDIMSchedule(CONFIG)
    eps = smooth_denoiser(schedule)
    z = torch.randn(1, 2, 8, 8, 8, generator=torch.Generator().manual_seed(2))
    _, rough = schedule.invert(eps, z, steps=5, iterations=0)
    _, fine = schedule.invert(eps, z, steps=5, iterations=60, tol=1e-7)
    assert rough > 1e-3 > 1e-6 > fine


def test_condition_vector_and_masks(phantom):
    c = condition_vector([{"age": 80, "sex": "M", "diagnosis": "AD"}, {"age": 60, "sex": "F", "diagnosis": "CN"}])
    np.testing.assert_allclose(c, [[1, 1, 0, 0, 1], [-1, 0, 1, 0, 0]])
    with pytest.raises(ValueError, match="diagnosis"):
        condition_vector({"age": 70, "sex": "F", "diagnosis": "PD"})
    with pytest.raises(ValueError, match="sex"):
        condition_vector({"age": 70, "sex": "X", "diagnosis": "CN"})
    masks = masks_from_labels(phantom.labels)
    assert masks.shape == (N_MASKS, 16, 16, 16)
    assert masks.sum(axis=0).max() == 1  # channels never overlap
    assert masks[0].sum() == (phantom.labels == 17).sum()


def test_model_shapes_and_guidance(model, phantom):
    x = torch.from_numpy(phantom.image / 128).float()[None, None]
    z = model.encode(x)
    assert z.shape == (1, *CONFIG.latent_shape)
    assert model.decode(z).shape == x.shape
    images = model.sample([META, {**META, "diagnosis": "AD"}], phantom.labels, steps=3, random_state=0)
    assert images.shape == (2, 16, 16, 16) and np.isfinite(images).all()
    again = model.sample([META, {**META, "diagnosis": "AD"}], phantom.labels, steps=3, random_state=0)
    np.testing.assert_array_equal(images, again)
    t = torch.tensor([10])
    condition, masks = model._conditions(META), model._masks(phantom.labels, "masks", 1)
    e1 = model.guided_noise(z, t, condition, masks, 1.0)
    torch.testing.assert_close(e1, model.predict_noise(z, t, condition, masks))
    e0 = model.predict_noise(z, t, condition, masks, null=torch.tensor([True]))
    torch.testing.assert_close(model.guided_noise(z, t, condition, masks, 3.0), e0 + 3 * (e1 - e0))


def test_bad_inputs_name_the_problem(model, phantom):
    with pytest.raises(ValueError, match="grid"):
        model.counterfactual(np.zeros((8, 8, 8)), phantom.labels, phantom.labels, META, META)
    with pytest.raises(ValueError, match="mask channels"):
        model.sample(META, np.zeros((3, 16, 16, 16), np.float32))
    with pytest.raises(ValueError, match="age"):
        model.sample({"sex": "F", "diagnosis": "CN"}, phantom.labels)


def test_counterfactual_under_factual_inputs_is_the_reconstruction(model, phantom):
    """Null intervention, global mode: invert + regenerate under the factual inputs gives D(E(x))."""
    with torch.no_grad():
        for p in list(model.unet.parameters())[-2:]:  # wake the zero-initialized output layer
            p.normal_(0, 1e-3, generator=torch.Generator().manual_seed(0))
    null = model.counterfactual(phantom.image, phantom.labels, phantom.labels, META, META, steps=5, iterations=20,
                                mode="global")
    x = torch.from_numpy(phantom.image / 128).float()[None, None]
    with torch.no_grad():
        recon = model.decode(model.encode(x))[0, 0].numpy() * 128
    np.testing.assert_allclose(null, recon, atol=1e-3 * np.abs(recon).max())


def test_losses_and_save_load(model, phantom, tmp_path):
    x = torch.from_numpy(phantom.image / 128).float()[None, None].repeat(2, 1, 1, 1, 1)
    loss, parts = model.autoencoder_loss(x)
    assert loss.requires_grad and set(parts) == {"l1", "kl"}
    masks = model._masks(phantom.labels, "masks", 2)
    condition = model._conditions([META, META])
    g = torch.Generator().manual_seed(0)
    assert model.denoising_loss(x, condition, masks, generator=g).item() > 0
    assert {id(p) for p in model.trainable("controlnet")}.isdisjoint(id(p) for p in model.trainable("unet"))
    model.fit_scale_factor(x)
    path = model.save(tmp_path / "m.pt")
    loaded = MaskGuidedDiffusion.load(tmp_path / "m.pt")
    assert loaded.config == model.config
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    torch.save({"format": "other"}, path)
    with pytest.raises(ValueError, match="not a MaskGuidedDiffusion"):
        MaskGuidedDiffusion.load(path)


def test_local_mode_is_local_by_construction():
    """Local mode: the null intervention is the input bit for bit (even with other metadata), and
    the counterfactual equals the input wherever the seam weight is 0."""
    model = MaskGuidedDiffusion(get_config("32")).eval()
    phantom = make_phantom((32, 32, 32), random_state=0)
    image, labels = phantom.image, phantom.labels
    null = model.counterfactual(image, labels, labels, META, {**META, "diagnosis": "AD"}, steps=2)
    assert np.array_equal(null, image)
    edited = edit_masks(labels, None, {17: 0.5 * np.count_nonzero(labels == 17) * 1.0}).labels
    cf = model.counterfactual(image, labels, edited, META, META, steps=2)
    weights = blend_weights(labels, edited)
    assert weights.max() == 1 and np.array_equal(cf[weights == 0], image[weights == 0])
    assert np.abs(cf - image)[weights == 1].mean() > 0
    band = edit_band(labels, edited, dilation=2)
    assert locality(cf, image, band)["ratio"] <= 0.05
    with pytest.raises(ValueError, match="mode must be 'local' or 'global'"):
        model.counterfactual(image, labels, edited, META, META, mode="blend")


def test_blended_sampling_keeps_the_factual_trajectory_outside_the_mask():
    schedule = DDIMSchedule(CONFIG)
    eps = smooth_denoiser(schedule)
    x0 = torch.linspace(-1, 1, 16, dtype=torch.float64).view(2, 8)
    trajectory = []
    x_T, _ = schedule.invert(eps, x0, steps=5, trajectory=trajectory)
    assert len(trajectory) == 6 and torch.equal(trajectory[-1], x_T)
    keep = torch.zeros(2, 8, dtype=torch.float64)
    keep[:, :3] = 1
    other = schedule.sample(lambda x, t: eps(x, t) + 0.3, x_T, 5, keep=keep, trajectory=trajectory)
    assert torch.equal(other[:, 3:], x0[:, 3:]) and not torch.allclose(other[:, :3], x0[:, :3])
    with pytest.raises(ValueError, match="blended sampling needs both"):
        schedule.sample(eps, x_T, 5, keep=keep)
