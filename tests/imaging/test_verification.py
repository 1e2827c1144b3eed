"""Verification: the segmenter (trained briefly on a 32³ cohort), similarity, locality, volume
agreement, calibration, feature distances, and the counterfactual evaluation on a known fake."""

import numpy as np
import pandas as pd
import pytest
import torch
from roisynth.imaging.cohort import (
    classes_from_labels,
    make_cohort,
    phantom_with_changes,
)
from roisynth.imaging.condition import MASK_CHANNELS
from roisynth.imaging.config import get_config
from roisynth.imaging.masks import edit_masks
from roisynth.imaging.phantoms import make_phantom
from roisynth.imaging.segmenter import SEGMENTER_CLASSES, Segmenter
from roisynth.imaging.verification import (
    calibrate_segmenter,
    edit_band,
    evaluate_counterfactuals,
    feature_fid,
    image_mmd,
    locality,
    ms_ssim3d,
    ssim3d,
    volume_agreement,
)
from scipy import ndimage

LARGE = ("CSF", "Cortex", "White_Matter")


@pytest.fixture(scope="module")
def cohort():
    return make_cohort(24, 32, random_state=1)


@pytest.fixture(scope="module")
def trained(cohort):
    """A segmenter after 240 plain Adam steps (batches of 2) on 20 subjects (~26 s of CPU); 4 held out."""
    torch.manual_seed(0)
    train, test = cohort.split(4, random_state=0)
    segmenter = Segmenter(get_config("32").replace(segmenter_channels=(8, 16, 32)))
    optimizer = torch.optim.Adam(segmenter.parameters(), lr=5e-3)
    rng = np.random.default_rng(0)
    for _ in range(240):
        loss = segmenter.loss(train.batch(rng.choice(len(train), 2, replace=False)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return segmenter, test


def test_segmenter_dice_on_held_out_large_classes(trained):
    segmenter, test = trained
    proba = segmenter.predict_proba(test.images)
    assert proba.shape == (4, len(SEGMENTER_CLASSES), 32, 32, 32) and np.allclose(proba.sum(1), 1, atol=1e-5)
    predicted, truth = proba.argmax(1), classes_from_labels(test.labels)
    for name in LARGE:
        c = SEGMENTER_CLASSES.index(name)
        dice = 2 * ((predicted == c) & (truth == c)).sum() / ((predicted == c).sum() + (truth == c).sum())
        assert dice > 0.7, (name, dice)


def test_soft_volumes_track_the_truth(trained):
    segmenter, test = trained
    volumes = segmenter.volumes(test.images, test.voxel_volume)
    assert list(volumes.columns) == [name for name, _ in MASK_CHANNELS] and len(volumes) == 4
    for name in LARGE:
        codes = dict(MASK_CHANNELS)[name]
        true = np.isin(test.labels, codes).sum(axis=(1, 2, 3)) * test.voxel_volume
        assert np.all(np.abs(volumes[name] / true - 1) < 0.25), (name, volumes[name].to_numpy() / true)
    one = segmenter.volumes(test.images[0], test.voxel_volume)
    assert np.allclose(one.to_numpy(), volumes.iloc[[0]].to_numpy(), rtol=1e-4)


def test_segmenter_features_and_save_load(trained, tmp_path):
    segmenter, test = trained
    features = segmenter.features(test.images)
    assert features.shape == (4, 32) and np.isfinite(features).all()
    back = Segmenter.load(segmenter.save(tmp_path / "segmenter"))
    assert back.config == segmenter.config
    assert np.array_equal(back.predict_proba(test.images[:2]), segmenter.predict_proba(test.images[:2]))
    assert np.array_equal(back.features(test.images), features)
    assert segmenter.training  # the numpy helpers restore the training mode
    with pytest.raises(ValueError, match="images"):
        segmenter.predict_proba(test.images[0, 0])


class LookupSegmenter:
    """Fake segmenter that knows the label map of each image it will see (by the image's bytes)
    and reports ``gain`` × the true channel volumes: its calibration slope is ``gain``."""

    def __init__(self, phantoms, gain):
        self.labels = {p.image.tobytes(): p.labels for p in phantoms}
        self.gain = gain

    def volumes(self, images, voxel_volume):
        rows = [[self.gain * np.isin(self.labels[x.tobytes()], codes).sum() * voxel_volume
                 for _, codes in MASK_CHANNELS]
                for x in images]
        return pd.DataFrame(rows, columns=list(SEGMENTER_CLASSES[1:]))


def test_calibration_recovers_a_known_gain():
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(5).spawn(3)]
    phantoms = [phantom_with_changes((32,) * 3, seed, changes) for seed in seeds
                for changes in ({}, {17: -0.3, 53: -0.3, 18: -0.3, 54: -0.3})]
    slopes = calibrate_segmenter(LookupSegmenter(phantoms, 0.8), 32, n=3, change=-0.3, random_state=5)
    assert list(slopes.index) == ["Hippocampus_L", "Hippocampus_R", "Amygdala_L", "Amygdala_R", "pooled"]
    assert np.allclose(slopes, 0.8)
    with pytest.raises(ValueError, match="MASK_CHANNELS"):
        calibrate_segmenter(LookupSegmenter(phantoms, 1.0), 32, rois=(999,))


def test_trained_segmenter_sees_ventricle_growth(trained):
    segmenter, _ = trained
    slopes = calibrate_segmenter(segmenter, 32, n=3, change=0.6, rois=("LateralVentricle_L", 43), random_state=0)
    assert list(slopes.index) == ["LateralVentricle_L", "LateralVentricle_R", "pooled"]
    assert 0.1 < slopes["pooled"] < 2.0


def test_ssim_is_one_on_itself_and_falls_with_noise():
    image = make_phantom((32, 32, 32), random_state=0).image
    rng = np.random.default_rng(0)
    noisy = [image + rng.normal(0, sd, image.shape).astype(np.float32) for sd in (2, 8, 32)]
    for metric in (ssim3d, ms_ssim3d):
        assert metric(image, image) == pytest.approx(1.0, abs=1e-5)
        values = [metric(image, x, data_range=float(np.ptp(image))) for x in noisy]
        assert values[0] > values[1] > values[2], (metric.__name__, values)
        batch = metric(np.stack([image, image]), np.stack(noisy[:2]), data_range=float(np.ptp(image)))
        assert np.allclose(batch, values[:2], atol=1e-5)
    small = make_phantom((16, 16, 16), random_state=0).image
    assert ms_ssim3d(small, small) == pytest.approx(1.0, abs=1e-5)  # 3 scales, 3-voxel window at 4³
    with pytest.raises(ValueError, match="coarsest"):
        ms_ssim3d(small, small, scales=5)
    with pytest.raises(ValueError, match="shape"):
        ssim3d(image, small)


def test_edit_band_and_locality_of_a_local_change():
    phantom = make_phantom((32, 32, 32), random_state=1)
    targets = {code: 1.8 * (phantom.labels == code).sum() * 512.0 for code in (17, 53)}
    edited = edit_masks(phantom.labels, None, targets, voxel_volume=512.0).labels
    changed = edited != phantom.labels
    assert np.array_equal(edit_band(phantom.labels, edited, dilation=0), changed)
    band = edit_band(phantom.labels, edited, dilation=2)
    distance = ndimage.distance_transform_cdt(~changed, metric="chessboard")
    assert np.array_equal(band, distance <= 2)
    # a "counterfactual" whose change decays smoothly away from the edit, on top of weak global noise
    rng = np.random.default_rng(0)
    bump = 40.0 * np.exp(-ndimage.distance_transform_edt(~changed) ** 2 / 2)
    cf = phantom.image + bump + rng.normal(0, 0.5, phantom.image.shape)
    result = locality(cf, phantom.image, band)
    assert result["ratio"] < 1 / 3 and result["inside"] > 3 * result["outside"]
    assert result["outside"] == pytest.approx(np.abs(cf - phantom.image)[~band].mean())
    with pytest.raises(ValueError, match="band"):
        locality(cf, phantom.image, np.zeros_like(band))


def test_volume_agreement_relative_errors():
    intended = pd.DataFrame({"a": [-100.0, -200.0, 50.0], "b": [-10.0, 0.0, -40.0]})
    measured = pd.DataFrame({"a": [-200.0, -300.0, 100.0], "b": [-10.0, 5.0, -20.0]})
    result = volume_agreement(measured, intended, calibration=2.0)
    expected = np.array([[0.0, 0.25, 0.0], [0.5, np.nan, 0.75]]).T
    assert np.allclose(result["error"].to_numpy(), expected, equal_nan=True)
    assert result["median"] == pytest.approx(0.25) and result["within_25"] == pytest.approx(0.6)
    per_roi = volume_agreement(measured, intended.to_numpy(), calibration={"a": 2.0, "b": 1.0})
    assert np.allclose(per_roi["error"]["b"], [0.0, np.nan, 0.5], equal_nan=True)
    with pytest.raises(ValueError, match="shape"):
        volume_agreement(measured, intended.iloc[:2])
    with pytest.raises(ValueError, match="lacks"):
        volume_agreement(measured, intended, calibration={"a": 1.0})


def test_feature_fid_and_mmd_detect_a_shift():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, (200, 4)), rng.normal(0, 1, (200, 4))
    shift = np.array([1.0, 0.0, 0.0, 0.0])
    assert feature_fid(a, a) == pytest.approx(0.0, abs=1e-8)
    assert feature_fid(a, a + shift) == pytest.approx(1.0, rel=1e-6)  # same covariance: ‖Δμ‖²
    assert feature_fid(a, b + 2 * shift) > 10 * feature_fid(a, b)
    assert image_mmd(a, b + 2 * shift) > 10 * abs(image_mmd(a, b))
    images = rng.normal(0, 1, (12, 8, 8, 8))
    assert image_mmd(images[:6], images[:6] + 1, factor=4) > 10 * abs(image_mmd(images[:6], images[6:], factor=4))
    with pytest.raises(ValueError, match="factor"):
        image_mmd(images[:6], images[6:], factor=3)


def _coded(labels):
    """The fakes' image code: segmenter class c painted as 20 c + 10."""
    return (20.0 * classes_from_labels(labels) + 10.0).astype(np.float32)


class PaintingModel:
    """Fake diffusion model: the counterfactual is the *target* label map painted with one
    intensity per segmenter class (:func:`_coded`), whatever the input image. Records its calls."""

    def __init__(self):
        self.calls = []

    def counterfactual(self, mri, masks_factual, masks_cf, metadata, metadata_cf, steps=None):
        self.calls.append((masks_factual, masks_cf, metadata, metadata_cf, steps))
        return _coded(masks_cf)


class ReadingSegmenter:
    """Fake segmenter that reads the painted classes back exactly (voxel counts × volume);
    features: per-image mean and SD."""

    def volumes(self, images, voxel_volume):
        classes = np.rint((np.asarray(images) - 10.0) / 20.0)
        counts = [[(x == c).sum() * voxel_volume for c in range(1, len(SEGMENTER_CLASSES))] for x in classes]
        return pd.DataFrame(counts, columns=list(SEGMENTER_CLASSES[1:]))

    def features(self, images):
        images = np.asarray(images, dtype=np.float64)
        return np.column_stack([images.mean(axis=(1, 2, 3)), images.std(axis=(1, 2, 3))])


def test_evaluate_counterfactuals_on_a_known_fake(cohort):
    model, segmenter = PaintingModel(), ReadingSegmenter()
    held_out = cohort.subset(np.arange(3))
    table, summary = evaluate_counterfactuals(model, segmenter, held_out, change=-0.25, steps=4,
                                              rois=("Hippocampus_L", "Hippocampus_R"))
    assert len(table) == 3 and len(model.calls) == 6
    vv = held_out.voxel_volume
    for i in range(3):
        (labels, labels_cf, meta, meta_cf, steps), null_call = model.calls[2 * i], model.calls[2 * i + 1]
        assert meta_cf == {**meta, "diagnosis": "AD"} and meta["diagnosis"] == held_out.metadata["diagnosis"][i]
        assert null_call[1] is null_call[0] and null_call[2] == null_call[3] == meta and steps == 4
        for code, roi in ((17, "Hippocampus_L"), (53, "Hippocampus_R")):
            n = (labels == code).sum()
            assert (labels_cf == code).sum() == round(0.75 * n)
            assert table[f"{roi}_intended"][i] == pytest.approx((round(0.75 * n) - n) * vv) and round(0.75 * n) < n
            # the fake segmenter reads the painted edit exactly: no volume error
            assert table[f"{roi}_measured"][i] == pytest.approx(table[f"{roi}_intended"][i])
            assert table[f"{roi}_error"][i] == pytest.approx(0, abs=1e-9)
        band = edit_band(labels, labels_cf)
        jump = np.abs(_coded(labels_cf) - _coded(labels))
        assert table["outside"][i] == 0 and table["locality_ratio"][i] == 0
        assert table["inside"][i] == pytest.approx(jump.sum() / band.sum())
        assert table["null_ssim"][i] == pytest.approx(ssim3d(_coded(labels), held_out.images[i]), abs=1e-6)
        assert table["ms_ssim"][i] == pytest.approx(ms_ssim3d(_coded(labels_cf), held_out.images[i]), abs=1e-6)
    assert summary["volume_error_median"] == pytest.approx(0, abs=1e-9) and summary["volume_within_25"] == 1
    assert summary["locality_ratio"] == 0
    assert summary["null_ssim"] == pytest.approx(table["null_ssim"].mean()) and summary["seconds_per_volume"] >= 0
    generated = np.stack([_coded(call[1]) for call in model.calls[::2]])
    assert summary["fid_segmenter_features"] == pytest.approx(
        feature_fid(segmenter.features(held_out.images), segmenter.features(generated)))
    assert summary["mmd_images"] == pytest.approx(image_mmd(held_out.images, generated))
    calibrated, _ = evaluate_counterfactuals(PaintingModel(), segmenter, held_out, n_subjects=1, change=-0.25,
                                             rois=("Hippocampus_L",), calibration={"Hippocampus_L": 2.0})
    assert calibrated["Hippocampus_L_error"][0] == pytest.approx(0.5)
    for rois in (("Cortex",), ("CSF",)):
        with pytest.raises(ValueError, match="single-label"):
            evaluate_counterfactuals(model, segmenter, held_out, rois=rois)
