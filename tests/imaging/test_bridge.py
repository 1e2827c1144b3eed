"""From ROI-table rows to counterfactual masks (roisynth.imaging.bridge) and the imaging CLI."""

import numpy as np
import pandas as pd
import pytest
from roisynth.imaging.bridge import counterfactual_masks
from roisynth.imaging.labels import CSF
from roisynth.imaging.nifti import load_nifti, voxel_volume
from roisynth.imaging.phantoms import load as load_phantom
from roisynth.imaging.phantoms import make_phantom

from roisynth import ContrastiveVAE, datasets
from roisynth.cli import main

HIPPO_L, AMYG_R = 17, 54


@pytest.fixture(scope="module")
def phantom():
    return make_phantom((96, 96, 96), random_state=0)


@pytest.fixture(scope="module")
def factual():
    return datasets.load_example()[datasets.roi_names()].iloc[[0]]


def _counterfactual(factual, changes):
    row = factual.copy()
    for roi, ratio in changes.items():
        row[roi] *= ratio
    return row


def test_relative_change_is_exact_and_only_at_csf(phantom, factual):
    cf = _counterfactual(factual, {"Hippocampus_L": 0.92, "Amygdala_R": 1.05})
    result = counterfactual_masks(phantom, cf, reference=factual, rois=["Hippocampus_L", "Amygdala_R"])
    for code, ratio in ((HIPPO_L, 0.92), (AMYG_R, 1.05)):
        n = np.count_nonzero(phantom.labels == code)
        assert np.count_nonzero(result.labels == code) == round(n * ratio)
    changed = phantom.labels != result.labels
    pairs = set(zip(phantom.labels[changed].tolist(), result.labels[changed].tolist()))
    assert pairs == {(HIPPO_L, CSF), (CSF, AMYG_R)}
    v = voxel_volume(phantom.affine)
    assert result.table.loc["Hippocampus_L", "voxels_changed"] == round(195 * 0.92) - 195 == -16
    assert result.table.loc["Amygdala_R", "achieved_mm3"] == pytest.approx(round(106 * 1.05) * v)
    assert result.posteriors_used and np.array_equal(result.affine, phantom.affine)


def test_default_edits_every_expressible_roi_and_lists_the_rest(phantom, factual):
    cf = _counterfactual(factual, {"Hippocampus_L": 0.92})
    result = counterfactual_masks(phantom, cf, reference=factual)
    # unchanged ROIs keep their exact voxel counts; only the left hippocampus moves
    assert set(result.table.index) == {"Hippocampus_L", "Hippocampus_R", "Amygdala_L", "Amygdala_R",
                                       "Cortex_L", "Cortex_R", "CerebralWM_L", "CerebralWM_R"}
    assert (result.table["voxels_changed"] != 0).sum() == 1
    assert result.skipped["CorpusCallosum"] == "no label code"
    assert result.skipped["Pallidum_L"] == "absent from the label map"
    assert result.skipped["Putamen_L"] == "no boundary with CSF"
    assert "FrontalPole_L" not in result.skipped  # a part of the Cortex_L composite


def test_composite_ratio_sums_its_muse_parts(phantom, factual):
    from roisynth.imaging.labels import muse_components

    cf = factual.copy()
    parts = list(muse_components("Cortex_L"))
    cf[parts[:10]] *= 0.9  # cortex_L total changes by the share of those parts
    ratio = cf[parts].sum(axis=1).item() / factual[parts].sum(axis=1).item()
    result = counterfactual_masks(phantom, cf, reference=factual, rois=["Cortex_L"])
    n = np.count_nonzero(phantom.labels == 3)
    assert ratio < 0.99 and np.count_nonzero(result.labels == 3) == round(n * ratio)


def test_absolute_targets_and_triple_subject(phantom):
    v = voxel_volume(phantom.affine)
    result = counterfactual_masks((phantom.labels, None, phantom.affine), pd.Series({"Hippocampus_L": 180.4 * v}))
    assert np.count_nonzero(result.labels == HIPPO_L) == 180 and not result.posteriors_used


def test_unexpressible_roi_errors_when_requested(phantom, factual):
    cf = _counterfactual(factual, {"Hippocampus_L": 0.92})
    with pytest.raises(ValueError, match="CorpusCallosum.*cannot be expressed"):
        counterfactual_masks(phantom, cf, reference=factual, rois=["CorpusCallosum"])
    with pytest.raises(ValueError, match="Putamen_L.*no boundary with CSF"):
        counterfactual_masks(phantom, cf, reference=factual, rois=["Putamen_L"])
    with pytest.raises(ValueError, match="one row"):
        counterfactual_masks(phantom, pd.concat([cf, cf]), reference=factual)
    with pytest.raises(ValueError, match="lacks ROI 'Hippocampus_L'"):
        counterfactual_masks(phantom, cf, reference=pd.Series({"Amygdala_L": 1.0}), rois=["Hippocampus_L"])
    with pytest.raises(TypeError, match="Phantom"):
        counterfactual_masks(phantom.labels, cf)


def test_contrastive_vae_disease_twin_shrinks_the_hippocampus(phantom):
    table = datasets.load_example()
    rois = datasets.roi_names()
    cn, ad = table.loc[table.diagnosis == "CN", rois], table.loc[table.diagnosis == "AD", rois]
    model = ContrastiveVAE(epochs=20, random_state=0, verbose=False).fit(cn, ad)
    healthy = cn.iloc[[0]]
    twin = model.counterfactual(healthy, to="target")
    result = counterfactual_masks(phantom, twin, reference=healthy)
    table = result.table
    for roi, code in (("Hippocampus_L", HIPPO_L), ("Hippocampus_R", 53)):
        ratio = twin[roi].item() / healthy[roi].item()
        assert ratio < 0.97
        assert np.count_nonzero(result.labels == code) == round(np.count_nonzero(phantom.labels == code) * ratio)
        assert table.loc[roi, "achieved_mm3"] < table.loc[roi, "original_mm3"]


def test_cli_phantom_then_masks(tmp_path, factual, capsys):
    folder = tmp_path / "phantom"
    assert main(["imaging", "phantom", "-o", str(folder), "--shape", "48", "--random-state", "1"]) == 0
    phantom = load_phantom(folder)
    assert phantom.labels.shape == (48, 48, 48)
    assert np.array_equal(phantom.labels, make_phantom((48, 48, 48), random_state=1).labels)
    cf = _counterfactual(factual, {"Hippocampus_L": 0.9})
    pd.concat([factual, factual]).to_csv(tmp_path / "factual.csv", index=False)
    pd.concat([factual, cf]).to_csv(tmp_path / "twins.csv", index=False)
    out = tmp_path / "edited.nii.gz"
    argv = ["masks", str(folder), "--volumes", str(tmp_path / "twins.csv"), "--reference",
            str(tmp_path / "factual.csv"), "--row", "1", "--rois", "Hippocampus_L", "-o", str(out)]
    assert main(["imaging", *argv]) == 0
    assert "Hippocampus_L" in capsys.readouterr().out
    labels, affine, _ = load_nifti(out)
    n = np.count_nonzero(phantom.labels == HIPPO_L)
    assert np.count_nonzero(labels == HIPPO_L) == round(n * 0.9)
    assert np.array_equal(affine, phantom.affine)
    # bad input: clean error, exit status 2
    assert main(["imaging", "masks", str(tmp_path), "--volumes", "x.csv", "-o", str(out)]) == 2
    assert "not a phantom folder" in capsys.readouterr().err
    assert main(["imaging", *argv[:-2], "--row", "5", "-o", str(out)]) == 2
    assert "out of range" in capsys.readouterr().err
