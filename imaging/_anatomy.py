"""Procedural head anatomy and T1 intensity priors for :mod:`roisynth.imaging.phantoms`.

The head is built from implicit shapes in scanner millimetres (RAS: x to the subject's right,
so left structures have x < 0), painted in order so that later shapes overwrite earlier
ones. Every shape is an ellipsoid ``ρ(p) = Σ_d ((p_d − c_d) / a_d)² < 1``; the brain and the
white-matter surface are *folded*, ``ρ(p) < 1 + f · g(p)`` with
``g(p) = Π_d sin(2π p_d / λ + φ_d)`` (random phases φ), so that CSF fills the sulci between
the gyri and the smooth outer CSF ellipsoid. Hippocampus and amygdala get a medial CSF cuff
(the ambient cistern) so that the mask generator has a ROI-CSF boundary to edit at.
"""

from __future__ import annotations

import numpy as np

from .labels import CSF

FOV_MM = 256.0
"""Field of view of the procedural head (mm): voxel size = FOV_MM / shape."""

SCALP, SKULL = 507, 515
"""Extra-cerebral codes of the procedural head (SynthSeg's training maps use them for the
two largest extra-cerebral classes: bright fatty scalp, dark bone)."""

FOLD_AMPLITUDE, FOLD_WAVELENGTH_MM, CORTEX_MM = 0.12, 24.0, 5.0

# (left code, right code, |centre x|, centre y, centre z, semi-axes a_x, a_y, a_z) in mm, in
# painting order; a right code of None marks a midline structure (centre x = 0).
_DEEP = (
    (16, None, 0.0, -18.0, -38.0, 9.0, 11.0, 26.0),    # brain-stem
    (4, 43, 9.0, 0.0, 14.0, 5.5, 28.0, 8.0),           # lateral ventricles
    (11, 50, 15.0, 12.0, 12.0, 5.0, 11.0, 7.0),        # caudate
    (10, 49, 10.0, -14.0, 2.0, 7.5, 12.0, 8.0),        # thalamus
    (14, None, 0.0, -8.0, 0.0, 2.5, 14.0, 9.0),        # 3rd ventricle
    (12, 51, 26.0, 6.0, 2.0, 5.0, 13.0, 9.0),          # putamen
)
_MEDIAL_TEMPORAL = (
    (17, 53, 29.0, -18.0, -16.0, 7.0, 19.0, 7.0),      # hippocampus
    (18, 54, 24.0, 3.0, -20.0, 7.5, 8.0, 7.5),         # amygdala
)
_CUFF_MM = 4.0

PROCEDURAL_LABELS: tuple[int, ...] = (
    0, SCALP, SKULL, CSF, 3, 42, 2, 41, 16, 4, 43, 11, 50, 10, 49, 14, 12, 51, 17, 53, 18, 54,
)
"""Every code a procedural phantom contains."""

# Tissue -> (mean, spread of the per-subject mean, within-label SD), FreeSurfer-normalised T1
# units (white matter ≈ 110, as after ``mri_normalize``).
_TISSUE = {
    "background": (3.0, 2.0, 2.0),
    "csf": (35.0, 6.0, 6.0),
    "cortex": (75.0, 5.0, 6.0),
    "white": (110.0, 4.0, 5.0),
    "brainstem": (98.0, 5.0, 5.0),
    "thalamus": (92.0, 5.0, 5.0),
    "caudate": (80.0, 5.0, 5.0),
    "putamen": (86.0, 5.0, 5.0),
    "pallidum": (100.0, 5.0, 5.0),
    "hippocampus": (72.0, 5.0, 6.0),
    "amygdala": (74.0, 5.0, 6.0),
    "accumbens": (78.0, 5.0, 5.0),
    "vessel": (60.0, 10.0, 8.0),
    "scalp": (120.0, 15.0, 15.0),
    "bone": (20.0, 5.0, 6.0),
    "other": (60.0, 20.0, 12.0),
}
_TISSUE_OF = {
    0: "background", 24: "csf", 4: "csf", 43: "csf", 5: "csf", 44: "csf", 14: "csf", 15: "csf", 72: "csf",
    3: "cortex", 42: "cortex", 8: "cortex", 47: "cortex",
    2: "white", 41: "white", 7: "white", 46: "white", 85: "white",
    16: "brainstem", 28: "brainstem", 60: "brainstem",
    10: "thalamus", 49: "thalamus", 11: "caudate", 50: "caudate", 12: "putamen", 51: "putamen",
    13: "pallidum", 52: "pallidum", 17: "hippocampus", 53: "hippocampus", 18: "amygdala", 54: "amygdala",
    26: "accumbens", 58: "accumbens", 30: "vessel", 62: "vessel", 31: "vessel", 63: "vessel",
    SCALP: "scalp", SKULL: "bone",
}


def t1_prior(code: int) -> tuple[float, float, float]:
    """``(mean, spread of the mean, within-label SD)`` of label ``code``'s T1 intensity.

    Unknown codes (lesions, extra-cerebral classes other than scalp and skull) get the wide
    ``"other"`` prior.
    """
    return _TISSUE[_TISSUE_OF.get(int(code), "other")]


def _rho(x, y, z, centre, axes) -> np.ndarray:
    (cx, cy, cz), (ax, ay, az) = centre, axes
    return ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 + ((z - cz) / az) ** 2


def procedural_labels(x: np.ndarray, y: np.ndarray, z: np.ndarray, phases: np.ndarray, voxel_mm: float) -> np.ndarray:
    """Label map (int16) of the procedural head at (deformed) coordinates ``x, y, z`` (mm).

    ``phases`` (3 values) place the cortical folds; ``voxel_mm`` widens the interhemispheric
    fissure to at least one voxel so that the hemispheres stay apart on coarse grids.
    """
    labels = np.zeros(x.shape, dtype=np.int16)
    origin = (0.0, 0.0, 0.0)
    for code, axes in ((SCALP, (82.0, 102.0, 94.0)), (SKULL, (76.0, 96.0, 88.0)), (CSF, (72.0, 92.0, 82.0))):
        labels[_rho(x, y, z, origin, axes) < 1] = code
    omega = 2 * np.pi / FOLD_WAVELENGTH_MM
    fold = 1 + FOLD_AMPLITUDE * (np.sin(omega * x + phases[0]) * np.sin(omega * y + phases[1])
                                 * np.sin(omega * z + phases[2]))
    left = x < 0
    brain_axes = np.array([66.0, 86.0, 74.0])
    brain = _rho(x, y, z, origin, brain_axes) < fold
    labels[brain] = np.where(left[brain], 3, 42)
    white = _rho(x, y, z, origin, brain_axes - CORTEX_MM) < fold
    labels[white] = np.where(left[white], 2, 41)
    fissure = brain & (np.abs(x) < max(1.5, 0.6 * voxel_mm + 1.0)) & (z > 25)
    labels[fissure] = CSF
    for left_code, right_code, cx, cy, cz, *axes in _DEEP:
        for code, sign in ((left_code, -1), (right_code, 1)):
            if code is not None:
                labels[_rho(x, y, z, (sign * cx, cy, cz), axes) < 1] = code
    for _, _, cx, cy, cz, *axes in _MEDIAL_TEMPORAL:  # ambient-cistern cuff, medial side only
        cuff_axes = np.add(axes, _CUFF_MM)
        for sign in (-1, 1):
            labels[(_rho(x, y, z, (sign * cx, cy, cz), cuff_axes) < 1) & (sign * x < cx)] = CSF
    for left_code, right_code, cx, cy, cz, *axes in _MEDIAL_TEMPORAL:
        for code, sign in ((left_code, -1), (right_code, 1)):
            labels[_rho(x, y, z, (sign * cx, cy, cz), axes) < 1] = code
    return labels
