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
    checkpoint cadence (in steps).

    Parameters
    ----------
    steps : int, default=100
        Optimizer steps.
    batch_size : int, default=2
        Subjects per batch.
    lr : float, default=1e-4
        Learning rate.
    log_every : int, default=10
        Steps between log lines.
    checkpoint_every : int, default=50
        Steps between checkpoints.

    Examples
    --------
    >>> from roisynth.imaging.config import StageConfig
    >>> StageConfig(steps=10, batch_size=4)
    StageConfig(steps=10, batch_size=4, lr=0.0001, log_every=10, checkpoint_every=50)
    """

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

    Parameters
    ----------
    name : str, default="32"
        Preset name.
    shape : int, default=32
        Side of the cubic image grid.
    n_subjects : int, default=64
        Phantom cohort size used for training.
    ae_channels : tuple of int, default=(16, 32, 32)
        Channels of the autoencoder's levels (MONAI ``AutoencoderKL``).
    latent_channels : int, default=4
        Channels of the latent image.
    ae_res_blocks : int, default=1
        Residual blocks per autoencoder level.
    kl_weight : float, default=1e-6
        Weight of the autoencoder's KL term.
    unet_channels : tuple of int, default=(32, 64)
        Channels of the denoising UNet's and ControlNet's levels.
    unet_attention : tuple of bool, default=(False, True)
        Attention at each UNet level.
    unet_res_blocks : int, default=1
        Residual blocks per UNet level.
    head_channels : int, default=16
        Channels per attention head.
    norm_groups : int, default=8
        Groups of the group normalizations.
    context_dim : int, default=32
        Cross-attention width: the metadata embedding's size.
    context_tokens : int, default=2
        Tokens the metadata embedding is split into.
    controlnet_embedding : tuple of int, default=(16, 16, 32)
        Channels of the ControlNet's mask embedding.
    train_timesteps : int, default=1000
        DDPM training timesteps.
    beta_start, beta_end : float, default=0.0015, 0.0195
        Ends of the noise schedule.
    ddim_steps : int, default=50
        DDIM steps of sampling and inversion.
    guidance_scale : float, default=1.0
        Classifier-free guidance used by ``sample()`` by default.
    condition_dropout : float, default=0.15
        Probability of training the UNet with the null condition.
    segmenter_channels : tuple of int, default=(16, 32, 64)
        Channels of the verification segmenter (MONAI ``UNet``).
    autoencoder, unet, controlnet, segmenter : StageConfig
        Training of each network.

    Examples
    --------
    >>> from roisynth.imaging import DiffusionConfig
    >>> config = DiffusionConfig(shape=32, ae_channels=(16, 32, 32))
    >>> config.ae_factor, config.latent_shape
    (4, (4, 8, 8, 8))
    >>> DiffusionConfig.from_dict(config.to_dict()) == config
    True
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
        """(channels, n, n, n) of the latent image, n = shape / ae_factor."""
        n = self.shape // self.ae_factor
        return (self.latent_channels, n, n, n)

    def to_dict(self) -> dict:
        """Every field as JSON-ready data (stages as dicts)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DiffusionConfig:
        """The config of :meth:`to_dict`'s output (lists read as tuples); unknown fields are an error."""
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
        """A copy with ``changes`` applied (``dataclasses.replace``)."""
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
    "32": DiffusionConfig(name="32", shape=32, n_subjects=64, ddim_steps=5,
                          **_stages(300, 600, 300, 300, 4, every=100)),
    "64": DiffusionConfig(name="64", shape=64, n_subjects=400, ae_channels=(32, 64, 64), latent_channels=4,
                          unet_channels=(64, 128, 256), unet_attention=(False, True, True), head_channels=32,
                          norm_groups=16, context_dim=64, controlnet_embedding=(16, 32, 64),
                          segmenter_channels=(16, 32, 64, 128),
                          **_stages(3000, 6000, 3000, 1500, 8, log=50, every=500)),
    "96": DiffusionConfig(name="96", shape=96, n_subjects=400, ae_channels=(32, 64, 64), latent_channels=4,
                          unet_channels=(64, 128, 256), unet_attention=(False, True, True), head_channels=32,
                          norm_groups=16, context_dim=64, controlnet_embedding=(16, 32, 64),
                          segmenter_channels=(16, 32, 64, 128),
                          **_stages(4000, 8000, 4000, 2000, 4, log=50, every=500)),
}
"""Named configurations (see the module docstring)."""


def get_config(name: str) -> DiffusionConfig:
    """The preset ``name`` (``"16"``, ``"32"``, ``"64"``, ``"96"``).

    Parameters
    ----------
    name : str
        A key of :data:`PRESETS`.

    Returns
    -------
    DiffusionConfig
        The preset.

    Examples
    --------
    >>> from roisynth.imaging import get_config
    >>> config = get_config("16")
    >>> config.shape, config.latent_shape, config.unet.steps
    (16, (2, 8, 8, 8), 3)
    """
    if name not in PRESETS:
        raise ValueError(f"unknown imaging config {name!r}; choose one of {sorted(PRESETS, key=int)}")
    return PRESETS[name]
