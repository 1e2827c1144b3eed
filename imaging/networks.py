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
    """3D KL autoencoder (MONAI ``AutoencoderKL``): 1 image channel <-> ``latent_channels``.

    One level per entry of ``config.ae_channels`` with ``config.ae_res_blocks`` residual
    blocks each and no attention; each level after the first halves the grid, so the latent
    grid is the image grid divided by ``config.ae_factor`` = 2^(len(ae_channels) - 1).
    Group normalization with ``config.norm_groups`` groups.

    Parameters
    ----------
    config : DiffusionConfig
        Gives ``ae_channels``, ``ae_res_blocks``, ``latent_channels`` and ``norm_groups``.

    Returns
    -------
    torch.nn.Module
        The untrained ``AutoencoderKL``; ``encode(x)`` returns (μ, σ) of shape
        (B, latent_channels, n, n, n), ``decode(z)`` the image.

    Examples
    --------
    >>> import torch
    >>> from roisynth.imaging import get_config
    >>> from roisynth.imaging.networks import build_autoencoder
    >>> config = get_config("16")
    >>> autoencoder = build_autoencoder(config)
    >>> mu, sigma = autoencoder.encode(torch.zeros(1, 1, 16, 16, 16))
    >>> tuple(mu.shape[1:]) == config.latent_shape, autoencoder.decode(mu).shape
    (True, torch.Size([1, 1, 16, 16, 16]))
    """
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
    """Denoising UNet ε_θ(z_t, t, context) on the latent (MONAI ``DiffusionModelUNet``).

    Input and output have ``config.latent_channels`` channels (ε-prediction). One level per
    entry of ``config.unet_channels`` with ``config.unet_res_blocks`` residual blocks; levels
    flagged in ``config.unet_attention`` have a transformer block (``head_channels`` channels
    per head) that cross-attends to the metadata context of width ``config.context_dim``
    (:class:`~roisynth.imaging.condition.ConditionEmbedding`).

    Parameters
    ----------
    config : DiffusionConfig
        Gives the latent channels, ``unet_channels``, ``unet_attention``, ``unet_res_blocks``,
        ``head_channels``, ``norm_groups`` and ``context_dim``.

    Returns
    -------
    torch.nn.Module
        The untrained UNet, called as ``unet(z_t, t, context=context)``.

    Examples
    --------
    >>> import torch
    >>> from roisynth.imaging import get_config
    >>> from roisynth.imaging.networks import build_unet
    >>> config = get_config("16")
    >>> unet = build_unet(config)
    >>> z_t = torch.zeros(1, *config.latent_shape)
    >>> context = torch.zeros(1, config.context_tokens, config.context_dim)
    >>> unet(z_t, torch.tensor([10]), context=context).shape
    torch.Size([1, 2, 8, 8, 8])
    """
    return _monai().DiffusionModelUNet(out_channels=config.latent_channels, **_unet_args(config))


def build_controlnet(config: DiffusionConfig, unet: nn.Module | None = None) -> nn.Module:
    """ControlNet on the ROI mask channels (MONAI ``ControlNet``).

    Same levels as :func:`build_unet` (the UNet's encoder and middle block); its conditioning
    embedding takes the :data:`~roisynth.imaging.condition.MASK_CHANNELS` masks on the image
    grid and brings them to the latent grid, one level per entry of
    ``config.controlnet_embedding`` (hence as many entries as ``config.ae_channels``). It returns
    residuals that are added to the UNet's down blocks and middle block.

    Parameters
    ----------
    config : DiffusionConfig
        The UNet's sizes and ``controlnet_embedding``; a length other than that of
        ``ae_channels`` is a ``ValueError``.
    unet : torch.nn.Module, default=None
        A UNet of :func:`build_unet` whose weights are copied where the names match
        (``load_state_dict(strict=False)``). None: MONAI's initialization.

    Returns
    -------
    torch.nn.Module
        The ControlNet, called as ``controlnet(z_t, t, controlnet_cond=masks, context=context)``
        and returning (down-block residuals, mid-block residual).

    Examples
    --------
    >>> import torch
    >>> from roisynth.imaging import get_config
    >>> from roisynth.imaging.networks import build_controlnet, build_unet
    >>> config = get_config("16")
    >>> controlnet = build_controlnet(config, build_unet(config))
    >>> masks = torch.zeros(1, 9, 16, 16, 16)  # image grid
    >>> down, mid = controlnet(torch.zeros(1, *config.latent_shape), torch.tensor([10]),
    ...                        controlnet_cond=masks, context=torch.zeros(1, 2, config.context_dim))
    >>> len(down), mid.shape
    (4, torch.Size([1, 16, 4, 4, 4]))
    """
    if len(config.controlnet_embedding) != len(config.ae_channels):
        raise ValueError("controlnet_embedding needs one entry per autoencoder level, to reach the latent grid")
    controlnet = _monai().ControlNet(conditioning_embedding_in_channels=N_MASKS,
                                     conditioning_embedding_num_channels=config.controlnet_embedding,
                                     **_unet_args(config))
    if unet is not None:
        controlnet.load_state_dict(unet.state_dict(), strict=False)
    return controlnet


def build_condition_embedding(config: DiffusionConfig) -> ConditionEmbedding:
    """Metadata embedding: ``ConditionEmbedding(config.context_dim, config.context_tokens)``.

    Parameters
    ----------
    config : DiffusionConfig
        Gives ``context_dim`` (token width) and ``context_tokens``.

    Returns
    -------
    ConditionEmbedding
        Condition rows (B, 5) -> context (B, context_tokens, context_dim).

    Examples
    --------
    >>> import torch
    >>> from roisynth.imaging import get_config
    >>> from roisynth.imaging.networks import build_condition_embedding
    >>> build_condition_embedding(get_config("16"))(torch.zeros(3, 5)).shape
    torch.Size([3, 2, 8])
    """
    return ConditionEmbedding(config.context_dim, config.context_tokens)


def build_segmenter(config: DiffusionConfig, n_classes: int) -> nn.Module:
    """3D segmentation UNet (MONAI ``UNet``): image -> ``n_classes`` logits, on the image grid.

    One level per entry of ``config.segmenter_channels``, each after the first at half the
    previous grid (stride 2), with one residual unit per level. Used by
    :class:`~roisynth.imaging.segmenter.Segmenter` to verify generated volumes.

    Parameters
    ----------
    config : DiffusionConfig
        Gives ``segmenter_channels``.
    n_classes : int
        Output channels (one logit per class).

    Returns
    -------
    torch.nn.Module
        The untrained UNet: (B, 1, X, Y, Z) -> (B, n_classes, X, Y, Z).

    Examples
    --------
    >>> import torch
    >>> from roisynth.imaging import get_config
    >>> from roisynth.imaging.networks import build_segmenter
    >>> build_segmenter(get_config("16"), n_classes=10)(torch.zeros(1, 1, 16, 16, 16)).shape
    torch.Size([1, 10, 16, 16, 16])
    """
    channels = config.segmenter_channels
    return _monai().UNet(spatial_dims=3, in_channels=1, out_channels=n_classes, channels=channels,
                         strides=(2,) * (len(channels) - 1), num_res_units=1)
