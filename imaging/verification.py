r"""Figures that verify generated and counterfactual images (numpy in, numbers out).

- **Similarity**: :func:`ssim3d`, :func:`ms_ssim3d` (MONAI's 3D SSIM / MS-SSIM, Gaussian
  window σ = 1.5 voxels).
- **Locality** of an edit: with B the band of voxels whose label changed, dilated by d
  voxels (:func:`edit_band`), :func:`locality` compares mean |a - b| outside B with inside B;
  ratio = outside / inside (0 for a perfectly local edit).
- **Volume agreement**: a segmenter measures the volume change m of each ROI, the masks
  intended t; relative error e = |m / k - t| / |t| (:func:`volume_agreement`), k the segmenter's
  calibration slope (:func:`calibrate_segmenter`: m ≈ k t on ground-truth phantom pairs).
- **Distribution distances**: :func:`feature_fid`, the Fréchet distance
  ‖μ_a - μ_b‖² + tr(A + B - 2 (A^{1/2} B A^{1/2})^{1/2}) between Gaussian fits of
  *segmenter* features (not an Inception FID); :func:`image_mmd`, MMD² of features or of
  block-averaged images.
- :func:`evaluate_counterfactuals` puts them together for a diffusion model.
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from scipy import ndimage

from roisynth.metrics.mmd import mmd
from roisynth.metrics.wasserstein import gaussian_w2
from roisynth.utils.validation import check_count

from .bridge import counterfactual_masks
from .cohort import PhantomCohort, phantom_with_changes
from .condition import MASK_CHANNELS
from .labels import roi_codes
from .nifti import voxel_volume

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
"""Wang et al. (2003) scale weights, finest first; :func:`ms_ssim3d` uses the first ``scales``,
renormalised to sum to 1."""

CHANNEL_CODES = {name: codes for name, codes in MASK_CHANNELS}


def ssim3d(a, b, data_range: float | None = None, kernel_size: int = 7) -> float | np.ndarray:
    """SSIM of 3D volumes (X, Y, Z), or per volume of batches (B, X, Y, Z).

    MONAI ``SSIMMetric`` (3D Gaussian window, σ = 1.5 voxels, valid convolution) with a
    ``kernel_size`` window, shrunk to the largest odd size that fits the volume (7 suits
    32³-96³; 11, the 2D default, leaves little of a 32³ volume). ``data_range``: default the
    range max - min of ``a`` and ``b`` pooled (SSIM's constants c_i = (k_i · range)²).
    """
    from monai.metrics import SSIMMetric

    x, y, single, data_range = _pair(a, b, data_range)
    kernel = min(_odd_floor(min(x.shape[2:])), kernel_size)
    values = SSIMMetric(spatial_dims=3, data_range=data_range, win_size=kernel)(x, y).view(-1).numpy()
    return float(values[0]) if single else values.astype(np.float64)


def ms_ssim3d(a, b, data_range: float | None = None, scales: int = 3,
              kernel_size: int | None = None) -> float | np.ndarray:
    r"""Multi-scale SSIM of 3D volumes (or per volume of batches), MONAI ``MultiScaleSSIMMetric``:
    MS-SSIM = Π_s cs_s^{w_s} (SSIM at the coarsest scale), the volume halved (2× average
    pooling) between scales, w = the first ``scales`` of :data:`MS_SSIM_WEIGHTS` renormalised.

    Five scales (the 2D default) need ≥ 11 · 16 voxels per axis; with 3 scales a 32³ volume is
    8³ at the coarsest scale. ``kernel_size`` default: the largest odd window ≤ 7 that the
    coarsest scale (min size // 2^(scales - 1)) still holds (7 from 32³ up); a window larger
    than the coarsest scale, or under 3 voxels, is a ``ValueError``. ``data_range`` as in :func:`ssim3d`.
    """
    from monai.metrics import MultiScaleSSIMMetric

    check_count(scales, "scales")
    if scales > len(MS_SSIM_WEIGHTS):
        raise ValueError(f"scales must be <= {len(MS_SSIM_WEIGHTS)} (the weights known), got {scales}")
    x, y, single, data_range = _pair(a, b, data_range)
    coarsest = min(x.shape[2:]) // 2 ** (scales - 1)
    kernel = min(7, _odd_floor(coarsest)) if kernel_size is None else kernel_size
    if not 3 <= kernel <= coarsest:
        raise ValueError(f"the coarsest of {scales} scales is {coarsest} voxels wide, too small for a "
                         f"{kernel}-voxel window: use fewer scales or a smaller kernel_size")
    weights = np.asarray(MS_SSIM_WEIGHTS[:scales]) / sum(MS_SSIM_WEIGHTS[:scales])
    metric = MultiScaleSSIMMetric(spatial_dims=3, data_range=data_range, kernel_size=kernel, weights=tuple(weights))
    values = metric(x, y).view(-1).numpy()
    return float(values[0]) if single else values.astype(np.float64)


def edit_band(labels_factual, labels_cf, dilation: int = 2) -> np.ndarray:
    """Boolean mask of the voxels whose label differs between the two maps, dilated by
    ``dilation`` voxels (3 × 3 × 3 cube, i.e. Chebyshev distance ≤ ``dilation``)."""
    before, after = np.asarray(labels_factual), np.asarray(labels_cf)
    if before.shape != after.shape or before.ndim != 3:
        raise ValueError(f"label maps must be 3D of one shape, got {before.shape} and {after.shape}")
    if isinstance(dilation, bool) or not isinstance(dilation, numbers.Integral) or dilation < 0:
        raise ValueError(f"dilation must be an integer >= 0, got {dilation!r}")
    changed = before != after
    if dilation == 0 or not changed.any():
        return changed
    return ndimage.binary_dilation(changed, structure=np.ones((3, 3, 3), bool), iterations=int(dilation))


def locality(image_a, image_b, band) -> dict[str, float]:
    """Mean |a - b| inside and outside ``band`` and ratio = outside / inside (NaN when inside is 0)."""
    a, b, band = np.asarray(image_a, np.float64), np.asarray(image_b, np.float64), np.asarray(band, bool)
    if not a.shape == b.shape == band.shape:
        raise ValueError(f"images and band must share a shape, got {a.shape}, {b.shape}, {band.shape}")
    if band.all() or not band.any():
        raise ValueError("band must mark some voxels but not all (no label changed, or the band covers the volume)")
    diff = np.abs(a - b)
    inside, outside = float(diff[band].mean()), float(diff[~band].mean())
    return {"inside": inside, "outside": outside, "ratio": outside / inside if inside > 0 else float("nan")}


def volume_agreement(measured_change, intended_change, calibration=1.0) -> dict:
    """Relative error e = |m / k - t| / |t| of measured volume changes m against intended t.

    ``measured_change``, ``intended_change``: arrays or DataFrames of one shape (rows =
    subjects, columns = ROIs); ``calibration`` k: a number, or one per column (mapping or
    Series by column name, e.g. :func:`calibrate_segmenter`'s slopes). Where t = 0 the error
    is NaN and left out of the summary.

    Returns ``{"error": errors (DataFrame if measured is one), "median": median error,
    "within_25": share of errors ≤ 0.25}``.
    """
    frame = isinstance(measured_change, pd.DataFrame)
    m = measured_change.astype(float) if frame else np.asarray(measured_change, dtype=float)
    t = np.asarray(intended_change, dtype=float)
    if np.shape(m) != t.shape:
        raise ValueError(f"measured and intended changes differ in shape: {np.shape(m)} vs {t.shape}")
    if isinstance(calibration, Mapping | pd.Series):
        if not frame:
            raise ValueError("a per-ROI calibration needs measured_change as a DataFrame with ROI columns")
        missing = [c for c in m.columns if c not in calibration]
        if missing:
            raise ValueError(f"calibration lacks ROIs {missing}")
        k = np.array([float(calibration[c]) for c in m.columns])
    else:
        k = np.asarray(calibration, dtype=float)
    if not np.all(np.isfinite(k)) or np.any(k == 0):
        raise ValueError(f"calibration must be finite and nonzero, got {calibration!r}")
    with np.errstate(divide="ignore", invalid="ignore"):
        error = np.where(t != 0, np.abs(np.asarray(m, float) / k - t) / np.abs(t), np.nan)
    finite = error[np.isfinite(error)]
    if frame:
        error = pd.DataFrame(error, index=m.index, columns=m.columns)
    return {"error": error, "median": float(np.median(finite)) if finite.size else float("nan"),
            "within_25": float(np.mean(finite <= 0.25)) if finite.size else float("nan")}


def calibrate_segmenter(segmenter, shape, n: int = 8, change: float = -0.15,
                        rois: Sequence[int | str] = (17, 53, 18, 54), random_state: int | None = 0) -> pd.Series:
    r"""Slope k of segmenter-measured against true volume change, on ground-truth phantom pairs.

    For ``n`` seeds, the phantom and the same seed with ``volume_changes={roi: change}`` (so the
    anatomy, deformation and contrast are shared): t = true change of the ROI's mask channel
    (voxels × voxel volume), m = change of the segmenter's soft volume. Least squares through
    the origin, k = Σ m t / Σ t², per ROI (index: the ``MASK_CHANNELS`` names) and ``"pooled"``.
    ``rois``: label codes or ``MASK_CHANNELS`` names. A ROI absent from a seed's anatomy adds
    nothing (its slope is NaN if it never changed); ``ValueError`` if no ROI changed at all.
    """
    channels = _channels(rois)
    grid = (int(shape),) * 3 if isinstance(shape, numbers.Integral) else tuple(shape)
    edited = {code: change for roi in rois for code in ((roi,) if _code(roi) is not None else CHANNEL_CODES[roi])}
    true, measured = [], []
    for child in np.random.SeedSequence(random_state).spawn(int(n)):
        seed = int(child.generate_state(1)[0])
        pair = [phantom_with_changes(grid, seed, changes) for changes in ({}, edited)]
        voxel = voxel_volume(pair[0].affine)
        counts = np.array([[np.isin(p.labels, CHANNEL_CODES[name]).sum() for name in channels] for p in pair])
        true.append((counts[1] - counts[0]) * voxel)
        volumes = segmenter.volumes(np.stack([p.image for p in pair]), voxel)[channels].to_numpy()
        measured.append(volumes[1] - volumes[0])
    true, measured = np.array(true), np.array(measured)
    if not np.any(true):
        raise ValueError(
            f"no true volume change in {n} phantom pairs of shape {grid}: a larger grid or change is needed"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        slopes = (measured * true).sum(0) / (true**2).sum(0)
    pooled = (measured * true).sum() / (true**2).sum()
    return pd.Series([*slopes, pooled], index=[*channels, "pooled"], name="slope")


def feature_fid(features_a, features_b) -> float:
    """FID on segmenter features: W2² between Gaussian fits of two feature tables (rows =
    images), ``gaussian_w2(a, b) ** 2``. Not an Inception FID: compare values only between
    runs that use the same segmenter."""
    return gaussian_w2(features_a, features_b) ** 2


def image_mmd(a, b, factor: int = 4) -> float:
    """MMD² (:func:`roisynth.metrics.mmd.mmd`) between two sets: feature tables (n, F) as they
    are, image batches (n, X, Y, Z) averaged over ``factor``³ blocks and flattened."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim == 4 and b.ndim == 4:
        a, b = _block_mean(a, factor), _block_mean(b, factor)
    elif not a.ndim == b.ndim == 2:
        raise ValueError(f"give two feature tables (n, F) or two image batches (n, X, Y, Z), got {a.shape}, {b.shape}")
    return mmd(a, b)


def evaluate_counterfactuals(model, segmenter, cohort: PhantomCohort, *, change: float = -0.15,
                             rois: Sequence[str] = ("Hippocampus_L", "Hippocampus_R", "Amygdala_L", "Amygdala_R"),
                             calibration=None, n_subjects: int | None = None, steps: int | None = None
                             ) -> tuple[pd.DataFrame, dict]:
    """Counterfactual figures of ``model`` on held-out subjects (the first ``n_subjects`` of
    ``cohort``, default all).

    Per subject: its phantom's label map with every ROI of ``rois`` (``MASK_CHANNELS`` names)
    edited to (1 + ``change``) × its volume at the CSF boundary (:func:`counterfactual_masks`,
    ranked by the phantom's posteriors), metadata_cf = the subject with diagnosis AD;
    cf = ``model.counterfactual(image, labels, labels_cf, meta, meta_cf)`` and the null
    intervention null = ``model.counterfactual(image, labels, labels, meta, meta)``.

    Columns: ``<roi>_intended`` (mask volume change, mm³), ``<roi>_measured`` (segmenter soft
    volume of cf - of null, mm³), ``<roi>_error`` (:func:`volume_agreement` with
    ``calibration``: a number, per-ROI slopes, or None = 1); ``inside``, ``outside``,
    ``locality_ratio`` (:func:`locality` of cf vs null in :func:`edit_band`); ``null_ssim``
    (SSIM of null vs the real image); ``ms_ssim`` (MS-SSIM of cf vs the real image);
    ``seconds`` (mean time of one ``counterfactual`` call).

    Summary: ``volume_error_median``, ``volume_within_25``, ``null_ssim``, ``locality_ratio``,
    ``ms_ssim`` (means), ``seconds_per_volume``, ``fid_segmenter_features`` and ``mmd_images``
    (:func:`image_mmd` on 4³-block means) of cf vs the real images (NaN for one subject), and
    ``n_subjects``.
    """
    channels = _channels(rois)
    names = {code: name for name, code in roi_codes().items()}
    if any(len(CHANNEL_CODES[c]) != 1 or CHANNEL_CODES[c][0] not in names for c in channels):
        raise ValueError(
            f"rois must be single-label, editable mask channels (not CSF, Cortex, White_Matter), got {list(rois)}"
        )
    n = len(cohort) if n_subjects is None else int(n_subjects)
    if not 1 <= n <= len(cohort):
        raise ValueError(f"n_subjects must be in [1, {len(cohort)}], got {n_subjects!r}")
    roi_name = {names[CHANNEL_CODES[c][0]]: c for c in channels}
    rows, generated = [], []
    for i in range(n):
        phantom = cohort.phantom(i)
        edit = counterfactual_masks(phantom, {r: 1.0 + change for r in roi_name}, reference={r: 1.0 for r in roi_name},
                                    rois=list(roi_name))
        meta = cohort.metadata.iloc[i][["age", "sex", "diagnosis"]].to_dict()
        meta_cf = {**meta, "diagnosis": "AD"}
        image, labels = cohort.images[i], cohort.labels[i]
        start = time.perf_counter()
        cf = model.counterfactual(image, labels, edit.labels, meta, meta_cf, steps=steps)
        null = model.counterfactual(image, labels, labels, meta, meta, steps=steps)
        seconds = (time.perf_counter() - start) / 2
        cf, null = (np.asarray(x, dtype=np.float32).reshape(image.shape) for x in (cf, null))
        volumes = segmenter.volumes(np.stack([cf, null]), cohort.voxel_volume)
        row = {"subject": cohort.metadata["subject"].iloc[i]}
        for roi, channel in roi_name.items():
            intended = edit.table.loc[roi, "achieved_mm3"] - edit.table.loc[roi, "original_mm3"]
            row[f"{channel}_intended"] = float(intended)
            row[f"{channel}_measured"] = float(volumes[channel].iloc[0] - volumes[channel].iloc[1])
        local = locality(cf, null, edit_band(labels, edit.labels))
        row.update(inside=local["inside"], outside=local["outside"], locality_ratio=local["ratio"],
                   null_ssim=ssim3d(null, image), ms_ssim=ms_ssim3d(cf, image), seconds=seconds)
        rows.append(row)
        generated.append(cf)
    table = pd.DataFrame(rows)
    agreement = volume_agreement(table[[f"{c}_measured" for c in channels]].set_axis(channels, axis=1),
                                 table[[f"{c}_intended" for c in channels]].to_numpy(),
                                 1.0 if calibration is None else calibration)
    for channel in channels:
        table[f"{channel}_error"] = agreement["error"][channel].to_numpy()
    real = cohort.images[:n]
    generated = np.stack(generated)
    fid = feature_fid(segmenter.features(real), segmenter.features(generated)) if n > 1 else float("nan")
    image_distance = image_mmd(real, generated) if n > 1 else float("nan")
    summary = {"volume_error_median": agreement["median"], "volume_within_25": agreement["within_25"],
               "null_ssim": float(table["null_ssim"].mean()), "locality_ratio": float(table["locality_ratio"].mean()),
               "ms_ssim": float(table["ms_ssim"].mean()), "seconds_per_volume": float(table["seconds"].mean()),
               "fid_segmenter_features": fid, "mmd_images": image_distance, "n_subjects": n}
    return table, summary


def _pair(a, b, data_range):
    """Two volumes or batches as (B, 1, X, Y, Z) tensors, whether a single pair, and the range."""
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    if a.shape != b.shape or a.ndim not in (3, 4):
        raise ValueError(f"a and b must be two (X, Y, Z) volumes or (B, X, Y, Z) batches of one shape, "
                         f"got {a.shape} and {b.shape}")
    if data_range is None:
        data_range = float(max(a.max(), b.max()) - min(a.min(), b.min()))
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range!r} (constant images?)")
    single = a.ndim == 3
    tensors = [torch.from_numpy(x[None] if single else x).unsqueeze(1) for x in (a, b)]
    return tensors[0], tensors[1], single, float(data_range)


def _odd_floor(size: int) -> int:
    return size if size % 2 else size - 1


def _block_mean(images: np.ndarray, factor: int) -> np.ndarray:
    n, *grid = images.shape
    integer = isinstance(factor, numbers.Integral) and not isinstance(factor, bool)
    if not integer or factor < 1 or any(s % factor for s in grid):
        raise ValueError(f"factor must be a positive integer dividing the grid {tuple(grid)}, got {factor!r}")
    x, y, z = (s // factor for s in grid)
    return images.reshape(n, x, factor, y, factor, z, factor).mean(axis=(2, 4, 6)).reshape(n, -1)


def _code(roi) -> int | None:
    return int(roi) if isinstance(roi, numbers.Integral) and not isinstance(roi, bool) else None


def _channels(rois) -> list[str]:
    """``MASK_CHANNELS`` names of ROIs given by name or label code, in order, without repeats."""
    if isinstance(rois, str) or not isinstance(rois, Sequence) or not rois:
        raise ValueError(f"rois must be a non-empty list of label codes or MASK_CHANNELS names, got {rois!r}")
    channels = []
    for roi in rois:
        match = [name for name, codes in MASK_CHANNELS if roi == name or _code(roi) in codes]
        if not match:
            raise ValueError(
                f"ROI {roi!r} is neither a MASK_CHANNELS name {list(CHANNEL_CODES)} nor one of their codes"
            )
        if match[0] not in channels:
            channels.append(match[0])
    return channels
