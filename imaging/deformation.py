r"""Deformation counterfactuals: warp the subject's own image so each edited ROI has its target volume.

The classic way to prescribe atrophy (Khanal et al. 2017, *Simulating longitudinal brain MRIs
with known volume changes*): no model, no training, any resolution. A stationary velocity field
v (mm per unit time) whose divergence is prescribed,

.. math::  \nabla \cdot v = f = \sum_k a_k \big(\mathbb 1_{R_k} - \tfrac{|R_k|}{|S_k|}\, \mathbb 1_{S_k}\big),

is integrated for unit time into the diffeomorphism φ = exp(v). Along a trajectory the Jacobian
obeys d log J / dt = ∇·v, so a region whose points keep divergence a_k has J = e^{a_k}: ROI R_k
scales by e^{a_k}, and its *sink* S_k takes up exactly the opposite volume change (the source
integrates to zero ROI by ROI), every other voxel keeps its volume (∇·v = 0). The sink of a
tissue ROI (hippocampus, amygdala, ...) is the CSF within ``margin`` mm of it
(:data:`CSF_SPACES`: CSF, ventricles and the unlabelled voxels next to the brain, where aseg /
aparc+aseg maps leave sulcal CSF); the sink of a CSF ROI (a ventricle) is the tissue within
``margin`` mm of it, which shrinks as the ventricle grows (periventricular atrophy).

v = ∇ψ, ψ the solution of the Poisson equation Δψ = f on the box around the edit (Neumann
boundary, solved exactly with the type-II DCT), multiplied by a smooth taper χ (cos², from 1 on
the ROIs and sinks to 0 at ``margin`` mm beyond them): outside that band v = 0 and nothing moves,
not even by rounding (the output copies the input there). The inverse map φ⁻¹ = exp(-v) comes
from scaling and squaring (u ← u + u∘(id + u), ``squarings`` times, from v / 2^N), and the
outputs are pulled back through it: the image by linear (or cubic) interpolation, each edited
ROI's indicator by linear interpolation (its warped partial-volume fraction p_k), the label map
by nearest neighbour. The ROI's warped volume is n_k = Σ p_k (voxels); the rates a_k start at
log(V*_k / V_k) and are corrected by a_k ← a_k + log(n*_k / n_k) / s_k, s_k the secant estimate
of d log n_k / d a_k (a thin ROI keeps part of its rate out of its own material), until every
ROI is within ``tolerance`` of n*_k = V*_k / voxel volume (the best iterate is kept). A
sub-voxel boundary shift moves no voxel centre across the boundary, so on coarse grids nearest
neighbour alone would leave the label map unchanged while the image changes: the boundary voxels
with the highest p_k join the ROI, or those with the lowest leave it for their nearest other
label, until its count is round(n_k).

Reported: the forward Jacobian determinant J_φ at every output voxel (1 / det Dφ⁻¹, central
differences; the ground-truth volume-change map for tensor-based morphometry), its minimum
(> 0: the discrete map is orientation preserving everywhere) and maximum, and per ROI the
original, requested and achieved volumes.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import fft, ndimage

from .masks import _check_labels, _crop, _roi_code

CSF_SPACES: tuple[int, ...] = (0, 24, 4, 5, 14, 15, 43, 44, 72)
"""Codes that count as CSF for the sinks: unlabelled (0: sulcal / cisternal CSF in aseg maps; far
from the brain in phantoms, so never within reach), CSF (24), lateral, inferior lateral, 3rd, 4th
and 5th ventricles."""


@dataclasses.dataclass(frozen=True)
class Deformation:
    """Result of :func:`deform`.

    Parameters
    ----------
    image : ndarray of float32
        The warped image (the input outside the moving band, bit for bit).
    labels : ndarray
        The warped label map (nearest neighbour; each edited ROI's count matched to its warped
        partial volume), the input's dtype.
    jacobian : ndarray of float32
        J_φ(φ⁻¹(y)) at each output voxel y: the factor by which the tissue now at y changed
        volume (1 outside the band).
    moved : ndarray of bool
        The band: voxels whose displacement is nonzero (nothing else can change).
    table : DataFrame
        One row per edited ROI: ``code``, ``original_mm3``, ``requested_mm3``, ``achieved_mm3``
        (the warped label map's whole voxels), ``partial_mm3`` (its warped partial volume, Σ p_k),
        ``error`` (achieved / requested - 1), ``rate`` (a_k), ``taken_up_by`` (``"CSF"`` or
        ``"tissue"``), ``sink_change`` (relative volume change of the sink).
    jacobian_min, jacobian_max : float
        Extremes of J_φ over the band.
    iterations : int
        Velocity fields tried.
    seconds : float
        Wall time.

    Examples
    --------
    >>> from roisynth.imaging import make_phantom
    >>> from roisynth.imaging.deformation import deform
    >>> phantom = make_phantom((32, 32, 32), random_state=0)
    >>> result = deform(phantom.image, phantom.labels, {17: 0.9 * (phantom.labels == 17).sum() * 512.0},
    ...                 affine=phantom.affine)
    >>> list(result.table.columns[:3]), bool(result.moved.any()), result.jacobian_min > 0
    (['code', 'original_mm3', 'requested_mm3'], True, True)
    """

    image: np.ndarray
    labels: np.ndarray
    jacobian: np.ndarray
    moved: np.ndarray
    table: pd.DataFrame
    jacobian_min: float
    jacobian_max: float
    iterations: int
    seconds: float


def deform(image, labels, targets: Mapping[int | str, float], *, affine=None, csf=CSF_SPACES, margin: float = 4.0,
           tolerance: float = 0.005, max_iterations: int = 8, squarings: int = 7, order: int = 1) -> Deformation:
    """Warp ``image`` and ``labels`` so each ROI of ``targets`` gets its volume (module docstring).

    Parameters
    ----------
    image : array-like, shape (X, Y, Z)
        The subject's image (any intensity units).
    labels : array-like of int, shape (X, Y, Z)
        Its label map on the same grid (FreeSurfer / SynthSeg codes).
    targets : mapping of int or str to float
        ROI (label code or name, e.g. ``"Hippocampus_L"``) -> target volume in mm³.
    affine : array-like of shape (4, 4), default=None
        Voxel -> mm; gives the voxel spacing and volume (None: 1 mm isotropic).
    csf : sequence of int, default=CSF_SPACES
        Codes that count as CSF (sinks of tissue ROIs; CSF ROIs take tissue sinks).
    margin : float, default=4.0
        Reach of the sinks around each ROI, and width of the taper beyond them (mm); at least
        1.5 voxels.
    tolerance : float, default=0.005
        Relative error of the warped partial volumes at which the rate correction stops.
    max_iterations : int, default=8
        Most velocity fields tried.
    squarings : int, default=7
        N of scaling and squaring (v / 2^N is the first step).
    order : int, default=1
        Interpolation order of the image (1 linear, 3 cubic).

    Returns
    -------
    Deformation
        The warped image and labels, the Jacobian map and the per-ROI table.

    Raises
    ------
    ValueError
        For a ROI absent from the map, a target that is not positive, or a ROI without a sink
        within ``margin`` (or one that would have to change its sink's volume by more than
        half), naming the ROI.

    Examples
    --------
    >>> from roisynth.imaging import make_phantom
    >>> from roisynth.imaging.deformation import deform
    >>> phantom = make_phantom((64, 64, 64), random_state=0)
    >>> n = int((phantom.labels == 17).sum())
    >>> result = deform(phantom.image, phantom.labels, {17: 0.8 * n * 64.0}, affine=phantom.affine)
    >>> int((result.labels == 17).sum()) == round(0.8 * n), result.jacobian_min > 0
    (True, True)
    """
    start = time.perf_counter()
    labels = _check_labels(labels)
    image = np.asarray(image, dtype=np.float32)
    if image.shape != labels.shape:
        raise ValueError(f"image and labels must share a grid, got shapes {image.shape} and {labels.shape}")
    affine = np.eye(4) if affine is None else np.asarray(affine, dtype=np.float64)
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    voxel = float(abs(np.linalg.det(affine[:3, :3])))
    csf = tuple(int(c) for c in np.atleast_1d(csf))
    if not (np.isfinite(margin) and margin > 0):
        raise ValueError(f"margin must be a positive number of mm, got {margin!r}")
    margin = max(float(margin), 1.5 * float(spacing.max()))
    if not isinstance(targets, Mapping) or not targets:
        raise TypeError("targets must be a non-empty mapping ROI -> target volume in mm³")
    codes = {roi: _roi_code(roi) for roi in targets}
    counts, wanted = {}, {}
    for roi, code in codes.items():
        counts[roi] = int(np.count_nonzero(labels == code))
        if counts[roi] == 0:
            raise ValueError(f"ROI {roi!r} (code {code}) is absent from the label map")
        if not (np.isfinite(targets[roi]) and targets[roi] > 0):
            raise ValueError(f"target volume of ROI {roi!r} must be > 0 mm³, got {targets[roi]!r}")
        wanted[roi] = max(int(round(targets[roi] / voxel)), 1)

    reach = np.ceil(2 * margin / spacing).astype(int) + 2
    box = _crop(np.isin(labels, list(codes.values())), 0)
    box = tuple(slice(max(b.start - r, 0), min(b.stop + r, n)) for b, r, n in zip(box, reach, labels.shape))
    window = labels[box]
    units = [_unit(window, roi, code, codes, csf, margin, spacing) for roi, code in codes.items()]
    taper = _taper(np.any([u["region"] for u in units], axis=0), margin, spacing)
    solver = _Poisson(window.shape, spacing)

    rates = {roi: float(np.log(wanted[roi] / counts[roi])) for roi in codes}
    history = dict.fromkeys(codes)
    best, tried = None, 0
    while tried < max_iterations:
        tried += 1
        source = sum(rates[roi] * u["source"] for roi, u in zip(codes, units))
        velocity = solver.gradient(solver.solve(source)) * taper
        displacement = _exponential(-velocity / spacing[:, None, None, None], squarings)
        fractions = {roi: _pull((window == code).astype(np.float32), displacement, order=1)
                     for roi, code in codes.items()}
        soft = {roi: counts[roi] - int(np.count_nonzero(window == code)) + float(fractions[roi].sum())
                for roi, code in codes.items()}
        error = max(abs(soft[roi] / wanted[roi] - 1) for roi in codes)
        if best is None or error < best[0]:
            best = (error, dict(rates), displacement, fractions)
        if error <= tolerance:
            break
        for roi in codes:
            miss = float(np.log(wanted[roi] / soft[roi]))
            slope = _secant_slope(history[roi], rates[roi], miss)
            history[roi] = (rates[roi], miss)
            rates[roi] += miss / slope
    _, rates, displacement, fractions = best
    partial = {roi: counts[roi] - int(np.count_nonzero(window == code)) + float(fractions[roi].sum())
               for roi, code in codes.items()}
    warped = _pull(window, displacement, order=0)
    for roi, code in codes.items():
        _match_count(warped, code, fractions[roi], int(round(float(fractions[roi].sum()))), set(codes.values()))
    achieved = {roi: counts[roi] - int(np.count_nonzero(window == code)) + int(np.count_nonzero(warped == code))
                for roi, code in codes.items()}

    moved_box = np.any(displacement != 0, axis=0)
    out_labels, out_image = labels.copy(), image.copy()
    out_labels[box] = np.where(moved_box, warped, window)
    out_image[box] = np.where(moved_box, _pull(image[box], displacement, order=order), image[box])
    moved = np.zeros(labels.shape, dtype=bool)
    moved[box] = moved_box
    jacobian = np.ones(labels.shape, dtype=np.float32)
    jacobian[box] = 1.0 / _determinant(displacement)
    inside = jacobian[moved] if moved.any() else np.ones(1, dtype=np.float32)
    rows = [{"roi": roi, "code": code, "original_mm3": counts[roi] * voxel, "requested_mm3": float(targets[roi]),
             "achieved_mm3": achieved[roi] * voxel, "partial_mm3": partial[roi] * voxel,
             "error": achieved[roi] * voxel / float(targets[roi]) - 1, "rate": rates[roi], "taken_up_by": u["kind"],
             "sink_change": -(achieved[roi] - counts[roi]) / u["sink_voxels"]}
            for (roi, code), u in zip(codes.items(), units)]
    return Deformation(out_image, out_labels, jacobian, moved, pd.DataFrame(rows).set_index("roi"),
                       float(inside.min()), float(inside.max()), tried, time.perf_counter() - start)


def _unit(window, roi, code, codes, csf, margin, spacing) -> dict:
    """Unit-rate source 1_R - |R|/|S| 1_S of one ROI, its region R ∪ S and which sink it has."""
    inside = window == code
    shell = ndimage.distance_transform_edt(~inside, sampling=spacing) <= margin
    shell &= ~np.isin(window, list(codes.values()))
    is_csf = np.isin(window, csf)
    kind = "tissue" if code in csf else "CSF"
    sink = shell & (~is_csf if kind == "tissue" else is_csf)
    if not sink.any():
        raise ValueError(f"ROI {roi!r} (code {code}) has no {kind} within {margin:g} mm to take up its volume "
                         f"change: pass a larger margin")
    source = inside.astype(np.float64)
    source[sink] = -inside.sum() / sink.sum()
    return {"source": source, "region": inside | sink, "kind": kind, "sink_voxels": int(sink.sum())}


def _match_count(labels, code, fraction, count, edited) -> None:
    """Relabel boundary voxels of ``labels`` (in place) until ROI ``code`` has ``count`` voxels:
    the highest warped fractions join it, the lowest leave it for their nearest other label."""
    member = labels == code
    change = count - int(member.sum())
    if change > 0:
        candidates = np.flatnonzero(~member & ~np.isin(labels, list(edited)) & (fraction > 0))
        chosen = candidates[np.argsort(-fraction.ravel()[candidates], kind="stable")[:change]]
        labels.ravel()[chosen] = code
    elif change < 0:
        candidates = np.flatnonzero(member & (fraction < 1))
        leaving = np.zeros(labels.shape, dtype=bool)
        leaving.ravel()[candidates[np.argsort(fraction.ravel()[candidates], kind="stable")[:-change]]] = True
        nearest = ndimage.distance_transform_edt(member, return_distances=False, return_indices=True)
        labels[leaving] = labels[tuple(axis[leaving] for axis in nearest)]


def _secant_slope(previous, rate, miss) -> float:
    """d log n / d a from the last two tries (1 before there are two; clipped to [0.05, 2] so that
    a flat step of the voxel count cannot send the rate far)."""
    if previous is None or previous[0] == rate:
        return 1.0
    slope = (previous[1] - miss) / (rate - previous[0])  # miss = log n* - log n falls as n rises
    return float(np.clip(slope, 0.05, 2.0))


def _taper(region, margin, spacing) -> np.ndarray:
    """χ = 1 on ``region``, cos²(π d / 2 margin) at distance d ≤ margin mm from it, 0 beyond."""
    distance = ndimage.distance_transform_edt(~region, sampling=spacing)
    return np.where(distance < margin, np.cos(0.5 * np.pi * np.minimum(distance / margin, 1.0)) ** 2, 0.0)


class _Poisson:
    r"""Δψ = f on a box with Neumann boundaries, by the type-II DCT: the 7-point Laplacian with
    spacing h has eigenvalues Σ_d (2 cos(π k_d / n_d) - 2) / h_d² on the DCT-II basis."""

    def __init__(self, shape, spacing):
        self.spacing = spacing
        axes = [(2 * np.cos(np.pi * np.arange(n) / n) - 2) / h**2 for n, h in zip(shape, spacing)]
        self.eigen = axes[0][:, None, None] + axes[1][None, :, None] + axes[2][None, None, :]
        self.eigen[0, 0, 0] = 1.0

    def solve(self, source):
        coefficients = fft.dctn(source - source.mean(), type=2, norm="ortho") / self.eigen
        coefficients[0, 0, 0] = 0.0
        return fft.idctn(coefficients, type=2, norm="ortho")

    def gradient(self, potential):
        return np.stack(np.gradient(potential, *self.spacing))


def _exponential(velocity, squarings: int) -> np.ndarray:
    """Displacement u of exp(v) (voxel units) by scaling and squaring: u = v / 2^N, then N times
    u ← u + u∘(id + u) (trilinear)."""
    u = (velocity / 2**squarings).astype(np.float32)
    for _ in range(squarings):
        u = u + _pull_field(u, u)
    return u


def _pull_field(field, displacement) -> np.ndarray:
    grid = np.indices(displacement.shape[1:], dtype=np.float32) + displacement
    return np.stack([ndimage.map_coordinates(c, grid, order=1, mode="nearest") for c in field])


def _pull(volume, displacement, order: int) -> np.ndarray:
    """volume(y + u(y)): nearest neighbour (order 0) for labels, splines otherwise."""
    grid = np.indices(volume.shape, dtype=np.float32) + displacement
    return ndimage.map_coordinates(volume, grid, order=order, mode="nearest", prefilter=order > 1)


def _determinant(displacement) -> np.ndarray:
    """det(I + Du) by central differences (voxel units)."""
    d = [[np.gradient(displacement[i], axis=j) for j in range(3)] for i in range(3)]
    for i in range(3):
        d[i][i] = d[i][i] + 1.0
    return (d[0][0] * (d[1][1] * d[2][2] - d[1][2] * d[2][1]) - d[0][1] * (d[1][0] * d[2][2] - d[1][2] * d[2][0])
            + d[0][2] * (d[1][0] * d[2][1] - d[1][1] * d[2][0])).astype(np.float32)
