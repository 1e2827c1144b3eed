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
    r"""SSIM of 3D volumes (X, Y, Z), or per volume of batches (B, X, Y, Z).

    MONAI ``SSIMMetric`` (3D Gaussian window, σ = 1.5 voxels, valid convolution): with local
    means μ, variances σ² and covariance σ_ab under the window,

    .. math::  \mathrm{SSIM} = \operatorname{mean}_v
               \frac{(2 \mu_a \mu_b + c_1)(2 \sigma_{ab} + c_2)}{(\mu_a^2 + \mu_b^2 + c_1)
               (\sigma_a^2 + \sigma_b^2 + c_2)}, \qquad c_i = (k_i L)^2,\; k = (0.01, 0.03),

    L = ``data_range``. The window is ``kernel_size`` wide, shrunk to the largest odd size that
    fits the volume (7 suits 32³-96³; 11, the 2D default, leaves little of a 32³ volume).

    Parameters
    ----------
    a, b : array_like, shape (X, Y, Z) or (B, X, Y, Z)
        Two volumes, or two batches, of one shape (``ValueError`` otherwise).
    data_range : float, default=None
        L; None: max - min of ``a`` and ``b`` pooled (a ``ValueError`` if that is 0).
    kernel_size : int, default=7
        Width of the Gaussian window (odd), at most the volume's smallest side.

    Returns
    -------
    float or ndarray of float64, shape (B,)
        The SSIM of the two volumes, or of each pair of a batch (1 for identical volumes).

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.imaging import make_phantom
    >>> from roisynth.imaging.verification import ssim3d
    >>> a = make_phantom((16, 16, 16), random_state=0).image
    >>> b = a + np.random.default_rng(0).normal(0.0, 10.0, a.shape)
    >>> round(ssim3d(a, a), 4), round(ssim3d(a, b), 2)
    (1.0, 0.96)
    >>> ssim3d(np.stack([a, a]), np.stack([a, b])).round(2)
    array([1.  , 0.96])
    """
    from monai.metrics import SSIMMetric

    x, y, single, data_range = _pair(a, b, data_range)
    kernel = min(_odd_floor(min(x.shape[2:])), kernel_size)
    values = SSIMMetric(spatial_dims=3, data_range=data_range, win_size=kernel)(x, y).view(-1).numpy()
    return float(values[0]) if single else values.astype(np.float64)


def ms_ssim3d(a, b, data_range: float | None = None, scales: int = 3,
              kernel_size: int | None = None) -> float | np.ndarray:
    r"""Multi-scale SSIM of 3D volumes (or per volume of batches), MONAI ``MultiScaleSSIMMetric``.

    With cs_s the contrast-structure term of SSIM, averaged over the volume, at scale s (the
    volume halved by 2× average pooling between scales) and the full SSIM at the coarsest scale S,

    .. math::  \mathrm{MS\text{-}SSIM} = \mathrm{SSIM}_S^{w_S} \prod_{s < S} cs_s^{w_s},

    w = the first ``scales`` of :data:`MS_SSIM_WEIGHTS` renormalised to sum to 1.

    Five scales (the 2D default) need ≥ 11 · 16 voxels per axis; with 3 scales a 32³ volume is
    8³ at the coarsest scale.

    Parameters
    ----------
    a, b : array_like, shape (X, Y, Z) or (B, X, Y, Z)
        Two volumes, or two batches, of one shape.
    data_range : float, default=None
        As in :func:`ssim3d` (None: the pooled range of ``a`` and ``b``).
    scales : int, default=3
        Number of scales, 1 .. 5 (``ValueError`` otherwise).
    kernel_size : int, default=None
        Gaussian window width; None: the largest odd window ≤ 7 that the coarsest scale
        (min size // 2^(scales - 1)) still holds (7 from 32³ up). A window larger than the
        coarsest scale, or under 3 voxels, is a ``ValueError``.

    Returns
    -------
    float or ndarray of float64, shape (B,)
        The MS-SSIM of the two volumes, or of each pair of a batch.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.imaging import make_phantom
    >>> from roisynth.imaging.verification import ms_ssim3d
    >>> a = make_phantom((16, 16, 16), random_state=0).image
    >>> b = a + np.random.default_rng(0).normal(0.0, 10.0, a.shape)
    >>> round(ms_ssim3d(a, a, scales=2), 4), round(ms_ssim3d(a, b, scales=2), 2)
    (1.0, 0.99)
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
    """The band B of an edit: voxels whose label changed, dilated by ``dilation`` voxels.

    B = {v : some voxel u with labels_factual(u) ≠ labels_cf(u) has ‖u - v‖_∞ ≤ dilation}
    (``dilation`` binary dilations by the 3 × 3 × 3 cube). :func:`locality` compares the
    images inside and outside it.

    Parameters
    ----------
    labels_factual, labels_cf : array_like, shape (X, Y, Z)
        The label maps before and after the edit (3D, one shape; ``ValueError`` otherwise).
    dilation : int, default=2
        Chebyshev radius of the dilation, ≥ 0 (0: the changed voxels only).

    Returns
    -------
    ndarray of bool, shape (X, Y, Z)
        B (all False when no label changed).

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.imaging.verification import edit_band
    >>> labels = np.zeros((7, 7, 7), dtype=int)
    >>> edited = labels.copy()
    >>> edited[3, 3, 3] = 4  # one voxel relabelled
    >>> [int(edit_band(labels, edited, dilation=d).sum()) for d in (0, 1, 2)]  # 1, 3³, 5³
    [1, 27, 125]
    """
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
    r"""Locality of an edit: how much two images differ outside the edited band vs inside it.

    .. math::  \text{inside} = \operatorname{mean}_{v \in B} |a_v - b_v|, \qquad
               \text{outside} = \operatorname{mean}_{v \notin B} |a_v - b_v|, \qquad
               \text{ratio} = \text{outside} / \text{inside},

    0 for a perfectly local edit (NaN when inside is 0).

    Parameters
    ----------
    image_a, image_b : array_like
        The two images (e.g. counterfactual and null intervention), of one shape.
    band : array_like of bool
        B, of the images' shape (e.g. :func:`edit_band`); it must mark some voxels but not
        all (``ValueError`` otherwise).

    Returns
    -------
    dict
        ``"inside"``, ``"outside"`` and ``"ratio"``, floats.

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.imaging.verification import locality
    >>> band = np.zeros((5, 5, 5), dtype=bool)
    >>> band[1:4, 1:4, 1:4] = True
    >>> a, b = np.zeros((5, 5, 5)), np.where(band, 1.0, 0.1)
    >>> {key: round(value, 3) for key, value in locality(a, b, band).items()}
    {'inside': 1.0, 'outside': 0.1, 'ratio': 0.1}
    """
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

    k is the segmenter's calibration slope (m ≈ k t, :func:`calibrate_segmenter`), so m / k
    estimates the true change. Where t = 0 the error is NaN and left out of the summary.

    Parameters
    ----------
    measured_change : array_like or DataFrame, shape (n_subjects, n_rois)
        m, e.g. segmenter volume changes (mm³); rows = subjects, columns = ROIs.
    intended_change : array_like or DataFrame, shape (n_subjects, n_rois)
        t, of ``measured_change``'s shape (``ValueError`` otherwise).
    calibration : float, array_like, mapping or Series, default=1.0
        k: a number, an array broadcast against ``measured_change``, or one per column (a mapping or
        Series keyed by column name, e.g. :func:`calibrate_segmenter`'s slopes; this needs
        ``measured_change`` as a DataFrame). Finite and nonzero (``ValueError`` otherwise).

    Returns
    -------
    dict
        ``"error"``: e (a DataFrame with ``measured_change``'s index and columns if that is
        one, else an ndarray); ``"median"``: the median of the finite errors; ``"within_25"``:
        the share of finite errors ≤ 0.25 (both NaN when no error is finite).

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from roisynth.imaging.verification import volume_agreement
    >>> measured = pd.DataFrame({"Hippocampus_L": [-90.0, -60.0], "Amygdala_L": [-30.0, 0.0]})
    >>> intended = np.array([[-100.0, -40.0], [-80.0, 0.0]])
    >>> result = volume_agreement(measured, intended)
    >>> result["error"]
       Hippocampus_L  Amygdala_L
    0           0.10        0.25
    1           0.25         NaN
    >>> result["median"], result["within_25"]
    (0.25, 1.0)
    >>> volume_agreement(measured, intended, {"Hippocampus_L": 0.9, "Amygdala_L": 0.75})["median"]
    0.0
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

    For ``n`` seeds (spawned from ``random_state``), the phantom and the same seed with every
    ROI of ``rois`` changed by ``change`` (:func:`~roisynth.imaging.cohort.phantom_with_changes`,
    so the anatomy, deformation and contrast are shared): t = true change of each ROI's mask
    channel (voxels × voxel volume), m = change of the segmenter's soft volume. Least squares
    through the origin,

    .. math::  k = \frac{\sum_i m_i t_i}{\sum_i t_i^2},

    per ROI and pooled over the ROIs. A ROI absent from a seed's anatomy adds nothing (its slope
    is NaN if it never changed); a ``ValueError`` if no ROI changed at all.

    Parameters
    ----------
    segmenter : Segmenter
        Anything with ``volumes(images, voxel_volume)`` returning a DataFrame with a column
        per ``MASK_CHANNELS`` name (:meth:`~roisynth.imaging.segmenter.Segmenter.volumes`).
    shape : int or tuple of int
        Phantom grid: n (an n³ cube) or (X, Y, Z).
    n : int, default=8
        Phantom pairs.
    change : float, default=-0.15
        Relative volume change of each ROI in the edited phantom.
    rois : sequence of int or str, default=(17, 53, 18, 54)
        Label codes or ``MASK_CHANNELS`` names (a name edits every code of its channel);
        default the hippocampi and amygdalae.
    random_state : int or None, default=0
        Seed of the phantom seeds.

    Returns
    -------
    Series
        ``"slope"``: k per ROI (index: the ``MASK_CHANNELS`` names, in the order of ``rois``)
        and ``"pooled"`` last.

    Examples
    --------
    An untrained segmenter (its slopes mean nothing; a trained one gives k near 1):

    >>> import torch
    >>> from roisynth.imaging import Segmenter, get_config
    >>> from roisynth.imaging.verification import calibrate_segmenter
    >>> _ = torch.manual_seed(0)
    >>> slopes = calibrate_segmenter(Segmenter(get_config("16")), 32, n=2, rois=("Hippocampus_L", 53))
    >>> list(slopes.index)
    ['Hippocampus_L', 'Hippocampus_R', 'pooled']
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
    r"""FID on segmenter features: W2² between Gaussian fits of two feature tables.

    With μ_a, μ_b the feature means and A, B the covariances (unbiased) of the two tables,

    .. math::  \mathrm{FID} = \lVert \mu_a - \mu_b \rVert^2 + \operatorname{tr}\big(A + B
               - 2 (A^{1/2} B A^{1/2})^{1/2}\big),

    computed as ``gaussian_w2(a, b) ** 2`` (:func:`roisynth.metrics.wasserstein.gaussian_w2`).
    Not an Inception FID: compare values only between runs that use the same segmenter.

    Parameters
    ----------
    features_a, features_b : array_like or DataFrame, shape (n_images, n_features)
        Feature tables (rows = images), e.g. :meth:`~roisynth.imaging.segmenter.Segmenter.features`
        of real and generated images; at least 2 rows each.

    Returns
    -------
    float
        The Fréchet distance (≥ 0; 0 for identical tables).

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.imaging.verification import feature_fid
    >>> a = np.random.default_rng(0).normal(0.0, 1.0, size=(200, 3))
    >>> round(feature_fid(a, a), 6), round(feature_fid(a, a + [1.0, 0.0, 0.0]), 6)  # same covariance: ‖Δμ‖²
    (0.0, 1.0)
    """
    return gaussian_w2(features_a, features_b) ** 2


def image_mmd(a, b, factor: int = 4) -> float:
    """MMD² (:func:`roisynth.metrics.mmd.mmd`) between two sets of features or images.

    Feature tables (n, F) are compared as they are; image batches (n, X, Y, Z) are first
    averaged over ``factor``³ blocks and flattened, one row of X Y Z / factor³ values per image.
    The kernel is ``mmd``'s mean of five RBF kernels with median-heuristic bandwidths, and the
    estimate its unbiased U-statistic (0 on average for one distribution; it can be slightly
    negative).

    Parameters
    ----------
    a, b : array_like, shape (n, F) or (n, X, Y, Z)
        Two feature tables or two image batches (at least 2 rows each); anything else is a
        ``ValueError``.
    factor : int, default=4
        Block side for images; it must divide every side of the grid (``ValueError``
        otherwise). Ignored for feature tables.

    Returns
    -------
    float
        MMD² (not MMD).

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.imaging.verification import image_mmd
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(6, 8, 8, 8)), rng.normal(size=(6, 8, 8, 8))
    >>> image_mmd(a, b + 1.0, factor=4) > 10 * abs(image_mmd(a, b, factor=4))  # a shift is seen
    True
    """
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
    ``cohort``, default all): volume agreement, locality, similarity, distribution distances.

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

    Parameters
    ----------
    model : MaskGuidedDiffusion
        Anything with ``counterfactual(mri, masks_factual, masks_cf, metadata, metadata_cf,
        steps=...)`` returning an image of ``mri``'s shape.
    segmenter : Segmenter
        Anything with ``volumes(images, voxel_volume)`` (a DataFrame with a column per mask
        channel) and ``features(images)`` (n, F).
    cohort : PhantomCohort
        The held-out subjects; their phantoms are regenerated (:meth:`PhantomCohort.phantom`).
    change : float, default=-0.15
        Relative volume change of each ROI of ``rois``.
    rois : sequence of str, default=("Hippocampus_L", "Hippocampus_R", "Amygdala_L", "Amygdala_R")
        ``MASK_CHANNELS`` names (or their label codes) of single-label, editable channels (not
        CSF, Cortex, White_Matter: a ``ValueError``); they must exist in the phantoms.
    calibration : float, mapping or Series, default=None
        The segmenter's slopes k for :func:`volume_agreement` (a number or one per ROI name);
        None: k = 1.
    n_subjects : int, default=None
        Subjects evaluated, the first ones, in 1 .. len(cohort); None: all.
    steps : int, default=None
        DDIM steps passed to ``model.counterfactual`` (None: the model's default).

    Returns
    -------
    table : DataFrame
        One row per subject: ``subject`` and the columns above.
    summary : dict
        The summary above.

    Examples
    --------
    An untrained model and segmenter on one 32³ phantom (only the layout is meaningful; the
    intended change is one voxel of 8³ mm³):

    >>> import torch
    >>> from roisynth.imaging import MaskGuidedDiffusion, Segmenter, get_config, make_cohort
    >>> from roisynth.imaging.verification import evaluate_counterfactuals
    >>> _ = torch.manual_seed(0)
    >>> config = get_config("32")
    >>> model, segmenter = MaskGuidedDiffusion(config), Segmenter(config)
    >>> cohort = make_cohort(1, shape=32, random_state=0)
    >>> table, summary = evaluate_counterfactuals(model, segmenter, cohort, rois=("Hippocampus_L",), steps=1)
    >>> list(table.columns)  # doctest: +NORMALIZE_WHITESPACE
    ['subject', 'Hippocampus_L_intended', 'Hippocampus_L_measured', 'inside', 'outside',
     'locality_ratio', 'null_ssim', 'ms_ssim', 'seconds', 'Hippocampus_L_error']
    >>> round(float(table["Hippocampus_L_intended"].iloc[0]), 1), summary["n_subjects"]
    (-512.0, 1)
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
