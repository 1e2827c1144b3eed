"""Phantom cohorts: seeded reproducibility, the diagnosis model, I/O, regeneration, network batches."""

import numpy as np
import pandas as pd
import pytest
import torch
from roisynth.imaging.cohort import (
    CHANGE_CODES,
    IMAGE_SCALE,
    SEGMENTER_CLASSES,
    PhantomCohort,
    classes_from_labels,
    make_cohort,
)
from roisynth.imaging.condition import MASK_CHANNELS, N_MASKS, condition_vector


@pytest.fixture(scope="module")
def tiny():
    return make_cohort(6, 16, random_state=3)


@pytest.fixture(scope="module")
def cohort32():
    return make_cohort(60, 32, random_state=0)


def test_reproducible_from_seeds(tiny):
    again = make_cohort(6, 16, random_state=3)
    prefix = make_cohort(4, 16, random_state=3)
    other = make_cohort(6, 16, random_state=4)
    pd.testing.assert_frame_equal(tiny.metadata, again.metadata)
    assert np.array_equal(tiny.images, again.images) and np.array_equal(tiny.labels, again.labels)
    # subject i's draws come from its own stream: a smaller cohort is a prefix of a larger one
    pd.testing.assert_frame_equal(tiny.metadata.iloc[:4], prefix.metadata)
    assert np.array_equal(tiny.images[:4], prefix.images)
    assert not tiny.metadata["seed"].isin(other.metadata["seed"]).any()
    assert tiny.images.dtype == np.float32 and tiny.labels.dtype == np.int16
    assert tiny.images.shape == tiny.labels.shape == (6, 16, 16, 16) and len(tiny) == 6
    assert tiny.voxel_volume == pytest.approx(16.0**3)


def test_metadata_follows_the_model(cohort32):
    meta = cohort32.metadata
    assert meta["age"].between(55, 90).all() and set(meta["sex"]) <= {"F", "M"}
    assert set(meta["diagnosis"]) == {"CN", "MCI", "AD"}
    assert (meta[[f"change_{c}" for c in CHANGE_CODES]] >= -0.6).all().all()
    # residual of the hippocampus change after the age and diagnosis terms: centred, SD 0.03
    shift = meta["diagnosis"].map({"CN": 0.0, "MCI": -0.08, "AD": -0.18})
    residual = meta["change_17"] - (-0.006 * (meta["age"] - 70) + shift)
    assert abs(residual.mean()) < 0.015 and 0.02 < residual.std() < 0.04
    assert np.allclose(meta["change_3"], -0.003 * (meta["age"] - 70) - meta["diagnosis"].map(
        {"CN": 0.0, "MCI": 0.02, "AD": 0.05}))


def test_diagnosis_effect_recovered_from_the_label_maps(cohort32):
    dx = cohort32.metadata["diagnosis"].to_numpy()
    medial_temporal = np.isin(cohort32.labels, (17, 53, 18, 54)).sum(axis=(1, 2, 3))
    ventricles = np.isin(cohort32.labels, (4, 43)).sum(axis=(1, 2, 3))
    assert medial_temporal[dx == "AD"].mean() < medial_temporal[dx == "MCI"].mean() < medial_temporal[dx == "CN"].mean()
    assert medial_temporal[dx == "AD"].mean() < 0.9 * medial_temporal[dx == "CN"].mean()
    assert ventricles[dx == "AD"].mean() > 1.1 * ventricles[dx == "CN"].mean()


def test_phantom_regenerates_the_stored_arrays(tiny, cohort32):
    # at 16³ small ROIs vanish from some subjects: their edit leaves them out, as make_cohort did
    lacking = [i for i in range(len(tiny)) if not np.isin(CHANGE_CODES, tiny.labels[i]).all()]
    assert lacking
    for cohort, i in ((tiny, lacking[0]), (tiny, 5), (cohort32, 7)):
        phantom = cohort.phantom(i)
        assert np.array_equal(phantom.image, cohort.images[i]) and np.array_equal(phantom.labels, cohort.labels[i])
        assert np.array_equal(phantom.affine, cohort.affine)
        assert np.allclose(phantom.posteriors.sum(0), 1, atol=1e-5)


def test_save_load_round_trip_is_exact(tiny, tmp_path):
    path = tiny.save(tmp_path / "cohort.npz")
    back = PhantomCohort.load(path)
    pd.testing.assert_frame_equal(back.metadata, tiny.metadata)
    for name in ("images", "labels", "affine"):
        loaded, original = getattr(back, name), getattr(tiny, name)
        assert np.array_equal(loaded, original) and loaded.dtype == original.dtype
    assert back.voxel_volume == tiny.voxel_volume


def test_masks_and_classes_partition_the_mask_channels(tiny):
    masks = tiny.masks(np.arange(len(tiny)))
    assert masks.shape == (6, N_MASKS, 16, 16, 16) and tiny.masks(0).shape == (N_MASKS, 16, 16, 16)
    assert set(np.unique(masks)) <= {0.0, 1.0} and masks.sum(axis=1).max() == 1
    classes = classes_from_labels(tiny.labels)
    assert classes.dtype == np.int64 and classes.max() < len(SEGMENTER_CLASSES) == N_MASKS + 1
    assert np.array_equal(classes > 0, masks.sum(axis=1) == 1)
    for c, (_, codes) in enumerate(MASK_CHANNELS, start=1):
        assert np.array_equal(classes == c, masks[:, c - 1] == 1)
        assert np.array_equal(classes == c, np.isin(tiny.labels, codes))


def test_batch_split_subset_and_conditions(tiny):
    batch = tiny.batch([4, 1])
    assert batch["image"].shape == (2, 1, 16, 16, 16) and batch["image"].dtype == torch.float32
    assert torch.equal(batch["image"][:, 0], torch.from_numpy(tiny.images[[4, 1]] / np.float32(IMAGE_SCALE)))
    assert batch["masks"].shape == (2, N_MASKS, 16, 16, 16) and batch["masks"].dtype == torch.float32
    assert torch.equal(batch["condition"], torch.from_numpy(tiny.conditions()[[4, 1]]))
    assert batch["labels"].dtype == torch.int64
    assert torch.equal(batch["labels"], torch.from_numpy(classes_from_labels(tiny.labels[[4, 1]])))
    assert np.array_equal(tiny.conditions(), condition_vector(tiny.metadata)) and tiny.conditions().shape == (6, 5)
    train, test = tiny.split(2, random_state=0)
    assert len(train) == 4 and len(test) == 2
    assert sorted([*train.metadata["subject"], *test.metadata["subject"]]) == sorted(tiny.metadata["subject"])
    i = int(tiny.metadata.index[tiny.metadata["subject"] == test.metadata["subject"][0]][0])
    assert np.array_equal(test.images[0], tiny.images[i]) and np.array_equal(test.phantom(0).labels, tiny.labels[i])
    with pytest.raises(ValueError, match="n_test"):
        tiny.split(6)
    with pytest.raises(ValueError, match="shape"):
        make_cohort(2, 4)
