r"""The two conditions of the mask-guided diffusion model: subject metadata and ROI masks.

**Metadata** (age, sex, diagnosis) becomes a vector
c = ((age - 70) / 10, 1[sex = M], 1[dx = CN], 1[dx = MCI], 1[dx = AD]) (:func:`condition_vector`),
which :class:`ConditionEmbedding` maps to ``context_tokens`` cross-attention tokens. A learned
*null* token sequence replaces it for classifier-free guidance: the UNet is trained with the
null condition at a rate ``condition_dropout`` and sampled with
ε = ε(x, ∅) + w (ε(x, c) - ε(x, ∅)).

**Masks** are the label map split into binary channels (:data:`MASK_CHANNELS`: each edited ROI
on its own side, plus CSF, cortex and white matter), the ControlNet's spatial input
(:func:`masks_from_labels`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

DIAGNOSES = ("CN", "MCI", "AD")
"""Diagnosis values a condition may take."""

SEXES = ("F", "M")
"""Sex values a condition may take (F = 0, M = 1 in :func:`condition_vector`)."""

N_CONDITION = 2 + len(DIAGNOSES)
"""Length of :func:`condition_vector`'s rows."""

IMAGE_SCALE = 128.0
"""Images enter the networks as image / IMAGE_SCALE (phantom units: WM ≈ 110 -> 0.86)."""

MASK_CHANNELS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("Hippocampus_L", (17,)), ("Hippocampus_R", (53,)),
    ("Amygdala_L", (18,)), ("Amygdala_R", (54,)),
    ("LateralVentricle_L", (4,)), ("LateralVentricle_R", (43,)),
    ("CSF", (24,)), ("Cortex", (3, 42)), ("White_Matter", (2, 41)),
)
"""(name, FreeSurfer codes) of each mask channel, in channel order."""

N_MASKS = len(MASK_CHANNELS)
"""Number of mask channels (channels of :func:`masks_from_labels`' output)."""


def condition_vector(metadata) -> np.ndarray:
    r"""Condition rows of the diffusion model from subject metadata.

    Each subject (age a in years, sex, diagnosis d) becomes the row

    .. math::  c = \left(\frac{a - 70}{10},\; 1[\text{sex} = M],\; 1[d = CN],\; 1[d = MCI],\;
               1[d = AD]\right),

    the input of :class:`ConditionEmbedding`. Other columns are ignored.

    Parameters
    ----------
    metadata : mapping or DataFrame
        One subject (a mapping) or one subject per row (a DataFrame, or anything
        ``pandas.DataFrame`` accepts), with ``age`` (finite, years), ``sex`` (``"F"``/``"M"``,
        or 0/1 for F/M) and ``diagnosis`` (one of :data:`DIAGNOSES`). A missing column or an
        invalid value is a ``ValueError``.

    Returns
    -------
    ndarray of float32, shape (n, 5)
        One row per subject (n = 1 for a mapping), :data:`N_CONDITION` columns.

    Examples
    --------
    >>> import pandas as pd
    >>> from roisynth.imaging.condition import condition_vector
    >>> print(condition_vector({"age": 75, "sex": "F", "diagnosis": "AD"}))
    [[0.5 0.  0.  0.  1. ]]
    >>> meta = pd.DataFrame({"age": [65.0, 80.0], "sex": ["M", 1], "diagnosis": ["CN", "MCI"]})
    >>> print(condition_vector(meta))
    [[-0.5  1.   1.   0.   0. ]
     [ 1.   1.   0.   1.   0. ]]
    """
    table = pd.DataFrame([dict(metadata)]) if isinstance(metadata, Mapping) else pd.DataFrame(metadata)
    missing = [c for c in ("age", "sex", "diagnosis") if c not in table.columns]
    if missing:
        raise ValueError(f"metadata lacks {missing}: it needs age (years), sex (F/M) and diagnosis {DIAGNOSES}")
    age = pd.to_numeric(table["age"], errors="coerce").to_numpy(float)
    if not np.all(np.isfinite(age)):
        raise ValueError(f"metadata age must be finite numbers, got {table['age'].tolist()}")
    sex = table["sex"].map(lambda v: {"F": 0.0, "M": 1.0, 0: 0.0, 1: 1.0}.get(v, np.nan)).to_numpy(float)
    if np.isnan(sex).any():
        raise ValueError(f"metadata sex must be F/M (or 0/1), got {sorted(set(map(str, table['sex'])))}")
    bad = sorted(set(map(str, table["diagnosis"])) - set(DIAGNOSES))
    if bad:
        raise ValueError(f"metadata diagnosis must be one of {DIAGNOSES}, got {bad}")
    onehot = (table["diagnosis"].to_numpy()[:, None] == np.array(DIAGNOSES)[None]).astype(float)
    return np.column_stack([(age - 70.0) / 10.0, sex, onehot]).astype(np.float32)


def masks_from_labels(labels) -> np.ndarray:
    """Binary mask channels (:data:`MASK_CHANNELS`) of a label map, the ControlNet's input.

    Channel c is 1 where the label is one of the FreeSurfer codes of ``MASK_CHANNELS[c]`` and 0
    elsewhere (C = :data:`N_MASKS` channels). Voxels of other labels are 0 in every channel, so
    the channels need not sum to 1.

    Parameters
    ----------
    labels : array_like of int, shape (X, Y, Z) or (B, X, Y, Z)
        A label map, or a batch of them. Other dimensionalities are a ``ValueError``.

    Returns
    -------
    ndarray of float32, shape (C, X, Y, Z) or (B, C, X, Y, Z)
        The mask channels, with the channel axis before the grid (after the batch axis).

    Examples
    --------
    >>> import numpy as np
    >>> from roisynth.imaging import make_phantom
    >>> from roisynth.imaging.condition import masks_from_labels
    >>> labels = make_phantom((16, 16, 16), random_state=0).labels
    >>> masks = masks_from_labels(labels)
    >>> masks.shape, masks.dtype
    ((9, 16, 16, 16), dtype('float32'))
    >>> masks_from_labels(np.stack([labels, labels])).shape
    (2, 9, 16, 16, 16)
    """
    labels = np.asarray(labels)
    if labels.ndim not in (3, 4):
        raise ValueError(f"a label map is 3D (or a 4D batch), got shape {labels.shape}")
    axis = labels.ndim - 3
    return np.stack([np.isin(labels, codes) for _, codes in MASK_CHANNELS], axis=axis).astype(np.float32)


class ConditionEmbedding(nn.Module):
    """Metadata embedding: condition rows to the UNet's cross-attention context.

    An MLP ``Linear(n_features, 4 dim) -> SiLU -> Linear(4 dim, tokens dim)`` maps each
    condition row c (:func:`condition_vector`) to ``tokens`` context tokens of width ``dim``.
    A learned null context ∅ (``null``, a (tokens, dim) parameter initialized to zeros)
    replaces the rows flagged in :meth:`forward`, for classifier-free guidance:
    ε = ε(x, ∅) + w (ε(x, c) - ε(x, ∅)).

    Parameters
    ----------
    dim : int
        Width of each context token (the UNet's ``cross_attention_dim``).
    tokens : int, default=2
        Context tokens per subject.
    n_features : int, default=N_CONDITION
        Length of the condition rows (5).

    Examples
    --------
    >>> import torch
    >>> from roisynth.imaging.condition import ConditionEmbedding
    >>> embedding = ConditionEmbedding(dim=8, tokens=2)
    >>> condition = torch.zeros(3, 5)
    >>> embedding(condition).shape
    torch.Size([3, 2, 8])
    """

    def __init__(self, dim: int, tokens: int = 2, n_features: int = N_CONDITION):
        super().__init__()
        self.tokens, self.dim = tokens, dim
        self.mlp = nn.Sequential(nn.Linear(n_features, 4 * dim), nn.SiLU(), nn.Linear(4 * dim, tokens * dim))
        self.null = nn.Parameter(torch.zeros(tokens, dim))

    def forward(self, condition: torch.Tensor, null: torch.Tensor | None = None) -> torch.Tensor:
        """Context tokens of condition rows; rows flagged in ``null`` get the null context.

        Parameters
        ----------
        condition : Tensor, shape (B, n_features)
            Condition rows (:func:`condition_vector`).
        null : bool Tensor of shape (B,), default=None
            True where a row is to receive the learned null context ∅ instead of its
            embedding (condition dropout in training, the unconditional branch of guidance).
            None: no row is replaced.

        Returns
        -------
        Tensor, shape (B, tokens, dim)
            The cross-attention context.

        Examples
        --------
        >>> import torch
        >>> from roisynth.imaging.condition import ConditionEmbedding
        >>> embedding = ConditionEmbedding(dim=8, tokens=2)
        >>> context = embedding(torch.ones(2, 5), null=torch.tensor([True, False]))
        >>> context.shape, torch.equal(context[0], embedding.null)
        (torch.Size([2, 2, 8]), True)
        """
        context = self.mlp(condition).view(-1, self.tokens, self.dim)
        if null is not None:
            context = torch.where(null.view(-1, 1, 1), self.null.to(context.dtype).expand_as(context), context)
        return context
