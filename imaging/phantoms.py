r"""Phantom subjects: label map, T1-like image and soft posteriors, without real MRIs.

:func:`make_phantom` builds one subject in five seeded stages, each drawing from its own
random stream (``SeedSequence(seed).spawn``), so that a volume change leaves the anatomy,
deformation and contrast of the same seed untouched:

1. **Anatomy** -- procedural (nested implicit shapes, see :mod:`roisynth.imaging._anatomy`)
   or one of SynthSeg's training label maps, brought to the requested grid by per-block
   majority vote (integer factors) or nearest neighbour.
2. **Deformation** -- a smooth random displacement u(p) (low-frequency cosine series, RMS
   ``deformation`` mm per axis); the procedural shapes are evaluated at p + u(p), a real map is
   resampled there by nearest neighbour.
3. **Volume changes** -- ``{code: c}`` resizes ROI ``code`` from n to round((1 + c) n) voxels
   at its boundary: growth adds the non-ROI brain voxels closest to the ROI (Euclidean distance
   transform, ties broken by a seeded jitter), shrinkage removes the ROI voxels closest to its
   outside and gives each the label of its nearest kept neighbour. Other edited ROIs and
   non-brain labels (background, extra-cerebral) are never taken. The count is exact; the
   shape is a uniform erosion/dilation, not PCGM's posterior-ranked edit (that is the mask
   generator's job).
4. **Intensities** (SynthSeg-style GMM) -- each label k draws a mean μ_k ~ N(m_k, s_k) and an
   SD σ_k = SD_k · U(0.75, 1.25) from a T1 table (:func:`~roisynth.imaging._anatomy.t1_prior`:
   WM ≈ 110 > GM ≈ 75 > CSF ≈ 35), every voxel x_v ~ N(μ_{L(v)}, σ_{L(v)}); then Gaussian blur
   (``blur`` voxels), a multiplicative bias field exp(b(p)) (b: smooth, RMS ``bias``) and
   additive Gaussian noise (SD ``noise``).
5. **Posteriors** -- smoothed one-hot maps P(k | v) = (G_σ * 1[L = k])(v) / Σ_j (G_σ * 1[L = j])(v)
   with σ = ``posterior_sigma`` voxels, each filtered inside its label's bounding box only.

SynthSeg's ``prior_means_t1.npy`` / ``prior_stds_t1.npy`` are indexed by the classes of its
``generation_classes_contrast_specific.npy``, which the shared folder lacks (its
``generation_classes.npy`` has 48 classes against the priors' 25, and mapping through it gives
CSF brighter than WM), so both sources use the built-in T1 table.
"""

from __future__ import annotations

import json
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from roisynth.utils.atomic import write_bytes

from ._anatomy import FOV_MM, procedural_labels, t1_prior
from .labels import CSF, EXTRACEREBRAL_CODES
from .nifti import align_to, load_nifti, save_nifti, voxel_volume

SYNTHSEG_LABEL_MAPS = Path(__file__).resolve().parents[1].parent / "shared/data/synthseg_label_maps"
"""Where an integer ``source`` i is looked up as ``training_seg_{i:02d}.nii.gz``."""

OTHER = -1
"""Posterior channel code meaning "every label not stored on its own"."""

EDIT_ROIS: tuple[int, ...] = (17, 53, 18, 54, 3, 42, 4, 43)
"""Hippocampus, amygdala, cortex, lateral ventricles (L/R): the ROIs whose posteriors are kept
(with CSF) when storing every label would exceed :data:`POSTERIOR_BUDGET`."""

POSTERIOR_BUDGET = 512 * 2**20
"""Bytes of float32 posteriors above which the default keeps only ROIs, CSF and OTHER."""


@dataclass
class Phantom:
    """One phantom subject: T1-like image, label map and label posteriors.

    Made by :func:`make_phantom`, written and read by :func:`save` and :func:`load`.

    Parameters
    ----------
    image : ndarray of float32, shape (X, Y, Z)
        T1-like image (FreeSurfer-normalised units, WM ≈ 110).
    labels : ndarray of int16, shape (X, Y, Z)
        FreeSurfer label map.
    posteriors : ndarray of float32, shape (K, X, Y, Z)
        P(label ``posterior_labels[k]`` | voxel); the K maps sum to 1 at every voxel.
    posterior_labels : tuple of int
        The K codes; :data:`OTHER` (-1), when present, is the summed posterior of every label
        not listed.
    affine : ndarray of float64, shape (4, 4)
        Voxel -> scanner mm.
    metadata : dict, default={}
        JSON-ready: ``seed``, ``source``, ``shape``, ``voxel_size``, ``volume_changes``
        (requested), ``volumes`` (code -> mm³), ``intensity`` (code -> [μ, σ]) and the
        generation settings.

    Examples
    --------
    >>> from roisynth.imaging import make_phantom
    >>> phantom = make_phantom((32, 32, 32), random_state=0)
    >>> phantom.image.shape, phantom.labels.dtype, phantom.posteriors.shape[1:]
    ((32, 32, 32), dtype('int16'), (32, 32, 32))
    >>> phantom.posterior(17).shape  # the left hippocampus's posterior map
    (32, 32, 32)
    """

    image: np.ndarray
    labels: np.ndarray
    posteriors: np.ndarray
    posterior_labels: tuple[int, ...]
    affine: np.ndarray
    metadata: dict = field(default_factory=dict)

    def posterior(self, code: int) -> np.ndarray:
        """The posterior map of label ``code`` (a view of :attr:`posteriors`)."""
        if code not in self.posterior_labels:
            raise KeyError(f"no posterior stored for label {code}; stored: {list(self.posterior_labels)} "
                           "(pass posterior_labels='all' or a list including it to make_phantom)")
        return self.posteriors[self.posterior_labels.index(code)]


def make_phantom(
    shape=(64, 64, 64),
    source="procedural",
    volume_changes: Mapping[int, float] | None = None,
    random_state: int | None = None,
    *,
    deformation: float = 3.0,
    bias: float = 0.15,
    blur: float = 0.5,
    noise: float = 3.0,
    posterior_sigma: float = 0.75,
    posterior_labels="auto",
) -> Phantom:
    """Generate a phantom subject (see the module docstring for the maths).

    Parameters
    ----------
    shape : tuple of 3 int or "1mm", default=(64, 64, 64)
        Grid (X, Y, Z), or ``"1mm"`` for 1 mm voxels (256³ procedurally, the label map's
        own grid for a real source). The procedural head spans a 256 mm field of view, a real
        map its own; voxel size = field of view / shape.
    source : "procedural", path-like or int, default="procedural"
        ``"procedural"``, a path to a label map (NIfTI), or an int i for SynthSeg's
        ``training_seg_{i:02d}.nii.gz`` in :data:`SYNTHSEG_LABEL_MAPS`.
    volume_changes : mapping of int to float, default=None
        ``{code: c}``, relative change of each ROI's voxel count (c > -1), e.g.
        ``{17: -0.1}`` shrinks the left hippocampus by 10 %.
    random_state : int or None, default=None
        Seed (same seed => identical arrays); None draws one, recorded in ``metadata["seed"]``.
    deformation : float, default=3.0
        RMS displacement (mm per axis) of the smooth random deformation; 0 = none.
    bias : float, default=0.15
        RMS of the log bias field; 0 = none.
    blur : float, default=0.5
        Gaussian blur of the image (SD in voxels).
    noise : float, default=3.0
        SD of the additive Gaussian noise (image units).
    posterior_sigma : float, default=0.75
        SD (voxels) of the Gaussian smoothing the one-hot label maps.
    posterior_labels : "auto", "all" or sequence of int, default="auto"
        ``"auto"`` (every label if the float32 maps fit in :data:`POSTERIOR_BUDGET`, else
        :data:`EDIT_ROIS`, CSF and OTHER), ``"all"``, or a list of codes (OTHER is appended
        unless they cover every label).

    Returns
    -------
    Phantom
        Image, labels, posteriors, affine and metadata.

    Examples
    --------
    >>> from roisynth.imaging import make_phantom
    >>> phantom = make_phantom((32, 32, 32), random_state=0)
    >>> phantom.metadata["voxel_size"], round(phantom.metadata["volumes"]["17"])  # mm³
    ([8.0, 8.0, 8.0], 3584)
    >>> smaller = make_phantom((32, 32, 32), volume_changes={17: -0.25}, random_state=0)
    >>> round(smaller.metadata["volumes"]["17"])  # 5 voxels of 512 mm³ instead of 7
    2560
    """
    seed = _check_seed(random_state)
    for name, value in (("deformation", deformation), ("bias", bias), ("blur", blur), ("noise", noise),
                        ("posterior_sigma", posterior_sigma)):
        if not isinstance(value, numbers.Real) or not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    rng_deform, rng_anatomy, rng_edit, rng_intensity = (np.random.default_rng(s)
                                                        for s in np.random.SeedSequence(seed).spawn(4))
    if isinstance(source, str) and source == "procedural":
        grid = _check_shape(shape, default=(256, 256, 256))
        voxel = np.full(3, FOV_MM) / grid
        affine = np.diag([*voxel, 1.0])
        affine[:3, 3] = -FOV_MM / 2 + voxel / 2
        displacement = _smooth_field(rng_deform, grid, deformation, n_components=3)
        coords = [((np.arange(n, dtype=np.float32) + 0.5) * v - FOV_MM / 2)
                  .reshape([-1 if d == a else 1 for d in range(3)])
                  for a, (n, v) in enumerate(zip(grid, voxel))]
        x, y, z = (coords[a] + displacement[a] for a in range(3))
        labels = procedural_labels(x, y, z, rng_anatomy.uniform(0, 2 * np.pi, 3), float(voxel.min()))
        del x, y, z, displacement
        source_name = "procedural"
    else:
        path = _source_path(source)
        labels, affine = _resample(*load_nifti(path)[:2], shape)
        grid = labels.shape
        voxel = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
        if deformation > 0:
            displacement = _smooth_field(rng_deform, grid, deformation, n_components=3)
            index = np.indices(grid, dtype=np.float32)
            index += displacement / voxel.astype(np.float32)[:, None, None, None]
            labels = ndimage.map_coordinates(labels, index, order=0, mode="nearest").astype(np.int16)
            del index, displacement
        source_name = str(path)
    changes = _check_changes(volume_changes, labels)
    for code, change in sorted(changes.items()):
        _change_volume(labels, code, change, set(changes), rng_edit)
    image, intensity = _intensities(labels, rng_intensity, bias=bias, blur=blur, noise=noise)
    posteriors, stored = _posteriors(labels, posterior_sigma, posterior_labels)
    codes, counts = np.unique(labels, return_counts=True)
    vox_mm3 = voxel_volume(affine)
    metadata = {
        "seed": seed, "source": source_name, "shape": [int(n) for n in grid],
        "voxel_size": [float(v) for v in voxel],
        "volume_changes": {str(k): float(v) for k, v in changes.items()},
        "volumes": {str(int(k)): float(c * vox_mm3) for k, c in zip(codes, counts)},
        "intensity": intensity,
        "settings": {"deformation": deformation, "bias": bias, "blur": blur, "noise": noise,
                     "posterior_sigma": posterior_sigma},
    }
    return Phantom(image, labels, posteriors, stored, affine, metadata)


def save(phantom: Phantom, folder: str | os.PathLike) -> Path:
    """Write a phantom as NIfTI files and JSON metadata into ``folder``.

    Writes ``image.nii.gz``, ``labels.nii.gz``, ``posteriors.nii.gz`` (X, Y, Z, K) and
    ``phantom.json`` (metadata + posterior codes) into ``folder`` (created).

    Parameters
    ----------
    phantom : Phantom
        The phantom to write.
    folder : str or path-like
        Destination folder.

    Returns
    -------
    Path
        ``folder``.

    Examples
    --------
    >>> import tempfile
    >>> from roisynth.imaging import load_phantom, make_phantom, save_phantom
    >>> phantom = make_phantom((16, 16, 16), random_state=0)
    >>> folder = save_phantom(phantom, tempfile.mkdtemp())
    >>> sorted(p.name for p in folder.iterdir())
    ['image.nii.gz', 'labels.nii.gz', 'phantom.json', 'posteriors.nii.gz']
    >>> bool((load_phantom(folder).labels == phantom.labels).all())
    True
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_nifti(folder / "image.nii.gz", phantom.image, phantom.affine)
    save_nifti(folder / "labels.nii.gz", phantom.labels, phantom.affine)
    save_nifti(folder / "posteriors.nii.gz", np.moveaxis(phantom.posteriors, 0, -1), phantom.affine)
    info = {"posterior_labels": list(phantom.posterior_labels), "metadata": phantom.metadata}
    write_bytes(folder / "phantom.json", json.dumps(info, indent=1).encode())
    return folder


def load(folder: str | os.PathLike) -> Phantom:
    """Read a phantom written by :func:`save`.

    Parameters
    ----------
    folder : str or path-like
        A folder written by :func:`save`.

    The label map and posteriors are put on the image's grid by their affines
    (:func:`~roisynth.imaging.nifti.align_to`: a flipped or reordered file is reordered exactly,
    another grid resampled by nearest neighbour, with a warning either way).

    Returns
    -------
    Phantom
        The phantom (image and posteriors as float32, labels as int16).

    Raises
    ------
    ValueError
        When the label map does not overlap the image, or holds codes beyond int16.

    Examples
    --------
    >>> import tempfile
    >>> from roisynth.imaging import load_phantom, make_phantom, save_phantom
    >>> folder = save_phantom(make_phantom((16, 16, 16), random_state=0), tempfile.mkdtemp())
    >>> load_phantom(folder).metadata["seed"]
    0
    """
    folder = Path(folder)
    info = json.loads((folder / "phantom.json").read_text())
    image, affine, _ = load_nifti(folder / "image.nii.gz")
    aligned = {}
    for name in ("labels.nii.gz", "posteriors.nii.gz"):  # on the image's grid, by their own affines
        array, own_affine, _ = load_nifti(folder / name)
        aligned[name] = align_to(array, own_affine, image.shape, affine, name=str(folder / name))
    labels = _check_label_range(aligned["labels.nii.gz"], folder / "labels.nii.gz")
    posteriors = np.ascontiguousarray(np.moveaxis(aligned["posteriors.nii.gz"], -1, 0), dtype=np.float32)
    return Phantom(image.astype(np.float32), labels, posteriors, tuple(info["posterior_labels"]), affine,
                   info["metadata"])


def _check_label_range(labels: np.ndarray, name) -> np.ndarray:
    """``labels`` as int16, or a ``ValueError`` naming ``name`` if a code does not fit."""
    info = np.iinfo(np.int16)
    if labels.size and (labels.min() < info.min or labels.max() > info.max):
        raise ValueError(f"{name} holds label codes outside int16 ({int(labels.min())}..{int(labels.max())}); "
                         "FreeSurfer codes fit in int16")
    return labels.astype(np.int16)


def _check_seed(random_state) -> int:
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool) and random_state >= 0:
        return int(random_state)
    raise TypeError(f"random_state must be a non-negative int or None, got {random_state!r}")


def _check_shape(shape, default) -> tuple[int, int, int]:
    if isinstance(shape, str):
        if shape != "1mm":
            raise ValueError(f"shape must be a tuple of 3 ints or '1mm', got {shape!r}")
        return tuple(int(n) for n in default)
    grid = tuple(shape) if isinstance(shape, (tuple, list)) else ()
    if len(grid) != 3 or not all(isinstance(n, numbers.Integral) and n >= 8 for n in grid):
        raise ValueError(f"shape must be 3 ints >= 8 (or '1mm'), got {shape!r}")
    return tuple(int(n) for n in grid)


def _source_path(source) -> Path:
    if isinstance(source, numbers.Integral) and not isinstance(source, bool):
        path = SYNTHSEG_LABEL_MAPS / f"training_seg_{int(source):02d}.nii.gz"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
    else:
        raise TypeError(f"source must be 'procedural', a path or an int, got {type(source).__name__}")
    if not path.is_file():
        raise FileNotFoundError(f"label map {path} not found (source={source!r}); "
                                "use source='procedural' to build the anatomy in code")
    return path


def _check_changes(volume_changes, labels) -> dict[int, float]:
    if volume_changes is None:
        return {}
    if not isinstance(volume_changes, Mapping):
        raise TypeError(f"volume_changes must be a mapping {{label code: relative change}}, got "
                        f"{type(volume_changes).__name__}")
    present = set(np.unique(labels).tolist())
    changes = {}
    for code, change in volume_changes.items():
        if not isinstance(code, numbers.Integral) or int(code) not in present:
            raise ValueError(f"volume_changes: label {code!r} is not in the label map (present: {sorted(present)})")
        if int(code) in (0, *EXTRACEREBRAL_CODES):
            raise ValueError(f"volume_changes: label {code} is background / extra-cerebral, not a brain ROI")
        if not isinstance(change, numbers.Real) or not np.isfinite(change) or change <= -1:
            raise ValueError(f"volume_changes[{code}] must be a finite number > -1, got {change!r}")
        changes[int(code)] = float(change)
    return changes


def _smooth_field(rng: np.random.Generator, grid, rms: float, n_components: int, n_freq: int = 4) -> np.ndarray:
    r"""``n_components`` smooth random fields on ``grid`` (float32, each with RMS ``rms``).

    f(i, j, k) = Σ_{a,b,c < n_freq, (a,b,c) ≠ 0} w_abc / (1 + a + b + c) · cos(π a (i + ½)/X) ·
    cos(π b (j + ½)/Y) · cos(π c (k + ½)/Z), w ~ N(0, 1), contracted axis by axis (separable).
    """
    if rms == 0:
        return np.zeros((n_components, *grid), dtype=np.float32)
    freq = np.arange(n_freq)
    decay = 1.0 / (1.0 + freq[:, None, None] + freq[None, :, None] + freq[None, None, :])
    decay[0, 0, 0] = 0.0
    bases = [np.cos(np.pi * freq[:, None] * (np.arange(n)[None, :] + 0.5) / n).astype(np.float32) for n in grid]
    fields = np.empty((n_components, *grid), dtype=np.float32)
    for c in range(n_components):
        weights = (rng.standard_normal((n_freq,) * 3) * decay).astype(np.float32)
        f = np.einsum("abc,ck->abk", weights, bases[2])
        f = np.einsum("abk,bj->ajk", f, bases[1])
        fields[c] = np.einsum("ajk,ai->ijk", f, bases[0])
        fields[c] *= rms / max(float(np.sqrt(np.mean(np.square(fields[c]), dtype=np.float64))), 1e-12)
    return fields


def _resample(labels: np.ndarray, affine: np.ndarray, shape) -> tuple[np.ndarray, np.ndarray]:
    """Label map on the target grid: per-block majority vote for integer factors, else nearest."""
    labels = _check_label_range(labels, "the source label map")
    grid = _check_shape(shape, default=labels.shape)
    if grid == labels.shape:
        return labels, affine
    src = np.array(labels.shape)
    scale = src / np.array(grid)
    if np.allclose(scale, np.round(scale)):
        f = np.round(scale).astype(int)
        blocks = labels.reshape(grid[0], f[0], grid[1], f[1], grid[2], f[2]).transpose(0, 2, 4, 1, 3, 5)
        out = _row_mode(blocks.reshape(-1, int(np.prod(f)))).reshape(grid)
    else:
        index = [np.minimum(((np.arange(n) + 0.5) * s).astype(int), m - 1) for n, s, m in zip(grid, scale, src)]
        out = labels[np.ix_(*index)]
    resample = np.diag([*scale, 1.0])
    resample[:3, 3] = (scale - 1) / 2
    return out, affine @ resample


def _row_mode(rows: np.ndarray) -> np.ndarray:
    """Most frequent value of each row (ties -> the smallest value), via sorted run lengths."""
    ordered = np.sort(rows, axis=1)
    starts = np.ones(ordered.shape, dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    first = np.flatnonzero(starts)
    lengths = np.diff(first, append=ordered.size)
    row = first // ordered.shape[1]
    best = np.lexsort((-lengths, row))
    _, first_of_row = np.unique(row[best], return_index=True)
    return ordered.ravel()[first[best[first_of_row]]]


def _change_volume(labels: np.ndarray, code: int, change: float, edited: set[int], rng: np.random.Generator) -> None:
    """Resize ROI ``code`` in place to round((1 + change) n) voxels at its boundary (module doc, stage 3)."""
    roi_full = labels == code
    n = int(roi_full.sum())
    delta = int(round((1 + change) * n)) - n
    if delta == 0:
        return
    radius = (3 * n / (4 * np.pi)) ** (1 / 3)
    pad = int(np.ceil(radius * max((1 + change) ** (1 / 3) - 1, 0) * 3)) + 3
    lo = [max(int(a.min()) - pad, 0) for a in np.nonzero(roi_full)]
    hi = [min(int(a.max()) + pad + 1, m) for a, m in zip(np.nonzero(roi_full), labels.shape)]
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    crop = labels[box]
    roi = crop == code
    locked = np.isin(crop, [0, *EXTRACEREBRAL_CODES, *(edited - {code})])
    jitter = rng.uniform(0, 1e-3, crop.shape)
    if delta > 0:
        candidates = np.flatnonzero(~roi & ~locked)
        if candidates.size < delta:
            raise ValueError(f"volume_changes: label {code} cannot grow by {delta} voxels, only "
                             f"{candidates.size} brain voxels around it")
        distance = ndimage.distance_transform_edt(~roi).ravel()[candidates] + jitter.ravel()[candidates]
        crop[np.unravel_index(candidates[np.argsort(distance, kind="stable")[:delta]], crop.shape)] = code
        return
    members = np.flatnonzero(roi)
    distance = ndimage.distance_transform_edt(roi).ravel()[members] + jitter.ravel()[members]
    removed = np.zeros(crop.shape, dtype=bool)
    removed.ravel()[members[np.argsort(distance, kind="stable")[:-delta]]] = True
    donors = ~roi & ~np.isin(crop, list(edited))
    if not donors.any():
        raise ValueError(f"volume_changes: label {code} has no unedited neighbour to give its voxels to")
    nearest = ndimage.distance_transform_edt(~donors, return_distances=False, return_indices=True)
    crop[removed] = crop[tuple(axis[removed] for axis in nearest)]


def _intensities(labels: np.ndarray, rng: np.random.Generator, *, bias: float, blur: float, noise: float):
    """SynthSeg-style GMM image with blur, bias field and noise (module doc, stage 4)."""
    codes, inverse = np.unique(labels, return_inverse=True)
    priors = np.array([t1_prior(c) for c in codes])
    means = rng.normal(priors[:, 0], priors[:, 1])
    sds = priors[:, 2] * rng.uniform(0.75, 1.25, len(codes))
    inverse = inverse.reshape(labels.shape)
    image = rng.standard_normal(labels.shape, dtype=np.float32)
    image *= sds.astype(np.float32)[inverse]
    image += means.astype(np.float32)[inverse]
    if blur > 0:
        image = ndimage.gaussian_filter(image, blur, mode="nearest")
    image *= np.exp(_smooth_field(rng, labels.shape, bias, n_components=1)[0])
    image += noise * rng.standard_normal(labels.shape, dtype=np.float32)
    np.maximum(image, 0, out=image)
    return image, {str(int(c)): [float(m), float(s)] for c, m, s in zip(codes, means, sds)}


def _posteriors(labels: np.ndarray, sigma: float, posterior_labels) -> tuple[np.ndarray, tuple[int, ...]]:
    """Smoothed one-hot posteriors, renormalised to sum to 1 (module doc, stage 5)."""
    present = [int(c) for c in np.unique(labels)]
    if isinstance(posterior_labels, str):
        if posterior_labels not in ("auto", "all"):
            raise ValueError(f"posterior_labels must be 'auto', 'all' or a list of codes, got {posterior_labels!r}")
        fits = labels.size * len(present) * 4 <= POSTERIOR_BUDGET
        wanted = present if posterior_labels == "all" or fits else [c for c in (*EDIT_ROIS, CSF) if c in present]
    else:
        wanted = [int(c) for c in posterior_labels]
        missing = sorted(set(wanted) - set(present))
        if missing:
            raise ValueError(f"posterior_labels {missing} are not in the label map (present: {present})")
    stored = tuple(dict.fromkeys(wanted)) + (() if set(wanted) >= set(present) else (OTHER,))
    posteriors = np.zeros((len(stored), *labels.shape), dtype=np.float32)
    pad = int(4 * sigma + 0.5)
    for k, code in enumerate(stored[:-1] if stored[-1] == OTHER else stored):
        indicator = labels == code
        box = tuple(slice(max(int(np.flatnonzero(indicator.any(axis=other)).min()) - pad, 0),
                          int(np.flatnonzero(indicator.any(axis=other)).max()) + pad + 1)
                    for other in ((1, 2), (0, 2), (0, 1)))
        posteriors[(k, *box)] = ndimage.gaussian_filter(indicator[box].astype(np.float32), sigma, mode="nearest")
    if stored[-1] == OTHER:
        np.subtract(1.0, posteriors[:-1].sum(axis=0), out=posteriors[-1])
        np.maximum(posteriors[-1], 0, out=posteriors[-1])
    posteriors /= posteriors.sum(axis=0, keepdims=True)
    return posteriors, stored
