r"""Where a local counterfactual may differ from the factual image: the edit band and its seam.

With C the voxels whose label changed and d(v) the Euclidean distance (mm) from voxel v to C,
the image-space weight is

.. math::  w(v) = 1 \ \text{if}\ d \le r, \qquad
           w(v) = \cos^2\!\Big(\frac{\pi}{2} \frac{d - r}{s}\Big) \ \text{if}\ r < d < r + s, \qquad
           w(v) = 0 \ \text{beyond},

r = ``radius``, s = ``seam`` (:func:`blend_weights`); the composite w · generated + (1 - w) ·
factual equals the factual image exactly wherever w = 0, and w = 0 everywhere when no label
changed (the null intervention). In latent space (:func:`latent_keep`) the band is the
latent voxels whose ``factor``³ block meets {w > 0}, dilated by one latent voxel so the
generated latents have room for the decoder's receptive field.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage


def blend_weights(labels, labels_cf, *, radius: float = 1.0, seam: float = 2.0, spacing=1.0) -> np.ndarray:
    """w in [0, 1] on the label maps' grid (module docstring); all 0 when nothing changed.

    Parameters
    ----------
    labels, labels_cf : array-like, shape (X, Y, Z)
        The factual and counterfactual label maps.
    radius : float, default=1.0
        r: full weight up to this distance from a changed voxel (in ``spacing`` units).
    seam : float, default=2.0
        s: width of the cos² seam beyond it.
    spacing : float or sequence of 3 float, default=1.0
        Voxel size (1: distances in voxels).

    Returns
    -------
    ndarray of float32

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.imaging.blending import blend_weights
    >>> labels = np.zeros((9, 1, 1), dtype=int)
    >>> edited = labels.copy()
    >>> edited[4] = 17
    >>> blend_weights(labels, edited, radius=1, seam=2)[:, 0, 0].round(2)
    array([0. , 0. , 0.5, 1. , 1. , 1. , 0.5, 0. , 0. ], dtype=float32)
    """
    changed = np.asarray(labels) != np.asarray(labels_cf)
    if not changed.any():
        return np.zeros(changed.shape, dtype=np.float32)
    distance = ndimage.distance_transform_edt(~changed, sampling=spacing)
    ramp = np.clip((distance - radius) / seam, 0.0, 1.0)
    return np.where(ramp < 1, np.cos(0.5 * np.pi * ramp) ** 2, 0.0).astype(np.float32)


def latent_keep(weights: np.ndarray, factor: int) -> torch.Tensor:
    """The latent band: 1 on latent voxels whose block meets w > 0, dilated by one voxel.

    Parameters
    ----------
    weights : ndarray, shape (X, Y, Z) or (B, X, Y, Z)
        :func:`blend_weights` of one subject or a batch.
    factor : int
        The autoencoder's downsampling factor.

    Returns
    -------
    Tensor of float32, shape (B, 1, X / factor, Y / factor, Z / factor)

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.imaging.blending import latent_keep
    >>> w = np.zeros((8, 8, 8), dtype=np.float32)
    >>> w[0, 0, 0] = 0.3
    >>> latent_keep(w, 4)[0, 0, :, :, 0]
    tensor([[1., 1.],
            [1., 1.]])
    """
    w = torch.from_numpy(np.asarray(weights, dtype=np.float32) > 0).float()
    w = w[None] if w.dim() == 3 else w
    pooled = torch.nn.functional.max_pool3d(w[:, None], factor)
    return torch.nn.functional.max_pool3d(pooled, 3, stride=1, padding=1)
