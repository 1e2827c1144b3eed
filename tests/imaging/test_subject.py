"""diffusion_counterfactual on a subject whose grid is not the model's: resampled to the model's
grid and back (an untrained 32³ model: every property tested holds by construction)."""

import numpy as np
import pytest
import torch
from scipy import ndimage

pytest.importorskip("monai")

from roisynth.imaging import make_phantom  # noqa: E402
from roisynth.imaging.config import get_config  # noqa: E402
from roisynth.imaging.diffusion import MaskGuidedDiffusion  # noqa: E402
from roisynth.imaging.masks import edit_masks  # noqa: E402
from roisynth.imaging.subject import Subject, changes_to_targets, diffusion_counterfactual  # noqa: E402

META = {"age": 72, "sex": "F", "diagnosis": "CN"}
# stored voxel (i, j, k) is voxel (63 - i, k, j) of the RAS grid: the first axis flipped, the others swapped
STORED_TO_RAS = np.array([[-1.0, 0, 0, 63], [0, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 1]])


def to_stored(array):
    return np.ascontiguousarray(array[::-1].transpose(0, 2, 1))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return MaskGuidedDiffusion(get_config("32")).eval()


@pytest.fixture(scope="module")
def case():
    """A 64³ phantom (4 mm voxels, half the model's 8 mm) on its RAS grid and stored flipped and
    permuted, and its hippocampi -30 % on both grids."""
    phantom = make_phantom((64, 64, 64), random_state=0)
    voxel = float(abs(np.linalg.det(phantom.affine[:3, :3])))
    targets = changes_to_targets(phantom.labels, {"Hippocampus": -0.3}, voxel)
    labels_cf = edit_masks(phantom.labels, None, targets, voxel_volume=voxel).labels
    ras = Subject(phantom.image, phantom.labels, phantom.affine)
    stored = Subject(to_stored(phantom.image), to_stored(phantom.labels), phantom.affine @ STORED_TO_RAS)
    return ras, stored, labels_cf, to_stored(labels_cf)


def test_output_is_on_the_subjects_grid_whatever_its_storage_order(model, case):
    ras, stored, labels_cf, stored_cf = case
    out = diffusion_counterfactual(stored, model, stored_cf, META, META, steps=2)
    assert out.shape == stored.image.shape and out.dtype == np.float32 and np.isfinite(out).all()
    reference = diffusion_counterfactual(ras, model, labels_cf, META, META, steps=2)
    assert not np.array_equal(reference, ras.image)
    assert np.array_equal(to_stored(reference), out)  # the same voxels in world space, value for value


def test_null_intervention_returns_the_input_exactly(model, case):
    _, stored, _, _ = case
    null = diffusion_counterfactual(stored, model, stored.labels, META, {**META, "diagnosis": "AD"}, steps=2)
    assert np.array_equal(null, stored.image)


def test_changes_stay_inside_the_band(model, case):
    """Full weight within one model voxel (8 mm) of a relabelled voxel, a seam to 3 model voxels
    (24 mm): beyond it the output is the input bit for bit; within 8 mm it changed."""
    _, stored, _, stored_cf = case
    out = diffusion_counterfactual(stored, model, stored_cf, META, META, steps=2)
    distance = ndimage.distance_transform_edt(stored.labels == stored_cf, sampling=4.0)
    assert np.array_equal(out[distance >= 24], stored.image[distance >= 24])
    assert np.abs(out - stored.image)[distance <= 8].mean() > 1.0
    outside, inside = (np.abs(out - stored.image)[m].mean() for m in (distance > 8, distance <= 8))
    assert outside < 0.5 * inside


def test_global_mode_and_bad_inputs(model, case):
    _, stored, _, stored_cf = case
    out = diffusion_counterfactual(stored, model, stored_cf, META, META, mode="global", steps=1)
    assert out.shape == stored.image.shape and np.isfinite(out).all()
    with pytest.raises(ValueError, match="labels_cf has shape"):
        diffusion_counterfactual(stored, model, stored_cf[:-1], META, META)


def test_an_edit_the_model_grid_cannot_see_warns_and_returns_the_input():
    """A 32³ subject (8 mm voxels) on the 16³ model's 16 mm grid: one hippocampus voxel less is
    invisible there."""
    torch.manual_seed(0)
    model = MaskGuidedDiffusion(get_config("16")).eval()
    phantom = make_phantom((32, 32, 32), random_state=0)
    subject = Subject(phantom.image, phantom.labels, phantom.affine)
    labels_cf = edit_masks(phantom.labels, None, {17: 512.0 * (np.count_nonzero(phantom.labels == 17) - 1)},
                           voxel_volume=512.0).labels
    with pytest.warns(UserWarning, match="smaller than the model's 16 mm voxels"):
        out = diffusion_counterfactual(subject, model, labels_cf, META, META, steps=2)
    assert np.array_equal(out, phantom.image)
