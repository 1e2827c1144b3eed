r"""From a row of ROI volumes (a table's counterfactual) to counterfactual masks of a subject.

A ROI table and a label map measure different anatomies: a table row is one (real or
synthetic) person in the table's units, the label map another head with its own volumes. So
by default the bridge carries over the *relative* change. With ``reference`` the factual row
(e.g. the healthy subject whose disease twin ``volumes`` is), for each ROI r the map can express

.. math::  V^*_r = V^{map}_r \cdot \frac{v_r}{v^{ref}_r},

``V^{map}_r`` the ROI's volume in the label map (voxel count × voxel volume) and ``v_r``,
``v^{ref}_r`` the row values; without ``reference`` the row values are the targets in mm³
(``V^*_r = v_r``). :func:`~roisynth.imaging.masks.edit_masks` then grows or shrinks each ROI at
its CSF boundary to ``round(V^*_r / voxel volume)`` voxels exactly.

Which ROIs: a column names a ROI the map can express when
:func:`~roisynth.imaging.labels.label_for` gives it a code that is present in the map and that
touches CSF (6-adjacent; a ROI only changes at its CSF boundary). The composite ROIs
``Cortex_L/R`` and ``CerebralWM_L/R`` (whole cortex / cerebral WM of a hemisphere) are the sum
of their MUSE parts (:func:`~roisynth.imaging.labels.muse_components`) when the row holds them
all. Other ROI columns are skipped and listed, with the reason, in
:attr:`CounterfactualMasks.skipped`; ROIs named in ``rois=`` must be expressible.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import ndimage

from roisynth.datasets.muse import canonical_roi_name

from .labels import CSF_CODES, label_for, muse_components, roi_codes
from .masks import MaskEdit, edit_masks
from .nifti import voxel_volume
from .phantoms import OTHER, Phantom

COMPOSITES = ("Cortex_L", "Cortex_R", "CerebralWM_L", "CerebralWM_R")
"""ROIs of the label map that are sums of MUSE ROIs."""


@dataclasses.dataclass(frozen=True)
class CounterfactualMasks(MaskEdit):
    """Result of :func:`counterfactual_masks`: a :class:`~roisynth.imaging.masks.MaskEdit` and more.

    Parameters
    ----------
    labels : ndarray
        The edited label map.
    table : DataFrame
        One row per edited ROI (see :class:`~roisynth.imaging.masks.MaskEdit`).
    affine : ndarray of shape (4, 4)
        The subject's voxel -> mm affine (to save ``labels`` as NIfTI).
    skipped : dict of str to str
        ROI column -> why it was not edited (no label code, absent from the map, no CSF boundary).
    posteriors_used : bool
        Whether the subject's posteriors ranked the boundary voxels (else blurred one-hot
        labels did, as when a phantom stores no posterior for an edited ROI).

    Examples
    --------
    >>> from roisynth.imaging import counterfactual_masks, make_phantom
    >>> phantom = make_phantom((32, 32, 32), random_state=0)
    >>> masks = counterfactual_masks(phantom, {"Hippocampus_L": 3000.0, "age": 70})
    >>> masks.affine.shape, masks.posteriors_used, list(masks.table.index)
    ((4, 4), True, ['Hippocampus_L'])
    """

    affine: np.ndarray
    skipped: dict[str, str]
    posteriors_used: bool


def counterfactual_masks(subject, volumes, *, reference=None, rois: Sequence[str] | None = None,
                         **edit_options) -> CounterfactualMasks:
    """Edit the subject's label map so its ROIs follow a row of ROI volumes (module docstring).

    Parameters
    ----------
    subject : a :class:`~roisynth.imaging.phantoms.Phantom`, or a triple ``(labels, posteriors,
        affine)`` with ``posteriors`` a mapping code -> P(code|x) array, or ``None``.
    volumes : one row of ROI volumes in mm³ (Series, mapping, or one-row DataFrame), e.g. a
        row of ``ContrastiveVAE.counterfactual`` or ``CausalROIModel.counterfactual``; MUSE
        names in any spelling :func:`~roisynth.datasets.canonical_roi_name` takes, or
        ``Cortex_L`` etc. Non-ROI columns (age, site, ...) are ignored.
    reference : the factual row (same kind): apply the relative change ``volumes / reference``
        to the map's own volumes. ``None``: ``volumes`` are absolute targets in mm³.
    rois : edit only these ROIs (each must be expressible: ``ValueError`` otherwise); default
        every expressible ROI of the row.
    **edit_options : passed to :func:`~roisynth.imaging.masks.edit_masks` (``csf``,
        ``max_rings``, ``sigma``); the voxel volume comes from the affine.

    Returns
    -------
    CounterfactualMasks
        The edited map; its ``table`` (one row per edited ROI) holds ``original_mm3``,
        ``requested_mm3``, ``achieved_mm3``, ``voxels_changed`` and ``rings``.

    Examples
    --------
    >>> from roisynth.imaging import counterfactual_masks, make_phantom
    >>> phantom = make_phantom((32, 32, 32), random_state=0)
    >>> factual = {"Hippocampus_L": 3500.0, "Hippocampus_R": 3500.0}
    >>> twin = {"Hippocampus_L": 2800.0, "Hippocampus_R": 3500.0}  # 20 % smaller on the left
    >>> masks = counterfactual_masks(phantom, twin, reference=factual)
    >>> masks.table[["original_mm3", "requested_mm3", "achieved_mm3"]]
                   original_mm3  requested_mm3  achieved_mm3
    roi
    Hippocampus_L        3584.0         2867.2        3072.0
    Hippocampus_R        4096.0         4096.0        4096.0
    """
    labels, posteriors, affine = _unpack(subject)
    row = _row(volumes, "volumes")
    ref = None if reference is None else _row(reference, "reference")
    csf = edit_options.get("csf", CSF_CODES)
    present = set(np.unique(labels).tolist())
    candidates, skipped = _candidates(row, rois)
    csf_mask = np.isin(labels, csf)
    targets: dict[str, float] = {}
    for roi, parts in candidates.items():
        code = label_for(roi)
        reason = ("absent from the label map" if code not in present else
                  "no boundary with CSF" if not (csf_mask & ndimage.binary_dilation(
                      labels == code, ndimage.generate_binary_structure(3, 1))).any() else None)
        if reason is not None:
            if rois is not None:
                raise ValueError(f"ROI {roi!r} (code {code}) cannot be edited: {reason}")
            skipped[roi] = reason
            continue
        value = _value(row, parts, roi, "volumes")
        if ref is None:
            targets[roi] = value
        else:
            base = _value(ref, parts, roi, "reference")
            if base <= 0:
                raise ValueError(f"reference volume of ROI {roi!r} must be > 0 mm³, got {base!r}")
            targets[roi] = float(np.count_nonzero(labels == code)) * voxel_volume(affine) * value / base
    if not targets:
        raise ValueError(f"no ROI of volumes can be edited in this label map (skipped: {skipped})")
    codes = [label_for(roi) for roi in targets]
    used = posteriors is not None and all(c in posteriors for c in (*codes, *np.atleast_1d(csf).tolist()))
    edit = edit_masks(labels, posteriors if used else None, targets, voxel_volume=voxel_volume(affine), **edit_options)
    return CounterfactualMasks(edit.labels, edit.table, np.asarray(affine, dtype=np.float64), skipped, used)


def _unpack(subject):
    if isinstance(subject, Phantom):
        posteriors = {c: subject.posteriors[k] for k, c in enumerate(subject.posterior_labels) if c != OTHER}
        return subject.labels, posteriors, subject.affine
    if isinstance(subject, tuple) and len(subject) == 3:
        labels, posteriors, affine = subject
        if posteriors is not None and not isinstance(posteriors, Mapping):
            raise TypeError("subject's posteriors must be a mapping code -> P(code|x) array, or None")
        affine = np.asarray(affine, dtype=np.float64)
        if affine.shape != (4, 4):
            raise ValueError(f"subject's affine must be 4 x 4, got shape {affine.shape}")
        return np.asarray(labels), posteriors, affine
    raise TypeError(f"subject must be a Phantom or a (labels, posteriors, affine) triple, got {type(subject).__name__}")


def _row(values, name: str) -> dict[str, object]:
    """One row as {ROI name: value}: composite names kept, MUSE spellings canonicalised."""
    if isinstance(values, pd.DataFrame):
        if len(values) != 1:
            raise ValueError(f"{name} must be one row of ROI volumes, got a DataFrame with {len(values)} rows "
                             f"(pick one, e.g. {name}.iloc[[0]])")
        values = values.iloc[0]
    if not isinstance(values, (pd.Series, Mapping)):
        kind = type(values).__name__
        raise TypeError(f"{name} must be a pandas Series, a mapping or a one-row DataFrame, got {kind}")
    row = {}
    for column, value in values.items():
        roi = column if column in roi_codes() else canonical_roi_name(column)
        if roi is not None:
            row[roi] = value
    if not row:
        raise ValueError(f"{name} has no ROI columns (MUSE names such as 'Hippocampus_L')")
    return row


def _candidates(row: dict, rois) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """ROI -> the row columns summed for it, and the skipped ROI columns with reasons."""
    expressible = set(roi_codes())
    candidates = {roi: (roi,) for roi in row if roi in expressible}
    for composite in COMPOSITES:
        parts = muse_components(composite)
        if composite not in candidates and all(p in row for p in parts):
            candidates[composite] = parts
    used = {p for parts in candidates.values() for p in parts}
    skipped = {roi: "no label code" for roi in row if roi not in used}
    if rois is None:
        return candidates, skipped
    if isinstance(rois, str) or not isinstance(rois, Sequence) or not rois:
        raise TypeError(f"rois must be a non-empty list of ROI names, got {rois!r}")
    chosen = {}
    for roi in rois:
        name = roi if roi in expressible else canonical_roi_name(roi)
        label_for(name if name is not None else roi)  # ValueError naming the ROI if it has no code
        if name not in candidates:
            suffix = " (nor all of its MUSE parts)" if name in COMPOSITES else ""
            raise ValueError(f"ROI {roi!r} is not in volumes" + suffix)
        chosen[name] = candidates[name]
    return chosen, {}


def _value(row: dict, parts: tuple[str, ...], roi: str, name: str) -> float:
    try:
        value = float(sum(float(row[p]) for p in parts))
    except KeyError as missing:
        raise ValueError(f"{name} lacks ROI {missing.args[0]!r} (needed for {roi!r})") from None
    except (TypeError, ValueError):
        raise TypeError(f"{name}: ROI {roi!r} must be numeric") from None
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name}: volume of ROI {roi!r} must be a finite number >= 0 mm³, got {value!r}")
    return value
