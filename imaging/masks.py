"""Counterfactual Mask Generator: edit ROI masks of a label map to exact target volumes.

After PCGM (Counterfactual Mask Generator, §3.2): a ROI changes volume only at its boundary
with CSF. For a ROI with code ``r``, target volume ``V`` and voxel volume ``v``, the target
count is ``n* = round(V / v)`` voxels; with ``n`` the current count,

* grow (``n* > n``): CSF voxels 6-adjacent to the ROI become ROI;
* shrink (``n* < n``): ROI voxels 6-adjacent to CSF become CSF;

ring after ring: ring 1 is the current boundary (the candidates above); when it is used up
the edit exposes ring 2 (the candidates of the edited map), and so on, until exactly
``|n* - n|`` voxels changed. Within the last, partially used ring the candidates are ranked
by the score ``s(x) = P(r|x) - P(CSF|x)``: grow takes the highest scores first, shrink the
lowest. Ties are broken by the voxel's flat (C-order) index, ascending when growing and
descending when shrinking, so a grow order is exactly the reverse of the matching shrink
order. No other voxel changes: white matter and other structures are never touched.

Reversibility: with posteriors consistent with the label map (``s > 0`` on ROI voxels,
``s < 0`` on CSF voxels), shrinking by ``k < |ring 1|`` voxels frees ``k`` boundary voxels
of score > 0; growing back by ``k`` ranks ring 1 of the shrunk map, which holds the freed
voxels still touching the ROI and original CSF voxels of score < 0, so the freed voxels are
taken first and the original mask comes back exactly whenever each freed voxel keeps a ROI
neighbour (always, for a ROI at least two voxels thick there).

Connectivity is 6 (face neighbours): changes never jump a voxel edge or corner, so the
edit follows the surface as a morphological erosion / dilation with the cross element would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import ndimage

from .labels import CSF_CODES, label_for

_CROSS = ndimage.generate_binary_structure(3, 1)


@dataclasses.dataclass(frozen=True)
class MaskEdit:
    """Result of :func:`edit_masks`: the edited label map and a table of the edits.

    Parameters
    ----------
    labels : ndarray
        The edited label map (same shape and dtype as the input).
    table : DataFrame
        One row per edited ROI, in edit order, indexed by the ROI as given, with columns
        ``code``, ``original_mm3``, ``requested_mm3``, ``achieved_mm3``, ``voxels_changed``
        (signed: > 0 grown) and ``rings`` (boundary rings used).

    Examples
    --------
    >>> from roisynth.imaging import edit_masks, make_phantom
    >>> phantom = make_phantom((32, 32, 32), random_state=0)
    >>> edit = edit_masks(phantom.labels, None, {"Hippocampus_L": 3072.0}, voxel_volume=512.0)
    >>> list(edit.table.columns)
    ['code', 'original_mm3', 'requested_mm3', 'achieved_mm3', 'voxels_changed', 'rings']
    """

    labels: np.ndarray
    table: pd.DataFrame


def edit_masks(
    labels,
    posteriors: Mapping[int, np.ndarray] | None,
    targets: Mapping[int | str, float],
    *,
    csf: int | Sequence[int] = CSF_CODES,
    voxel_volume: float = 1.0,
    max_rings: int = 5,
    sigma: float = 1.0,
) -> MaskEdit:
    """Edit each ROI of ``labels`` at its CSF boundary to its target volume, to the voxel.

    Parameters
    ----------
    labels : ndarray of int, 3-D
        The label map (integer-valued floats accepted); not modified.
    posteriors : mapping of int to ndarray, or None
        Code -> ``P(code|x)``, arrays of the label map's shape (e.g. a segmenter's soft
        output), holding every edited ROI code and every CSF code (``P(CSF|x)`` is their
        sum). ``None`` uses blurred one-hot posteriors of the input map,
        ``s = G_sigma * (1[r] - 1[CSF])`` (Gaussian of ``sigma`` voxels): boundary voxels
        with more ROI around them rank as more ROI-like.
    targets : mapping of int or str to float
        ROI -> target volume in mm³; a ROI is a label code or a name
        :func:`~roisynth.imaging.labels.label_for` knows (``"Hippocampus_L"``). ROIs are
        edited one after the other in the mapping's order, each on the result of the
        previous edits (posteriors stay those of the input).
    csf : int or sequence of int, default=CSF_CODES
        CSF code(s). A ROI grows into voxels of any of them; a shrunk voxel takes the
        code of its CSF neighbour, the first listed when several.
    voxel_volume : float, default=1.0
        mm³ per voxel (``roisynth.imaging.nifti.voxel_volume(affine)``).
    max_rings : int, default=5
        Most boundary rings an edit may use; an edit needing more (too little CSF or ROI
        within reach) raises ``ValueError`` naming the ROI and the achievable volume.
    sigma : float, default=1.0
        Blur of the default posteriors, in voxels (unused with ``posteriors``).

    Returns
    -------
    MaskEdit
        The edited label map and one row per edited ROI.

    Raises
    ------
    ValueError
        All or nothing: if any ROI's request cannot be met, and no edit is made.

    Examples
    --------
    >>> from roisynth.imaging import edit_masks, make_phantom, voxel_volume
    >>> phantom = make_phantom((32, 32, 32), random_state=0)
    >>> edit = edit_masks(phantom.labels, None, {17: 2560.0}, voxel_volume=voxel_volume(phantom.affine))
    >>> edit.table[["original_mm3", "achieved_mm3", "voxels_changed"]]
         original_mm3  achieved_mm3  voxels_changed
    roi
    17         3584.0        2560.0              -2
    """
    labels = _check_labels(labels)
    csf = _check_csf(csf)
    if not (np.isfinite(voxel_volume) and voxel_volume > 0):
        raise ValueError(f"voxel_volume must be a positive number of mm³, got {voxel_volume!r}")
    if int(max_rings) != max_rings or max_rings < 1:
        raise ValueError(f"max_rings must be a positive integer, got {max_rings!r}")
    if not isinstance(targets, Mapping) or not targets:
        raise TypeError("targets must be a non-empty mapping ROI -> target volume in mm³")
    codes = {roi: _roi_code(roi) for roi in targets}
    if len(set(codes.values())) < len(codes):
        raise ValueError(f"targets name some ROI twice: {list(targets)}")
    for roi, code in codes.items():
        if code in csf:
            raise ValueError(f"ROI {roi!r} has code {code}, one of the CSF codes {csf}")
        if not np.isfinite(targets[roi]) or targets[roi] < 0:
            raise ValueError(f"target volume of ROI {roi!r} must be >= 0 mm³, got {targets[roi]!r}")
    if posteriors is not None:
        _check_posteriors(posteriors, labels.shape, [*codes.values(), *csf])

    edited = labels.copy(order="K")  # NIfTI data are Fortran-ordered: no transposing copy
    rows = []
    for roi, code in codes.items():
        count = int(np.count_nonzero(edited == code))
        if count == 0:
            raise ValueError(f"ROI {roi!r} (code {code}) is absent from the label map")
        wanted = int(round(targets[roi] / voxel_volume))
        rings = 0
        if wanted != count:
            rings = _edit_one(edited, labels, posteriors, code, csf, wanted - count, int(max_rings), sigma)
            if rings is None:
                achievable = np.count_nonzero(edited == code) * voxel_volume
                raise ValueError(
                    f"ROI {roi!r} (code {code}): requested {targets[roi]:g} mm³ from "
                    f"{count * voxel_volume:g} mm³, but only {achievable:g} mm³ is achievable "
                    f"at its CSF boundary within max_rings={int(max_rings)} rings"
                )
        rows.append({"roi": roi, "code": code, "original_mm3": count * voxel_volume,
                     "requested_mm3": float(targets[roi]), "achieved_mm3": wanted * voxel_volume,
                     "voxels_changed": wanted - count, "rings": rings})
    return MaskEdit(edited, pd.DataFrame(rows).set_index("roi"))


def _edit_one(edited, original, posteriors, code, csf, change, max_rings, sigma):
    """Edit ``change`` voxels (> 0 grow) of ROI ``code`` in place; the rings used, or ``None``
    when ``max_rings`` rings cannot provide them (``edited`` then holds a partial edit)."""
    crop = _crop(edited == code, max_rings + int(np.ceil(4 * sigma)) + 1)
    view = edited[crop]
    score = _score(posteriors, original, crop, code, csf, sigma)
    grow = change > 0
    need = abs(change)
    for ring in range(1, max_rings + 1):
        roi_mask = view == code
        csf_mask = np.isin(view, csf)
        source, sink = (roi_mask, csf_mask) if grow else (csf_mask, roi_mask)
        candidates = np.flatnonzero(sink & ndimage.binary_dilation(source, _CROSS))
        if candidates.size == 0:
            break
        if candidates.size > need:
            key = -score.ravel()[candidates] if grow else score.ravel()[candidates]
            order = np.lexsort((candidates if grow else -candidates, key))
            candidates = candidates[order[:need]]
        _relabel(view, candidates, code if grow else None, csf)
        need -= candidates.size
        if need == 0:
            return ring
    return None


def _relabel(view, flat, code, csf):
    """Set the voxels ``flat`` of ``view`` to ``code``, or (``code=None``) to their CSF code."""
    where = np.unravel_index(flat, view.shape)  # ``view`` is a strided crop: no ravel()
    if code is not None:
        view[where] = code
        return
    new = np.full(flat.size, csf[0], dtype=view.dtype)
    if len(csf) > 1:
        for c in reversed(csf):  # first-listed code wins among CSF neighbours
            new[ndimage.binary_dilation(view == c, _CROSS)[where]] = c
    view[where] = new


def _score(posteriors, original, crop, code, csf, sigma):
    """``P(code|x) - P(CSF|x)`` on the crop."""
    if posteriors is None:
        window = original[crop]
        signed = (window == code).astype(np.float64) - np.isin(window, csf)
        return ndimage.gaussian_filter(signed, sigma, mode="nearest")
    csf_prob = sum(np.asarray(posteriors[c], dtype=np.float64)[crop] for c in csf)
    return np.asarray(posteriors[code], dtype=np.float64)[crop] - csf_prob


def _crop(mask, margin):
    """Bounding box of ``mask`` widened by ``margin`` voxels (clipped), as slices."""
    hits = [np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)]
    return tuple(
        slice(max(hit[0] - margin, 0), min(hit[-1] + margin + 1, size))
        for hit, size in zip(hits, mask.shape)
    )


def _roi_code(roi) -> int:
    if isinstance(roi, (int, np.integer)) and not isinstance(roi, bool):
        return int(roi)
    if isinstance(roi, str):
        return label_for(roi)
    raise TypeError(f"target ROI {roi!r} must be a label code (int) or a ROI name (str)")


def _check_labels(labels) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"labels must be a 3D label map, got shape {labels.shape}")
    if np.issubdtype(labels.dtype, np.integer):
        return labels
    if not np.issubdtype(labels.dtype, np.floating) or not np.array_equal(labels, np.round(labels)):
        raise TypeError(f"labels must hold integer label codes, got dtype {labels.dtype} with non-integer values")
    return labels.astype(np.int32)


def _check_csf(csf) -> tuple[int, ...]:
    codes = (csf,) if isinstance(csf, (int, np.integer)) else tuple(csf)
    if not codes or not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in codes):
        raise TypeError(f"csf must be a label code or a non-empty sequence of codes, got {csf!r}")
    return tuple(int(c) for c in codes)


def _check_posteriors(posteriors, shape, needed):
    if not isinstance(posteriors, Mapping):
        raise TypeError("posteriors must be a mapping code -> P(code|x) array, or None")
    for code in needed:
        if code not in posteriors:
            raise ValueError(f"posteriors lack code {code} (needed: ROI and CSF codes {sorted(set(needed))})")
        prob = np.asarray(posteriors[code])
        if prob.shape != shape:
            raise ValueError(f"posteriors[{code}] has shape {prob.shape}, the label map {shape}")
