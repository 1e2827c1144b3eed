"""Label codes, NIfTI I/O and the Counterfactual Mask Generator (roisynth.imaging)."""

from pathlib import Path

import numpy as np
import pytest
from roisynth.imaging.labels import CSF, label_for, label_name, muse_components
from roisynth.imaging.masks import edit_masks
from roisynth.imaging.nifti import load_nifti, save_nifti, voxel_volume

DATA = Path(__file__).resolve().parents[2].parent / "shared/data/synthseg_label_maps"
HIPPO, AMYG, WM = 17, 18, 2


def _phantom():
    """32³ map: a ball of hippocampus (r 7) and of amygdala (r 4) in CSF (r 10), in WM."""
    grid = np.indices((32, 40, 32)).transpose(1, 2, 3, 0).astype(float)
    labels = np.full(grid.shape[:3], WM, dtype=np.int16)
    posteriors = {}
    for code, centre, radius in [(HIPPO, (16, 12, 16), 7.0), (AMYG, (16, 30, 16), 4.0)]:
        dist = np.linalg.norm(grid - centre, axis=-1)
        labels[(dist <= radius + 3) & (labels == WM)] = CSF
        labels[dist <= radius] = code
        posteriors[code] = 1 / (1 + np.exp(-(radius + 0.5 - dist)))  # consistent with labels
    posteriors[CSF] = 1 - posteriors[HIPPO] - posteriors[AMYG]
    return labels, posteriors


def _only_roi_csf(before, after, code):
    changed = before != after
    pairs = set(zip(before[changed].tolist(), after[changed].tolist()))
    return changed.any() and pairs <= {(code, CSF), (CSF, code)}


@pytest.mark.parametrize("factor", [0.9, 0.95, 1.05, 1.1])
def test_phantom_edits_exact_local_and_reversible(factor):
    labels, post = _phantom()
    n = int(np.count_nonzero(labels == HIPPO))
    edit = edit_masks(labels, post, {"Hippocampus_L": n * 2 * factor}, voxel_volume=2.0)
    assert np.count_nonzero(edit.labels == HIPPO) == round(n * factor)
    assert _only_roi_csf(labels, edit.labels, HIPPO)
    row = edit.table.loc["Hippocampus_L"]
    assert row["achieved_mm3"] == 2 * round(n * factor) and row["voxels_changed"] == round(n * factor) - n
    back = edit_masks(edit.labels, post, {HIPPO: 2 * n}, voxel_volume=2.0).labels
    np.testing.assert_array_equal(back, labels)


def test_sequential_edits_and_validation():
    labels, post = _phantom()
    n_h, n_a = (int(np.count_nonzero(labels == c)) for c in (HIPPO, AMYG))
    edit = edit_masks(labels, None, {HIPPO: n_h * 0.9, "Amygdala_L": n_a * 1.1})
    assert list(edit.table.index) == [HIPPO, "Amygdala_L"]
    assert edit.table["achieved_mm3"].tolist() == [round(n_h * 0.9), round(n_a * 1.1)]
    assert np.isin(edit.labels[edit.labels != labels], [HIPPO, AMYG, CSF]).all()
    assert labels.dtype == edit.labels.dtype and np.count_nonzero(labels == HIPPO) == n_h  # input kept
    with pytest.raises(ValueError, match="posteriors lack code 18"):
        edit_masks(labels, {HIPPO: post[HIPPO], CSF: post[CSF]}, {AMYG: 10})
    with pytest.raises(ValueError, match="absent"):
        edit_masks(labels, None, {53: 10})
    with pytest.raises(ValueError, match="CSF codes"):
        edit_masks(labels, None, {CSF: 10})


def test_impossible_request_raises_without_partial_edit():
    labels, post = _phantom()
    n = int(np.count_nonzero(labels == HIPPO))
    before = labels.copy()
    with pytest.raises(ValueError, match=r"ROI 'Hippocampus_L' \(code 17\): requested .* achievable") as err:
        edit_masks(labels, post, {AMYG: 100, "Hippocampus_L": 4 * n})
    achievable = float(str(err.value).split("only ")[1].split(" mm")[0])
    assert n < achievable < 4 * n  # all CSF within reach taken, still short
    np.testing.assert_array_equal(labels, before)
    with pytest.raises(ValueError, match="max_rings=1"):
        edit_masks(labels, post, {HIPPO: 2 * n}, max_rings=1)


@pytest.mark.skipif(not DATA.exists(), reason="SynthSeg label maps not present")
def test_real_label_map_edits_to_the_voxel():
    labels, affine, _ = load_nifti(DATA / "training_seg_01.nii.gz")
    assert labels.dtype == np.int16 and voxel_volume(affine) == 1.0
    for code, factor in [(17, 0.9), (53, 1.05), (18, 1.1), (42, 0.95)]:
        n = int(np.count_nonzero(labels == code))
        edit = edit_masks(labels, None, {code: n * factor})
        assert np.count_nonzero(edit.labels == code) == round(n * factor)
        assert _only_roi_csf(labels, edit.labels, code)


def test_nifti_round_trip(tmp_path):
    labels, post = _phantom()
    affine = np.array([[-1.5, 0, 0, 90.25], [0, 1.25, 0.5, -126], [0, 0, 2, -72.5], [0, 0, 0, 1]])
    save_nifti(tmp_path / "seg.nii.gz", labels, affine)
    save_nifti(tmp_path / "p.nii", post[HIPPO], affine)
    data, aff, header = load_nifti(tmp_path / "seg.nii.gz")
    assert data.dtype == np.int16 and np.array_equal(data, labels) and np.array_equal(aff, affine)
    prob, aff2, _ = load_nifti(tmp_path / "p.nii")
    assert prob.dtype == np.float32 and np.array_equal(prob, post[HIPPO].astype(np.float32))
    assert np.array_equal(aff2, affine) and voxel_volume(affine) == pytest.approx(3.75)
    save_nifti(tmp_path / "again.nii.gz", data.astype(np.float32), aff, header)  # float labels
    assert np.array_equal(load_nifti(tmp_path / "again.nii.gz")[0], labels)


def test_label_codes():
    assert (label_for("Hippocampus_L"), label_for("hippocampus_r"), label_for("MUSE_48")) == (17, 53, 17)
    assert (label_for("LateralVentricle_R"), label_for("Cortex_L"), label_for("CerebralWM_R")) == (43, 3, 41)
    assert label_name(24) == "CSF" and label_name(515) == "extra-cerebral tissue"
    parts = muse_components("Cortex_L")
    assert "EntorhinalArea_L" in parts and "Hippocampus_L" not in parts and len(parts) == 49
    assert "Frontal_WM_L" in muse_components("CerebralWM_L")
    with pytest.raises(ValueError, match=r"'SuperiorFrontalGyrus_L' cannot be expressed.*Hippocampus_L"):
        label_for("SuperiorFrontalGyrus_L")
    with pytest.raises(ValueError, match="'Nucleus' cannot be expressed"):
        label_for("Nucleus")
