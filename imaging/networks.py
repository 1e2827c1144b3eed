"""The pipeline's networks, built from a :class:`~roisynth.imaging.config.DiffusionConfig`
(MONAI ``AutoencoderKL``, ``DiffusionModelUNet``, ``ControlNet`` and ``UNet``).

MONAI (``pip install roisynth[imaging]``: monai, einops) is imported here, not by
``import roisynth.imaging``, so the phantom and mask tools work without it.
"""

from __future__ import annotations

from torch import nn

from .condition import N_MASKS, ConditionEmbedding
from .config import DiffusionConfig


def _monai():
    try:
        from monai.networks import nets
    except ImportError as error:  # pragma: no cover - exercised only without the extra
        raise ImportError("the diffusion pipeline needs MONAI and einops: pip install 'roisynth[imaging]'") from error
    return nets


def build_autoencoder(config: DiffusionConfig) -> nn.Module:
    """3D KL autoencoder, 1 channel <-> ``latent_channels``, downsampling by ``config.ae_factor``."""
    levels = len(config.ae_channels)
    return _monai().AutoencoderKL(
        spatial_dims=3, in_channels=1, out_channels=1, channels=config.ae_channels,
        num_res_blocks=(config.ae_res_blocks,) * levels, attention_levels=(False,) * levels,
        latent_channels=config.latent_channels, norm_num_groups=config.norm_groups,
        with_encoder_nonlocal_attn=False, with_decoder_nonlocal_attn=False)


def _unet_args(config: DiffusionConfig) -> dict:
    levels = len(config.unet_channels)
    return dict(spatial_dims=3, in_channels=config.latent_channels, channels=config.unet_channels,
                attention_levels=config.unet_attention, num_res_blocks=(config.unet_res_blocks,) * levels,
                num_head_channels=tuple(config.head_channels if a else 0 for a in config.unet_attention),
                norm_num_groups=config.norm_groups, with_conditioning=True,
                cross_attention_dim=config.context_dim, transformer_num_layers=1)


def build_unet(config: DiffusionConfig) -> nn.Module:
    """Denoising UNet ε(x_t, t, context) on the latent, cross-attending to the metadata context."""
    return _monai().DiffusionModelUNet(out_channels=config.latent_channels, **_unet_args(config))


def build_controlnet(config: DiffusionConfig, unet: nn.Module | None = None) -> nn.Module:
    """ControlNet on the :data:`~roisynth.imaging.condition.MASK_CHANNELS` masks (image grid,
    embedded down to the latent grid), initialized from ``unet``'s weights where they match."""
    if len(config.controlnet_embedding) != len(config.ae_channels):
        raise ValueError("controlnet_embedding needs one entry per autoencoder level, to reach the latent grid")
    controlnet = _monai().ControlNet(conditioning_embedding_in_channels=N_MASKS,
                                     conditioning_embedding_num_channels=config.controlnet_embedding,
                                     **_unet_args(config))
    if unet is not None:
        controlnet.load_state_dict(unet.state_dict(), strict=False)
    return controlnet


def build_condition_embedding(config: DiffusionConfig) -> ConditionEmbedding:
    return ConditionEmbedding(config.context_dim, config.context_tokens)


def build_segmenter(config: DiffusionConfig, n_classes: int) -> nn.Module:
    """3D segmentation UNet (image -> ``n_classes`` logits) used to verify generated volumes."""
    channels = config.segmenter_channels
    return _monai().UNet(spatial_dims=3, in_channels=1, out_channels=n_classes, channels=channels,
                         strides=(2,) * (len(channels) - 1), num_res_units=1)
