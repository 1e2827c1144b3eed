"""A real subject: a T1 NIfTI and its label map, on one grid in world coordinates, and its
counterfactuals in its own space.

:func:`load_subject` reads a T1 image and a label map (SynthSeg, FreeSurfer aseg or aparc+aseg
codes) in any orientation; the label map is put on the image's grid by the two affines
(:func:`~roisynth.imaging.nifti.align_to`: reordered exactly when only the storage order differs,
else nearest neighbour, with a warning). :func:`counterfactual` applies relative ROI volume
changes with :func:`~roisynth.imaging.deformation.deform` on the subject's own grid, so the
output keeps the input's affine and header and can be written with
:func:`~roisynth.imaging.nifti.save_nifti`.

:func:`changes_to_targets` turns ``{"Hippocampus": -0.15}`` into target volumes: a name without
a side (``Hippocampus``, ``LateralVentricle``) means both ``_L`` and ``_R``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

import nibabel as nib
import numpy as np

from .labels import roi_codes
from .masks import _roi_code
from .nifti import align_to, load_nifti, voxel_volume


@dataclasses.dataclass(frozen=True)
class Subject:
    """A T1 image and its label map on the image's grid.

    Parameters
    ----------
    image : ndarray of float32, shape (X, Y, Z)
        The T1 image as stored (no reorientation).
    labels : ndarray of int, shape (X, Y, Z)
        The label map on the image's grid.
    affine : ndarray of shape (4, 4)
        The image's voxel -> world (mm) transform.
    header : nibabel.Nifti1Header or None
        The image's header (kept when writing outputs).
    """

    image: np.ndarray
    labels: np.ndarray
    affine: np.ndarray
    header: nib.Nifti1Header | None = None


def load_subject(image: str | os.PathLike, labels: str | os.PathLike) -> Subject:
    """Read a T1 image and its label map; the label map goes onto the image's grid by affine.

    Parameters
    ----------
    image : str or path-like
        A T1 NIfTI (any orientation, any voxel size).
    labels : str or path-like
        Its label map (FreeSurfer / SynthSeg codes), on any grid that overlaps the image in
        world coordinates.

    Returns
    -------
    Subject

    Raises
    ------
    ValueError
        When the image is not 3D, the label map is not integer-valued, or they do not overlap.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from roisynth.imaging import make_phantom, save_nifti
    >>> from roisynth.imaging.subject import load_subject
    >>> phantom, folder = make_phantom((32, 32, 32), random_state=0), tempfile.mkdtemp()
    >>> save_nifti(os.path.join(folder, "t1.nii.gz"), phantom.image, phantom.affine)
    >>> save_nifti(os.path.join(folder, "aseg.nii.gz"), phantom.labels, phantom.affine)
    >>> subject = load_subject(os.path.join(folder, "t1.nii.gz"), os.path.join(folder, "aseg.nii.gz"))
    >>> bool((subject.labels == phantom.labels).all())
    True
    """
    array, affine, header = load_nifti(image)
    if array.ndim != 3:
        raise ValueError(f"{image} must be a 3D image, got shape {array.shape}")
    codes, codes_affine, _ = load_nifti(labels)
    if not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(f"{labels} is not a label map: its values are not integers")
    codes = align_to(codes, codes_affine, array.shape, affine, name=str(labels))
    return Subject(array.astype(np.float32), codes, affine, header)


def changes_to_targets(labels, changes: Mapping[int | str, float], voxel: float) -> dict[int, float]:
    """``{ROI: relative change}`` -> ``{code: target mm³}`` = (1 + change) × the ROI's volume.

    A name without a side that has ``_L`` and ``_R`` codes (``"Hippocampus"``) stands for both.

    Parameters
    ----------
    labels : array-like of int
        The label map.
    changes : mapping of int or str to float
        ROI (code, name, or bilateral name) -> relative change (> -1), e.g. -0.15.
    voxel : float
        Voxel volume in mm³.

    Returns
    -------
    dict of int to float

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.imaging.subject import changes_to_targets
    >>> labels = np.array([17, 17, 53, 53, 4]).reshape(5, 1, 1)
    >>> changes_to_targets(labels, {"Hippocampus": -0.5, 4: 1.0}, voxel=2.0)
    {17: 2.0, 53: 2.0, 4: 4.0}
    """
    labels = np.asarray(labels)
    targets = {}
    for roi, change in changes.items():
        if not (np.isfinite(change) and change > -1):
            raise ValueError(f"change of ROI {roi!r} must be a number > -1, got {change!r}")
        sides = [f"{roi}_L", f"{roi}_R"] if isinstance(roi, str) and f"{roi}_L" in roi_codes() else [roi]
        for side in sides:
            code = _roi_code(side)
            targets[code] = (1 + float(change)) * float(np.count_nonzero(labels == code)) * voxel
    return targets


def counterfactual(subject: Subject, changes: Mapping[int | str, float], **deform_options):
    """The subject's image and label map with each ROI of ``changes`` resized, in its own space.

    A training-free deformation (:func:`~roisynth.imaging.deformation.deform`) on the subject's
    own grid: the outputs share the input's affine, and nothing outside the moving band changes.

    Parameters
    ----------
    subject : Subject
        From :func:`load_subject` (or built from arrays).
    changes : mapping of int or str to float
        ROI -> relative volume change (:func:`changes_to_targets`), e.g.
        ``{"Hippocampus": -0.15, "LateralVentricle": 0.2}``.
    **deform_options
        Passed to :func:`~roisynth.imaging.deformation.deform` (``margin``, ``csf``, ``order``...).

    Returns
    -------
    Deformation
        Its ``image`` and ``labels`` are on the subject's grid (``subject.affine``).
    """
    from .deformation import deform

    targets = changes_to_targets(subject.labels, changes, voxel_volume(subject.affine))
    return deform(subject.image, subject.labels, targets, affine=subject.affine, **deform_options)
