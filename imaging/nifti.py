"""Reading and writing NIfTI volumes (nibabel), with affines kept exactly."""

from __future__ import annotations

import os

import nibabel as nib
import numpy as np

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
        data = _label_dtype(data)
    else:
        data = data.astype(np.float32, copy=False)
    return data, np.array(image.affine, dtype=np.float64), image.header


def save_nifti(path: str | os.PathLike, array, affine, header=None) -> None:
    """Write ``array`` with ``affine`` (4 x 4) to ``path`` (``.nii`` or ``.nii.gz``).

    Integer arrays are stored as ``int16`` when their values fit (else ``int32``), others as
    ``float32``; ``header`` (e.g. from :func:`load_nifti`) supplies the other header fields.
    The affine is written as both qform and sform (code 1), with slope 1 and intercept 0. The
    file is written whole or not at all (:func:`roisynth.utils.atomic.atomic_output`).

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
        array = _label_dtype(array.astype(np.int64, copy=False))
    else:
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


def _label_dtype(data: np.ndarray) -> np.ndarray:
    small = data.size == 0 or (data.min() >= np.iinfo(np.int16).min and data.max() <= np.iinfo(np.int16).max)
    return data.astype(np.int16 if small else np.int32, copy=False)
