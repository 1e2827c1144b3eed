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

N_CONDITION = 2 + len(DIAGNOSES)

IMAGE_SCALE = 128.0
"""Images enter the networks as image / IMAGE_SCALE (phantom units: WM ≈ 110 -> 0.86)."""
"""Length of :func:`condition_vector`'s rows."""

MASK_CHANNELS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("Hippocampus_L", (17,)), ("Hippocampus_R", (53,)),
    ("Amygdala_L", (18,)), ("Amygdala_R", (54,)),
    ("LateralVentricle_L", (4,)), ("LateralVentricle_R", (43,)),
    ("CSF", (24,)), ("Cortex", (3, 42)), ("White_Matter", (2, 41)),
)
"""(name, FreeSurfer codes) of each mask channel, in channel order."""

N_MASKS = len(MASK_CHANNELS)


def condition_vector(metadata) -> np.ndarray:
    """(n, 5) float32 condition rows from metadata with ``age`` (years), ``sex`` (F/M or 0/1 =
    F/M) and ``diagnosis`` (CN/MCI/AD): a mapping (one subject) or a DataFrame (one row each)."""
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
    """Binary mask channels (:data:`MASK_CHANNELS`) of a label map: (X, Y, Z) -> (C, X, Y, Z)
    float32, or a batch (B, X, Y, Z) -> (B, C, X, Y, Z)."""
    labels = np.asarray(labels)
    if labels.ndim not in (3, 4):
        raise ValueError(f"a label map is 3D (or a 4D batch), got shape {labels.shape}")
    axis = labels.ndim - 3
    return np.stack([np.isin(labels, codes) for _, codes in MASK_CHANNELS], axis=axis).astype(np.float32)


class ConditionEmbedding(nn.Module):
    """Condition rows (B, 5) -> cross-attention context (B, tokens, dim) by an MLP; rows flagged
    ``null`` get the learned null context instead (classifier-free guidance)."""

    def __init__(self, dim: int, tokens: int = 2, n_features: int = N_CONDITION):
        super().__init__()
        self.tokens, self.dim = tokens, dim
        self.mlp = nn.Sequential(nn.Linear(n_features, 4 * dim), nn.SiLU(), nn.Linear(4 * dim, tokens * dim))
        self.null = nn.Parameter(torch.zeros(tokens, dim))

    def forward(self, condition: torch.Tensor, null: torch.Tensor | None = None) -> torch.Tensor:
        context = self.mlp(condition).view(-1, self.tokens, self.dim)
        if null is not None:
            context = torch.where(null.view(-1, 1, 1), self.null.to(context.dtype).expand_as(context), context)
        return context
