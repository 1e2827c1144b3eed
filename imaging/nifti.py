r"""Reading and writing NIfTI volumes (nibabel), with affines kept exactly, and moving arrays
between grids by their affines.

Two arrays describe the same anatomy only where their voxels map to the same world (mm)
points: voxel index i of a grid with affine A sits at A (i, 1). An array on grid (A_s, shape_s)
goes onto grid (A_t, shape_t) by sampling it at the source indices

.. math::  i_s = M\, i_t, \qquad M = A_s^{-1} A_t

(:func:`resample_to`): nearest neighbour for label maps (no new code is ever invented), linear
or cubic interpolation for intensities. When M is a signed permutation with an integer
translation (the same voxels, stored flipped or with the axes in another order) the result is
an exact reordering. :func:`align_to` does this for an array that must share an image's grid and
says what it did; nothing is ever reinterpreted silently.
"""

from __future__ import annotations

import os
import warnings

import nibabel as nib
import numpy as np
from scipy import ndimage

from roisynth.utils.atomic import atomic_output


def load_nifti(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, nib.Nifti1Header]:
    """Read a NIfTI file: ``(array, affine, header)``.

    Integer-valued data come back as integers (``int16`` when the values fit, else
    ``int32``) -- label maps stored as floats, like SynthSeg's, included; other data as
    ``float32``. The affine is the file's (``float64``, 4 x 4).

    Parameters
    ----------
    path : str or path-like
        A ``.nii`` or ``.nii.gz`` file.

    Returns
    -------
    array : ndarray
        The voxel data (integer labels or ``float32`` intensities).
    affine : ndarray of shape (4, 4)
        Voxel to world (mm) transform.
    header : nibabel.Nifti1Header
        The file's header.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from roisynth.imaging import load_nifti, save_nifti
    >>> path = os.path.join(tempfile.mkdtemp(), "labels.nii.gz")
    >>> save_nifti(path, np.full((2, 2, 2), 17.0), np.diag([2.0, 2.0, 2.0, 1.0]))
    >>> array, affine, header = load_nifti(path)
    >>> array.dtype, int(array[0, 0, 0]), affine[0, 0]
    (dtype('int16'), 17, np.float64(2.0))
    """
    image = nib.load(os.fspath(path))
    data = np.asanyarray(image.dataobj)
    if not np.issubdtype(data.dtype, np.integer) and np.array_equal(data, np.round(data)):
        data = data.astype(np.int64)
    if np.issubdtype(data.dtype, np.integer):
        data = _label_dtype(data, refuse=False)
    else:
        data = data.astype(np.float32, copy=False)
    return data, np.array(image.affine, dtype=np.float64), image.header


def save_nifti(path: str | os.PathLike, array, affine, header=None) -> None:
    """Write ``array`` with ``affine`` (4 x 4) to ``path`` (``.nii`` or ``.nii.gz``).

    Integer arrays are stored as ``int16`` when their values fit, else ``int32``; values beyond
    ``int32`` are refused (a ``ValueError``), never wrapped. Others are stored as ``float32``
    (finite values beyond its range are refused too); ``header`` (e.g. from :func:`load_nifti`)
    supplies the other header fields. The affine is written as both qform and sform (code 1),
    with slope 1 and intercept 0. The file is written whole or not at all
    (:func:`roisynth.utils.atomic.atomic_output`).

    Parameters
    ----------
    path : str or path-like
        Destination, ``.nii`` or ``.nii.gz``.
    array : array-like
        Voxel data, 3-D or more.
    affine : array-like of shape (4, 4)
        Voxel to world (mm) transform.
    header : nibabel.Nifti1Header, default=None
        Header whose other fields are kept.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from roisynth.imaging import load_nifti, save_nifti
    >>> path = os.path.join(tempfile.mkdtemp(), "image.nii")
    >>> save_nifti(path, np.zeros((2, 3, 4)) + 0.5, np.eye(4))
    >>> load_nifti(path)[0].shape
    (2, 3, 4)
    """
    array = np.asarray(array)
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4):
        raise ValueError(f"affine must be 4 x 4, got shape {affine.shape}")
    if array.ndim < 3:
        raise ValueError(f"array must be 3D (or more), got shape {array.shape}")
    if np.issubdtype(array.dtype, np.integer) or array.dtype == bool:
        array = _label_dtype(array if array.dtype != bool else array.astype(np.int16), refuse=True)
    else:
        big = np.finfo(np.float32).max
        if array.size and np.nanmax(np.abs(np.where(np.isinf(array), 0, array))) > big:
            raise ValueError(f"array holds finite values beyond float32's range (±{big:.3g}); they would be "
                             f"written as inf: rescale the data first")
        array = array.astype(np.float32, copy=False)
    header = None if header is None else header.copy()
    image = nib.Nifti1Image(array, affine, header)
    image.set_data_dtype(array.dtype)
    image.header.set_slope_inter(1.0, 0.0)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    with atomic_output(path) as tmp:
        nib.save(image, tmp)


def voxel_volume(affine) -> float:
    """Volume of one voxel in mm³: ``|det(affine[:3, :3])|``.

    Parameters
    ----------
    affine : array-like of shape (4, 4)
        Voxel to world (mm) transform.

    Returns
    -------
    float
        The voxel volume in mm³.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.imaging import voxel_volume
    >>> voxel_volume(np.diag([2.0, 2.0, 1.5, 1.0]))
    6.0
    """
    return float(abs(np.linalg.det(np.asarray(affine, dtype=np.float64)[:3, :3])))


def _label_dtype(data: np.ndarray, refuse: bool) -> np.ndarray:
    """Integer data as int16 when its values fit, else int32; beyond int32: int64 (read) or a
    ``ValueError`` naming the values (``refuse``, for writing)."""
    if data.size == 0:
        return data.astype(np.int16)
    low, high = int(data.min()), int(data.max())
    for dtype in (np.int16, np.int32):
        if np.iinfo(dtype).min <= low and high <= np.iinfo(dtype).max:
            return data.astype(dtype, copy=False)
    if refuse:
        bad = low if low < np.iinfo(np.int32).min else high
        raise ValueError(f"label value {bad} does not fit the int32 written to NIfTI (range "
                         f"{np.iinfo(np.int32).min}..{np.iinfo(np.int32).max}); it would be stored as another "
                         f"label: recode the labels first")
    return data.astype(np.int64, copy=False)



def same_grid(shape_a, affine_a, shape_b, affine_b, atol: float = 1e-3) -> bool:
    """Whether two grids place the same voxels at the same world points (shapes equal, affines
    equal within ``atol`` mm; NIfTI stores affines in float32)."""
    return tuple(shape_a)[:3] == tuple(shape_b)[:3] and np.allclose(affine_a, affine_b, rtol=0, atol=atol)


def resample_to(array, affine, shape, target_affine, *, order: int = 0, cval: float = 0.0) -> np.ndarray:
    r"""``array`` (grid ``affine``) sampled on the grid (``shape``, ``target_affine``) by affine.

    Target voxel i_t takes the value at source index i_s = M i_t, M = A_s^{-1} A_t (module
    docstring); points outside the source get ``cval``. A signed-permutation M with an integer
    translation (a flip or an axis reorder of the same voxels) is an exact reordering whatever
    ``order``; otherwise ``scipy.ndimage.affine_transform`` interpolates (``order=0``: nearest
    neighbour, for label maps). Axes after the first three (e.g. posteriors' K) are carried.

    Parameters
    ----------
    array : array-like, shape (X, Y, Z, ...)
        The data on its grid.
    affine : array-like of shape (4, 4)
        Its voxel to world transform.
    shape : tuple of 3 int
        The target grid.
    target_affine : array-like of shape (4, 4)
        The target's voxel to world transform.
    order : int, default=0
        Spline order: 0 nearest neighbour (labels), 1 linear, 3 cubic (intensities).
    cval : float, default=0.0
        Value outside the source's field of view.

    Returns
    -------
    ndarray, shape (*shape, ...)
        ``array``'s values at the target voxels (its dtype).

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.imaging.nifti import resample_to
    >>> labels = np.arange(8).reshape(2, 2, 2)
    >>> flipped = np.diag([-1.0, 1.0, 1.0, 1.0])
    >>> flipped[0, 3] = 1.0  # the same voxels stored with the first axis reversed
    >>> np.array_equal(resample_to(labels, flipped, (2, 2, 2), np.eye(4)), labels[::-1])
    True
    """
    array = np.asarray(array)
    matrix = _index_map(affine, target_affine)
    shape = tuple(int(n) for n in shape)
    if _is_reordering(matrix):
        signed, offset = np.round(matrix[:3, :3]), np.round(matrix[:3, 3]).astype(int)
        source_axis = np.abs(signed).argmax(axis=0)  # target axis c reads source axis source_axis[c]
        index = [int(signed[s, c]) * np.arange(n) + offset[s] for c, (s, n) in enumerate(zip(source_axis, shape))]
        inside = [(i >= 0) & (i < array.shape[s]) for i, s in zip(index, source_axis)]
        moved = np.moveaxis(array, list(source_axis), [0, 1, 2])
        out = np.full((*shape, *array.shape[3:]), cval, dtype=array.dtype)
        out[np.ix_(*(np.flatnonzero(k) for k in inside))] = moved[np.ix_(*(i[k] for i, k in zip(index, inside)))]
        return out
    linear, offset = matrix[:3, :3], matrix[:3, 3]
    channels = array.reshape(*array.shape[:3], -1)
    out = np.stack([ndimage.affine_transform(channels[..., k], linear, offset, output_shape=shape, order=order,
                                             mode="constant", cval=cval) for k in range(channels.shape[-1])], -1)
    return out.reshape(*shape, *array.shape[3:])


def align_to(array, affine, shape, target_affine, *, name: str, order: int = 0) -> np.ndarray:
    """``array`` on the grid (``shape``, ``target_affine``): as it is when it already shares it,
    else :func:`resample_to` with a ``UserWarning`` naming ``name`` and what was done.

    Parameters
    ----------
    array : array-like, shape (X, Y, Z, ...)
        E.g. a label map read with its own affine.
    affine : array-like of shape (4, 4)
        Its affine.
    shape : tuple of 3 int
        The reference grid (e.g. the T1 image's).
    target_affine : array-like of shape (4, 4)
        The reference affine.
    name : str
        What ``array`` is, for the messages (e.g. a file name).
    order : int, default=0
        Interpolation when resampling (0 for labels).

    Returns
    -------
    ndarray
        ``array`` on the reference grid.

    Raises
    ------
    ValueError
        When no labelled (non-zero) voxel of ``array`` falls in the reference field of view.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> from roisynth.imaging.nifti import align_to
    >>> labels = np.zeros((4, 4, 4), dtype=np.int16)
    >>> labels[0, 1, 2] = 17
    >>> flipped = np.diag([-1.0, 1.0, 1.0, 1.0])
    >>> flipped[0, 3] = 3.0
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     aligned = align_to(labels, flipped, (4, 4, 4), np.eye(4), name="labels.nii.gz")
    >>> int(aligned[3, 1, 2]), "reordered" in str(caught[0].message)
    (17, True)
    """
    array = np.asarray(array)
    if same_grid(array.shape, affine, shape, target_affine):
        return array
    out = resample_to(array, affine, shape, target_affine, order=order)
    if np.any(array) and not np.any(out):
        raise ValueError(f"{name} does not overlap the image in world coordinates (its affine puts every "
                         f"labelled voxel outside the image's field of view): check that both come from one scan")
    exact = _is_reordering(_index_map(affine, target_affine))
    how = ("reordered exactly (the same voxels, axes flipped or permuted)" if exact
           else f"resampled by affine ({'nearest neighbour' if order == 0 else f'spline order {order}'})")
    warnings.warn(f"{name} is on another grid than the image (shape {array.shape[:3]} vs {tuple(shape)}, or a "
                  f"different affine): {how} onto the image's grid", UserWarning, stacklevel=2)
    return out


def _index_map(affine, target_affine) -> np.ndarray:
    """M = A_s^{-1} A_t: target voxel index -> source voxel index."""
    return np.linalg.solve(np.asarray(affine, dtype=np.float64), np.asarray(target_affine, dtype=np.float64))


def _is_reordering(matrix) -> bool:
    """Whether M is a signed permutation with an integer translation (no interpolation needed)."""
    signed = np.round(matrix[:3, :3])
    return bool(np.allclose(matrix[:3, :3], signed, atol=1e-6) and (np.abs(signed).sum(axis=0) == 1).all()
                and (np.abs(signed).sum(axis=1) == 1).all()
                and np.allclose(matrix[:3, 3], np.round(matrix[:3, 3]), atol=1e-4))
