r"""The verification segmenter: a 3D UNet that measures what a generated image shows.

Classes (:data:`SEGMENTER_CLASSES`): 0 = every voxel outside the mask channels, c = the
codes of ``MASK_CHANNELS[c - 1]`` (:func:`classes_from_labels`). Trained with MONAI's
``DiceCELoss`` (softmax Dice + cross-entropy on one-hot targets). Its soft volume of class c
in an image with class probabilities p_c(v) is

.. math::  V_c = \Delta \sum_v p_c(v),

Δ the voxel volume (mm³): differentiable, and unbiased where the probabilities are calibrated,
unlike a count of argmax voxels.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from .cohort import SEGMENTER_CLASSES, classes_from_labels
from .condition import IMAGE_SCALE
from .config import DiffusionConfig
from .networks import build_segmenter

__all__ = ["SEGMENTER_CLASSES", "Segmenter", "classes_from_labels"]


class Segmenter(nn.Module):
    """MONAI ``UNet`` (``build_segmenter(config, len(SEGMENTER_CLASSES))``) with numpy helpers.

    Images given as numpy arrays are in phantom units, (B, X, Y, Z) or one (X, Y, Z); tensors
    given to :meth:`forward` are already scaled by 1 / ``IMAGE_SCALE`` with a channel axis.

    Parameters
    ----------
    config : DiffusionConfig
        Gives the network's channels (``segmenter_channels``).
    batch_size : int, default=4
        Images per forward pass of the numpy helpers.

    Examples
    --------
    >>> from roisynth.imaging import Segmenter, get_config, make_phantom
    >>> segmenter = Segmenter(get_config("16"))
    >>> image = make_phantom((16, 16, 16), random_state=0).image
    >>> proba = segmenter.predict_proba(image)  # untrained: only the shapes are meaningful
    >>> proba.shape[1:], round(float(proba.sum(0).mean()), 3)
    ((16, 16, 16), 1.0)
    """

    def __init__(self, config: DiffusionConfig, batch_size: int = 4):
        super().__init__()
        self.config = config
        self.batch_size = batch_size
        self.net = build_segmenter(config, len(SEGMENTER_CLASSES))
        from monai.losses import DiceCELoss

        self._loss = DiceCELoss(to_onehot_y=True, softmax=True)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Scaled images (B, 1, X, Y, Z) -> class logits (B, K, X, Y, Z)."""
        return self.net(images)

    def loss(self, batch: dict) -> torch.Tensor:
        """Dice + cross-entropy of ``batch["image"]`` against ``batch["labels"]`` (class maps)."""
        device = next(self.parameters()).device
        logits = self(batch["image"].to(device))
        return self._loss(logits, batch["labels"].to(device).unsqueeze(1))

    def predict_proba(self, images) -> np.ndarray:
        """Softmax class probabilities, (B, K, X, Y, Z) float32 (or (K, X, Y, Z) for one image)."""
        return self._run(images, lambda logits: torch.softmax(logits, dim=1))

    def volumes(self, images, voxel_volume: float) -> pd.DataFrame:
        """Soft volume (mm³, Δ Σ_v p_c(v)) of every mask channel, one row per image."""
        proba = self._run(images, lambda logits: torch.softmax(logits, dim=1).sum(dim=(2, 3, 4)))
        proba = np.atleast_2d(proba)[:, 1:] * float(voxel_volume)
        return pd.DataFrame(proba, columns=list(SEGMENTER_CLASSES[1:]))

    def features(self, images) -> np.ndarray:
        """(B, F) global average of the deepest encoder block's output: the UNet's bottom
        ``ResidualUnit`` (F = ``config.segmenter_channels[-1]`` channels on the grid downsampled
        by 2^(len(segmenter_channels) - 1)), the layer an FID "on the segmenter's features" uses."""
        captured = []
        handle = _bottom(self.net).register_forward_hook(lambda module, args, output: captured.append(output))
        try:
            self._run(images, lambda logits: logits[:, :0])
        finally:
            handle.remove()
        return torch.cat([c.mean(dim=(2, 3, 4)) for c in captured]).cpu().numpy()

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``path`` (folder): ``segmenter.pt`` (state dict) and ``config.json``."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict(), path / "segmenter.pt")
        (path / "config.json").write_text(json.dumps(self.config.to_dict(), indent=1))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, map_location="cpu") -> Segmenter:
        path = Path(path)
        model = cls(DiffusionConfig.from_dict(json.loads((path / "config.json").read_text())))
        model.load_state_dict(torch.load(path / "segmenter.pt", map_location=map_location, weights_only=True))
        return model

    @torch.no_grad()
    def _run(self, images, head) -> np.ndarray:
        """``head(logits)`` over ``images`` in chunks of ``batch_size``, in eval mode."""
        images = np.asarray(images, dtype=np.float32)
        if images.ndim not in (3, 4):
            raise ValueError(f"images must be (X, Y, Z) or (B, X, Y, Z), got shape {images.shape}")
        single = images.ndim == 3
        batch = images[None] if single else images
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        try:
            out = [head(self(torch.from_numpy(batch[i:i + self.batch_size] / np.float32(IMAGE_SCALE))
                             .unsqueeze(1).to(device))).float().cpu()
                   for i in range(0, len(batch), self.batch_size)]
        finally:
            self.train(was_training)
        result = torch.cat(out).numpy()
        return result[0] if single else result


def _bottom(net: nn.Module) -> nn.Module:
    """The innermost block of a MONAI ``UNet`` (its nested ``SkipConnection`` s' core)."""
    layer = net.model[1]
    while isinstance(layer.submodule, nn.Sequential):
        layer = layer.submodule[1]
    return layer.submodule
