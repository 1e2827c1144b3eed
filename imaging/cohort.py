r"""Phantom cohorts with metadata: the training data of the mask-guided diffusion pipeline.

Subject i of :func:`make_cohort` draws its metadata from its own seeded stream
(``SeedSequence(random_state).spawn(n)[i]``, so a cohort of n subjects is the first n of any
larger one with the same ``random_state``):

- age a ~ U(55, 90) years, sex F/M with probability 1/2 each, diagnosis d ∈ {CN, MCI, AD} with
  probabilities (0.4, 0.3, 0.3);
- relative volume changes (FreeSurfer codes; δ_CN = 0, and ε ~ N(0, s²) drawn per ROI)

  ===========================  ======================================================
  hippocampus 17/53,           c = -0.006 (a - 70) - δ_d + ε,  δ = (0, .08, .18), s = .03
  amygdala 18/54
  lateral ventricles 4/43      c = +0.020 (a - 70) + δ_d + ε,  δ = (0, .10, .25), s = .05
  cortex 3/42                  c = -0.003 (a - 70) - δ_d,      δ = (0, .02, .05)
  ===========================  ======================================================

  clipped to c ≥ -0.6;
- the phantom ``make_phantom((shape,)*3, volume_changes=c, random_state=seed_i)``, whose seed
  is drawn from the same stream. A ROI absent from a small grid (the hippocampi and amygdalae
  can vanish at 16³) is left out of that subject's edit; ``metadata`` keeps the requested c.

Images enter every network as ``image / IMAGE_SCALE`` (:meth:`PhantomCohort.batch`); the
segmenter's classes (:data:`SEGMENTER_CLASSES`) are the mask channels' groups.
"""

from __future__ import annotations

import json
import numbers
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from roisynth.utils.validation import check_count

from . import nifti
from .condition import (
    DIAGNOSES,
    IMAGE_SCALE,
    MASK_CHANNELS,
    SEXES,
    condition_vector,
    masks_from_labels,
)
from .phantoms import Phantom, make_phantom

SEGMENTER_CLASSES: tuple[str, ...] = ("Other", *(name for name, _ in MASK_CHANNELS))
"""Segmenter classes: 0 = every voxel outside the mask channels, c = ``MASK_CHANNELS[c - 1]``."""

AGE_RANGE = (55.0, 90.0)
DIAGNOSIS_PROBABILITIES = (0.4, 0.3, 0.3)

# (codes, age slope per year, shift per diagnosis CN/MCI/AD, noise SD): c = slope (a - 70) + shift_d + N(0, sd²)
VOLUME_MODEL: tuple[tuple[tuple[int, ...], float, tuple[float, float, float], float], ...] = (
    ((17, 53, 18, 54), -0.006, (0.0, -0.08, -0.18), 0.03),
    ((4, 43), 0.02, (0.0, 0.10, 0.25), 0.05),
    ((3, 42), -0.003, (0.0, -0.02, -0.05), 0.0),
)
"""The cohort's volume model (see the module docstring)."""

MIN_CHANGE = -0.6
CHANGE_CODES: tuple[int, ...] = tuple(code for codes, *_ in VOLUME_MODEL for code in codes)


def classes_from_labels(labels) -> np.ndarray:
    """Segmenter class of every voxel of a label map: the segmenter's training target.

    Class c ≥ 1 is the group of FreeSurfer codes of ``MASK_CHANNELS[c - 1]``
    (:data:`SEGMENTER_CLASSES` names them); every other label, background included, is class 0
    (``"Other"``). The mask channels do not overlap, so each voxel has one class.

    Parameters
    ----------
    labels : array_like of int
        A label map, or a batch of them (any shape).

    Returns
    -------
    ndarray of int64
        Classes in 0 .. len(SEGMENTER_CLASSES) - 1, of ``labels``' shape.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.imaging.cohort import SEGMENTER_CLASSES, classes_from_labels
    >>> classes = classes_from_labels(np.array([0, 17, 53, 24, 3, 42, 2, 41, 10]))
    >>> print(classes)
    [0 1 2 7 8 8 9 9 0]
    >>> [SEGMENTER_CLASSES[c] for c in classes[:4]]
    ['Other', 'Hippocampus_L', 'Hippocampus_R', 'CSF']
    """
    labels = np.asarray(labels)
    classes = np.zeros(labels.shape, dtype=np.int64)
    for c, (_, codes) in enumerate(MASK_CHANNELS, start=1):
        classes[np.isin(labels, codes)] = c
    return classes


@dataclass
class PhantomCohort:
    """N phantom subjects on one grid, made by :func:`make_cohort`.

    Parameters
    ----------
    metadata : DataFrame
        One row per subject (``subject``, ``seed``, ``age``, ``sex``, ``diagnosis``,
        ``change_<code>`` the requested relative volume changes).
    images : ndarray of float32, shape (N, X, Y, Z)
        Images in phantom units.
    labels : ndarray of int16, shape (N, X, Y, Z)
        FreeSurfer label maps.
    affine : ndarray of shape (4, 4)
        The shared voxel -> mm map.
    voxel_volume : float
        mm³ per voxel.

    Examples
    --------
    >>> from roisynth.imaging import make_cohort
    >>> cohort = make_cohort(2, shape=16, random_state=0)
    >>> len(cohort), cohort.shape, cohort.images.dtype
    (2, (16, 16, 16), dtype('float32'))
    """

    metadata: pd.DataFrame
    images: np.ndarray
    labels: np.ndarray
    affine: np.ndarray
    voxel_volume: float

    def __len__(self) -> int:
        return len(self.metadata)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def subset(self, idx) -> PhantomCohort:
        """The subjects ``idx`` (positions), re-indexed 0 .. len - 1."""
        idx = np.atleast_1d(np.arange(len(self))[idx])
        return PhantomCohort(self.metadata.iloc[idx].reset_index(drop=True), self.images[idx], self.labels[idx],
                             self.affine, self.voxel_volume)

    def split(self, n_test: int, random_state=0) -> tuple[PhantomCohort, PhantomCohort]:
        """(train, test): ``n_test`` subjects drawn at random (seeded) for test, the rest for
        training, each in cohort order."""
        if isinstance(n_test, bool) or not isinstance(n_test, numbers.Integral) or not 0 < n_test < len(self):
            raise ValueError(f"n_test must be an integer in [1, {len(self) - 1}], got {n_test!r}")
        test = np.zeros(len(self), bool)
        test[np.random.default_rng(random_state).permutation(len(self))[:n_test]] = True
        return self.subset(np.flatnonzero(~test)), self.subset(np.flatnonzero(test))

    def conditions(self) -> np.ndarray:
        """(N, 5) metadata condition rows (:func:`~roisynth.imaging.condition.condition_vector`)."""
        return condition_vector(self.metadata)

    def masks(self, idx) -> np.ndarray:
        """Mask channels of the subjects ``idx``: (C, X, Y, Z) for one, (B, C, X, Y, Z) for many."""
        return masks_from_labels(self.labels[idx])

    def changes(self, i: int) -> dict[int, float]:
        """Requested relative volume changes of subject ``i`` ({code: c})."""
        return _changes(self.metadata.iloc[i])

    def phantom(self, i: int) -> Phantom:
        """Subject ``i``'s full :class:`~roisynth.imaging.phantoms.Phantom` (posteriors included),
        regenerated from its seed and changes: its image and labels are the stored ones."""
        return phantom_with_changes(self.shape, int(self.metadata["seed"].iloc[i]), self.changes(i))

    def batch(self, idx) -> dict[str, torch.Tensor]:
        """Network inputs of the subjects ``idx``: ``image`` (B, 1, X, Y, Z) float32 (scaled by
        1 / :data:`IMAGE_SCALE`), ``masks`` (B, C, X, Y, Z) float32, ``condition`` (B, 5)
        float32 and ``labels`` (B, X, Y, Z) int64 segmenter classes."""
        idx = np.atleast_1d(np.arange(len(self))[idx])
        return {
            "image": torch.from_numpy(self.images[idx] / np.float32(IMAGE_SCALE)).unsqueeze(1),
            "masks": torch.from_numpy(masks_from_labels(self.labels[idx])),
            "condition": torch.from_numpy(condition_vector(self.metadata.iloc[idx])),
            "labels": torch.from_numpy(classes_from_labels(self.labels[idx])),
        }

    def save(self, path: str | os.PathLike) -> Path:
        """Write one ``.npz`` (arrays, and the metadata as a JSON string); returns the path."""
        path = Path(path)
        table = {column: self.metadata[column].tolist() for column in self.metadata.columns}
        info = json.dumps({"columns": list(self.metadata.columns), "table": table, "voxel_volume": self.voxel_volume})
        with open(path, "wb") as handle:
            np.savez(handle, images=self.images, labels=self.labels, affine=self.affine, info=np.array(info))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> PhantomCohort:
        """Read a cohort written by :meth:`save` (no pickle)."""
        with np.load(path, allow_pickle=False) as data:
            info = json.loads(str(data["info"]))
            metadata = pd.DataFrame(info["table"], columns=info["columns"])
            return cls(metadata, data["images"], data["labels"], data["affine"], float(info["voxel_volume"]))


def make_cohort(n: int, shape: int = 64, random_state: int | None = 0, *, n_jobs: int = 1) -> PhantomCohort:
    """``n`` phantom subjects on a ``shape``³ grid with metadata-driven ROI volumes.

    See the module docstring for the model. ``n_jobs`` > 1 builds the phantoms in joblib
    processes.

    Parameters
    ----------
    n : int
        Number of subjects.
    shape : int, default=64
        Side of the cubic grid (at least 8).
    random_state : int or None, default=0
        Non-negative seed of the metadata and phantoms.
    n_jobs : int, default=1
        joblib processes building the phantoms.

    Returns
    -------
    PhantomCohort
        Metadata, images and label maps.

    Examples
    --------
    >>> from roisynth.imaging import make_cohort
    >>> cohort = make_cohort(2, shape=16, random_state=0)
    >>> list(cohort.metadata.columns[:5])
    ['subject', 'seed', 'age', 'sex', 'diagnosis']
    """
    check_count(n, "n")
    if isinstance(shape, bool) or not isinstance(shape, numbers.Integral) or shape < 8:
        raise ValueError(f"shape must be an integer >= 8 (the grid is shape³), got {shape!r}")
    if random_state is not None and (isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral)
                                     or random_state < 0):
        raise ValueError(f"random_state must be a non-negative int or None, got {random_state!r}")
    rows = [_draw_subject(i, child) for i, child in enumerate(np.random.SeedSequence(random_state).spawn(n))]
    grid = (int(shape),) * 3
    jobs = [(grid, row["seed"], _changes(row)) for row in rows]
    if n_jobs == 1:
        phantoms = [phantom_with_changes(*job) for job in jobs]
    else:
        from joblib import Parallel, delayed

        phantoms = Parallel(n_jobs=n_jobs)(delayed(phantom_with_changes)(*job) for job in jobs)
    affine = phantoms[0].affine
    return PhantomCohort(pd.DataFrame(rows), np.stack([p.image for p in phantoms]),
                         np.stack([p.labels for p in phantoms]), affine, nifti.voxel_volume(affine))


def _draw_subject(i: int, sequence: np.random.SeedSequence) -> dict:
    meta_stream, phantom_stream = sequence.spawn(2)
    rng = np.random.default_rng(meta_stream)
    age = float(rng.uniform(*AGE_RANGE))
    sex = SEXES[int(rng.integers(2))]
    d = int(rng.choice(len(DIAGNOSES), p=DIAGNOSIS_PROBABILITIES))
    row = {"subject": f"sub-{i:04d}", "seed": int(phantom_stream.generate_state(1)[0]), "age": age, "sex": sex,
           "diagnosis": DIAGNOSES[d]}
    for codes, slope, shifts, sd in VOLUME_MODEL:
        for code in codes:
            change = slope * (age - 70.0) + shifts[d] + rng.normal(0.0, sd)
            row[f"change_{code}"] = max(float(change), MIN_CHANGE)
    return row


def _changes(row) -> dict[int, float]:
    return {code: float(row[f"change_{code}"]) for code in CHANGE_CODES}


def phantom_with_changes(grid, seed: int, changes: dict[int, float]) -> Phantom:
    """``make_phantom(grid, volume_changes=changes, random_state=seed)``, skipping absent ROIs.

    When :func:`~roisynth.imaging.phantoms.make_phantom` rejects ``changes``, the ROIs absent
    from that seed's unedited anatomy are left out of ``changes`` (small grids lose small ROIs:
    the hippocampi and amygdalae can vanish at 16³) and the phantom is made with the rest.
    The same (grid, seed, changes) always gives the same phantom: this regenerates the
    subjects of :func:`make_cohort` (:meth:`PhantomCohort.phantom`).

    Parameters
    ----------
    grid : tuple of int
        Shape of the phantom, e.g. ``(32, 32, 32)``.
    seed : int
        ``random_state`` of the phantom.
    changes : dict of int to float
        Relative volume change c (> -1) of each FreeSurfer code: the ROI gets (1 + c) × its
        volume.

    Returns
    -------
    Phantom
        The edited phantom (image, labels, posteriors, affine).

    Raises
    ------
    ValueError
        If ``make_phantom`` rejects the changes for another reason than an absent ROI (every
        ROI present, an invalid change, a growth that does not fit, ...).

    Examples
    --------
    >>> from roisynth.imaging import make_phantom
    >>> from roisynth.imaging.cohort import phantom_with_changes
    >>> before = make_phantom((16, 16, 16), random_state=0)
    >>> after = phantom_with_changes((16, 16, 16), 0, {17: -0.2, 3: -0.1})  # no hippocampus 17 at 16³
    >>> int((before.labels == 17).sum()), int((before.labels == 3).sum()), int((after.labels == 3).sum())
    (0, 42, 38)
    """
    try:
        return make_phantom(grid, volume_changes=changes, random_state=seed)
    except ValueError:
        present = set(np.unique(make_phantom(grid, random_state=seed).labels).tolist())
        kept = {code: change for code, change in changes.items() if code in present}
        if kept == changes:
            raise
        return make_phantom(grid, volume_changes=kept, random_state=seed)
