"""Sizes and training settings of the mask-guided latent diffusion pipeline, with presets.

One :class:`DiffusionConfig` describes every network (autoencoder, denoising UNet, ControlNet,
segmenter), the noise schedule and each training stage; it is stored (as JSON) in every
checkpoint and model file, so a saved model rebuilds its own networks.

Presets (:data:`PRESETS`, ``roisynth imaging train --config NAME``):

- ``"16"`` / ``"32"``: CPU test and smoke configurations (16³, 32³ grids, a few steps);
- ``"64"``: the GPU pipeline (64³ phantoms, 4 mm voxels; sized for about 20 minutes on one H100, not yet timed);
- ``"96"``: a larger GPU pipeline (96³, 2.7 mm voxels).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass(frozen=True)
class StageConfig:
    """Training of one network: optimizer steps, batch size, learning rate, logging and
    checkpoint cadence (in steps)."""

    steps: int = 100
    batch_size: int = 2
    lr: float = 1e-4
    log_every: int = 10
    checkpoint_every: int = 50


@dataclass(frozen=True)
class DiffusionConfig:
    """Every size and setting of the pipeline.

    ``shape`` is the image grid (a cube); the autoencoder downsamples by
    2^(len(ae_channels) - 1), so the latent grid is ``shape / ae_factor``. The ControlNet's
    mask embedding downsamples by the same factor (len(controlnet_embedding) = len(ae_channels)).
    """

    name: str = "32"
    shape: int = 32
    n_subjects: int = 64            # phantom cohort size used for training
    # autoencoder (MONAI AutoencoderKL)
    ae_channels: tuple[int, ...] = (16, 32, 32)
    latent_channels: int = 4
    ae_res_blocks: int = 1
    kl_weight: float = 1e-6
    # denoising UNet and ControlNet (MONAI DiffusionModelUNet / ControlNet)
    unet_channels: tuple[int, ...] = (32, 64)
    unet_attention: tuple[bool, ...] = (False, True)
    unet_res_blocks: int = 1
    head_channels: int = 16
    norm_groups: int = 8
    context_dim: int = 32            # cross-attention width: the metadata embedding's size
    context_tokens: int = 2          # tokens the metadata embedding is split into
    controlnet_embedding: tuple[int, ...] = (16, 16, 32)
    # noise schedule (DDPM training, DDIM sampling and inversion)
    train_timesteps: int = 1000
    beta_start: float = 0.0015
    beta_end: float = 0.0195
    ddim_steps: int = 50
    guidance_scale: float = 1.0      # classifier-free guidance used by sample() by default
    condition_dropout: float = 0.15  # probability of training the UNet with the null condition
    # segmenter (MONAI UNet) used to verify counterfactual volumes
    segmenter_channels: tuple[int, ...] = (16, 32, 64)
    # training stages
    autoencoder: StageConfig = field(default_factory=lambda: StageConfig(steps=200, batch_size=4, lr=2e-4))
    unet: StageConfig = field(default_factory=lambda: StageConfig(steps=400, batch_size=8, lr=2e-4))
    controlnet: StageConfig = field(default_factory=lambda: StageConfig(steps=200, batch_size=8, lr=2e-4))
    segmenter: StageConfig = field(default_factory=lambda: StageConfig(steps=200, batch_size=4, lr=1e-3))

    @property
    def ae_factor(self) -> int:
        """Spatial downsampling of the autoencoder."""
        return 2 ** (len(self.ae_channels) - 1)

    @property
    def latent_shape(self) -> tuple[int, int, int, int]:
        n = self.shape // self.ae_factor
        return (self.latent_channels, n, n, n)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DiffusionConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown DiffusionConfig fields: {sorted(unknown)}")
        values = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            if f.name in ("autoencoder", "unet", "controlnet", "segmenter"):
                value = StageConfig(**value)
            elif isinstance(value, list):
                value = tuple(value)
            values[f.name] = value
        return cls(**values)

    def replace(self, **changes) -> DiffusionConfig:
        return dataclasses.replace(self, **changes)


def _stages(ae, unet, control, seg, batch, log=10, every=100):
    return {name: StageConfig(steps=steps, batch_size=b, lr=lr, log_every=log, checkpoint_every=every)
            for name, steps, b, lr in (("autoencoder", ae, batch, 2e-4), ("unet", unet, 2 * batch, 2e-4),
                                       ("controlnet", control, 2 * batch, 2e-4), ("segmenter", seg, batch, 1e-3))}


PRESETS: dict[str, DiffusionConfig] = {
    "16": DiffusionConfig(name="16", shape=16, n_subjects=8, ae_channels=(8, 8), latent_channels=2,
                          unet_channels=(8, 16), unet_attention=(False, True), head_channels=8, norm_groups=4,
                          context_dim=8, controlnet_embedding=(8, 8), ddim_steps=5, segmenter_channels=(8, 16),
                          **_stages(3, 3, 3, 3, 2, log=1, every=2)),
    "32": DiffusionConfig(name="32", shape=32, n_subjects=64, ddim_steps=5, **_stages(300, 600, 300, 300, 4, every=100)),
    "64": DiffusionConfig(name="64", shape=64, n_subjects=400, ae_channels=(32, 64, 64), latent_channels=4,
                          unet_channels=(64, 128, 256), unet_attention=(False, True, True), head_channels=32,
                          norm_groups=16, context_dim=64, controlnet_embedding=(16, 32, 64),
                          segmenter_channels=(16, 32, 64, 128), **_stages(3000, 6000, 3000, 1500, 8, log=50, every=500)),
    "96": DiffusionConfig(name="96", shape=96, n_subjects=400, ae_channels=(32, 64, 64), latent_channels=4,
                          unet_channels=(64, 128, 256), unet_attention=(False, True, True), head_channels=32,
                          norm_groups=16, context_dim=64, controlnet_embedding=(16, 32, 64),
                          segmenter_channels=(16, 32, 64, 128), **_stages(4000, 8000, 4000, 2000, 4, log=50, every=500)),
}
"""Named configurations (see the module docstring)."""


def get_config(name: str) -> DiffusionConfig:
    """The preset ``name`` (``"16"``, ``"32"``, ``"64"``, ``"96"``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown imaging config {name!r}; choose one of {sorted(PRESETS, key=int)}")
    return PRESETS[name]
