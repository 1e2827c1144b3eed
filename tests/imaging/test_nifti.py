"""NIfTI safety: label values that do not fit are refused, arrays on other grids are put on the
image's grid by their affines (exactly when only the storage order differs), never reinterpreted."""

import numpy as np
import pandas as pd
import pytest
from roisynth.imaging import load_phantom, make_phantom, save_phantom
from roisynth.imaging.nifti import align_to, load_nifti, resample_to, same_grid, save_nifti

from roisynth.cli import main


@pytest.fixture(scope="module")
def phantom():
    return make_phantom((32, 32, 32), random_state=0)


def _flipped(array, affine, axis=0):
    """The same voxels stored with ``axis`` reversed: data flipped, affine compensating."""
    flip = np.eye(4)
    flip[axis, axis], flip[axis, 3] = -1.0, array.shape[axis] - 1
    return np.flip(array, axis), affine @ flip


@pytest.mark.parametrize("value", [2**40 + 17, 2**31, -(2**31) - 1])
def test_save_refuses_labels_that_do_not_fit(tmp_path, value):
    labels = np.zeros((2, 2, 2), dtype=np.int64)
    labels[0, 0, 0] = value
    with pytest.raises(ValueError, match=f"label value {value} does not fit the int32"):
        save_nifti(tmp_path / "x.nii.gz", labels, np.eye(4))
    assert not (tmp_path / "x.nii.gz").exists()


def test_save_keeps_int32_and_unsigned_labels_and_refuses_float_overflow(tmp_path):
    labels = np.array([0, 17, 2035, 2**31 - 1, 70000, 1, 2, 3], dtype=np.int64).reshape(2, 2, 2)
    save_nifti(tmp_path / "a.nii.gz", labels, np.eye(4))
    back = load_nifti(tmp_path / "a.nii.gz")[0]
    assert back.dtype == np.int32 and np.array_equal(back, labels)
    save_nifti(tmp_path / "b.nii.gz", labels[:1].astype(np.uint16) * 0 + 2035, np.eye(4))
    assert load_nifti(tmp_path / "b.nii.gz")[0].dtype == np.int16
    with pytest.raises(ValueError, match="beyond float32"):
        save_nifti(tmp_path / "c.nii.gz", np.full((2, 2, 2), 1e300), np.eye(4))


def test_load_keeps_int64_values_instead_of_wrapping(tmp_path):
    import nibabel as nib

    data = np.full((2, 2, 2), 2**40 + 17, dtype=np.int64)
    nib.save(nib.Nifti1Image(data, np.eye(4), dtype=np.int64), tmp_path / "big.nii.gz")
    array = load_nifti(tmp_path / "big.nii.gz")[0]
    assert array.dtype == np.int64 and int(array[0, 0, 0]) == 2**40 + 17


@pytest.mark.parametrize("axes", [(0,), (1, 2), (0, 1, 2)])
def test_flips_are_reordered_exactly(phantom, axes):
    labels, affine = phantom.labels, phantom.affine
    for axis in axes:
        labels, affine = _flipped(labels, affine, axis)
    assert not np.array_equal(labels, phantom.labels)
    assert np.array_equal(resample_to(labels, affine, phantom.labels.shape, phantom.affine), phantom.labels)


def test_axis_permutation_and_round_trip_through_another_grid(phantom):
    permuted = np.transpose(phantom.labels, (2, 0, 1))
    affine = phantom.affine[:, [2, 0, 1, 3]]  # voxel (k, i, j) of the new array is voxel (i, j, k)
    assert np.array_equal(resample_to(permuted, affine, (32, 32, 32), phantom.affine), phantom.labels)
    finer = phantom.affine @ np.diag([0.5, 0.5, 0.5, 1.0])  # a 2x finer grid, same world box (corner-aligned)
    finer[:3, 3] -= phantom.affine[:3, :3] @ np.full(3, 0.25)
    up = resample_to(phantom.labels, phantom.affine, (64, 64, 64), finer)
    assert set(np.unique(up)) == set(np.unique(phantom.labels))  # nearest neighbour: no new code
    assert np.array_equal(resample_to(up, finer, (32, 32, 32), phantom.affine), phantom.labels)


def test_align_to_warns_and_refuses_no_overlap(phantom):
    labels, affine = _flipped(phantom.labels, phantom.affine)
    assert align_to(phantom.labels, phantom.affine, (32, 32, 32), phantom.affine, name="x") is phantom.labels
    with pytest.warns(UserWarning, match="labels.nii.gz is on another grid.*reordered exactly"):
        assert np.array_equal(align_to(labels, affine, (32, 32, 32), phantom.affine, name="labels.nii.gz"),
                              phantom.labels)
    far = phantom.affine.copy()
    far[:3, 3] += 1000.0
    with pytest.raises(ValueError, match="does not overlap the image in world coordinates"):
        align_to(phantom.labels, far, (32, 32, 32), phantom.affine, name="labels.nii.gz")
    assert same_grid((32, 32, 32), phantom.affine, (32, 32, 32), phantom.affine + 1e-5)


def test_load_phantom_puts_a_flipped_label_map_on_the_image_grid(phantom, tmp_path):
    """The issue's case: labels.nii.gz stored flipped (4 738 of 32 768 voxels misplaced before)."""
    save_phantom(phantom, tmp_path)
    save_nifti(tmp_path / "labels.nii.gz", *_flipped(phantom.labels, phantom.affine))
    assert (load_nifti(tmp_path / "labels.nii.gz")[0] != phantom.labels).sum() > 1000
    with pytest.warns(UserWarning, match="reordered exactly"):
        loaded = load_phantom(tmp_path)
    assert np.array_equal(loaded.labels, phantom.labels)
    assert np.array_equal(loaded.affine, phantom.affine)


def test_cli_masks_with_a_flipped_label_map_writes_registered_output(phantom, tmp_path, capsys):
    save_phantom(phantom, tmp_path / "subject")
    save_nifti(tmp_path / "subject/labels.nii.gz", *_flipped(phantom.labels, phantom.affine, axis=1))
    n = int((phantom.labels == 17).sum())
    pd.DataFrame({"Hippocampus_L": [n * 512.0 * 0.6]}).to_csv(tmp_path / "row.csv", index=False)
    out = tmp_path / "edited.nii.gz"
    with pytest.warns(UserWarning, match="reordered exactly"):
        assert main(["imaging", "masks", str(tmp_path / "subject"), "--volumes", str(tmp_path / "row.csv"),
                     "-o", str(out)]) == 0
    edited, affine, _ = load_nifti(out)
    assert np.array_equal(affine, phantom.affine)
    changed = edited != phantom.labels
    assert changed.sum() == n - round(0.6 * n) and set(np.unique(phantom.labels[changed])) == {17}


def test_cli_counterfactual_on_a_t1_with_a_flipped_label_map(phantom, tmp_path, capsys):
    """A T1 and its label map stored flipped: the deformation reads the map on the T1's grid and
    writes the counterfactual on the T1's grid with its affine."""
    save_nifti(tmp_path / "t1.nii.gz", phantom.image, phantom.affine)
    save_nifti(tmp_path / "aseg.nii.gz", *_flipped(phantom.labels, phantom.affine, axis=2))
    argv = ["imaging", "counterfactual", str(tmp_path / "t1.nii.gz"), "--labels", str(tmp_path / "aseg.nii.gz"),
            "--change", "Hippocampus=0.3", "-o", str(tmp_path / "cf.nii.gz"), "--labels-output",
            str(tmp_path / "cf_labels.nii.gz")]
    with pytest.warns(UserWarning, match="reordered exactly"):
        assert main(argv) == 0
    assert "Jacobian" in capsys.readouterr().out
    image, affine, _ = load_nifti(tmp_path / "cf.nii.gz")
    labels = load_nifti(tmp_path / "cf_labels.nii.gz")[0]
    assert np.array_equal(affine, phantom.affine) and image.shape == phantom.image.shape
    changed = labels != phantom.labels
    assert changed.any() and np.isin(phantom.labels[changed & (labels == 17)], [24]).all()
