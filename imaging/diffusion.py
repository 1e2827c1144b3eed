r"""Mask-guided latent diffusion (PCGM §3.3–3.4): counterfactual 3D MRIs from counterfactual masks.

:class:`MaskGuidedDiffusion` holds four networks (:mod:`~roisynth.imaging.networks`):

- a 3D KL autoencoder E/D: image x (scaled by 1/:data:`IMAGE_SCALE`) <-> latent
  z = s · μ_E(x) (posterior mean, scaled by ``scale_factor`` s = 1/std of training latents);
- a metadata embedding c -> cross-attention context (:class:`~roisynth.imaging.condition.ConditionEmbedding`);
- a denoising UNet ε_θ(z_t, t, c), trained with ε-prediction MSE
  E‖ε - ε_θ(√ᾱ_t z + √(1-ᾱ_t) ε, t, c)‖², c replaced by the null context with probability
  ``condition_dropout`` (classifier-free guidance);
- a ControlNet on the mask channels m, initialized from the trained UNet and trained with the
  same loss while the UNet and embedding stay frozen; its residuals are added to the UNet's
  skip connections: ε_θ(z_t, t, c, m).

Counterfactual (PCGM §3.4): z = E(x); invert DDIM under the factual (c, m) to z_T
(:meth:`~roisynth.imaging.ddim.DDIMSchedule.invert`, exact up to a reported residual); run DDIM
from z_T under the counterfactual (c', m'); decode. Under the factual inputs it returns D(E(x))
(the null intervention). That is the ``"global"`` mode; the default ``"local"`` mode keeps the
factual latent trajectory outside a band around the relabelled voxels and composites the decoded
image into the input with a smooth seam, so the null intervention returns the input itself and
nothing outside the band changes (:meth:`MaskGuidedDiffusion.counterfactual`). PCGM decodes with
an extra 3D diffusion decoder; this model decodes with the autoencoder's decoder D.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .blending import blend_weights, latent_keep
from .condition import IMAGE_SCALE, N_MASKS, condition_vector, masks_from_labels
from .config import DiffusionConfig
from .ddim import DDIMSchedule
from .networks import (
    build_autoencoder,
    build_condition_embedding,
    build_controlnet,
    build_unet,
)

FORMAT = "roisynth.imaging.MaskGuidedDiffusion/1"
STAGES = ("autoencoder", "unet", "controlnet")


class MaskGuidedDiffusion(nn.Module):
    """Latent diffusion conditioned on metadata (cross-attention) and ROI masks (ControlNet).

    Train with ``roisynth imaging train`` (:func:`roisynth.imaging.training.train`); use with
    :meth:`load`, :meth:`sample` and :meth:`counterfactual`.

    Parameters
    ----------
    config : DiffusionConfig
        Sizes of every network (e.g. ``get_config("64")``).

    Examples
    --------
    >>> from roisynth.imaging import MaskGuidedDiffusion, get_config
    >>> model = MaskGuidedDiffusion(get_config("16"))  # untrained
    >>> model.config.name, tuple(model.scale_factor.shape)
    ('16', ())
    """

    def __init__(self, config: DiffusionConfig):
        super().__init__()
        self.config = config
        self.autoencoder = build_autoencoder(config)
        self.embedding = build_condition_embedding(config)
        self.unet = build_unet(config)
        self.controlnet = build_controlnet(config)
        self.register_buffer("scale_factor", torch.tensor(1.0))
        self.schedule = DDIMSchedule(config)

    @property
    def device(self) -> torch.device:
        return self.scale_factor.device

    # -- latents -------------------------------------------------------------------------
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Scaled images (B, 1, X, Y, Z) -> latents s · μ_E(x)."""
        return self.autoencoder.encode(images)[0] * self.scale_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents -> scaled images."""
        return self.autoencoder.decode(latents / self.scale_factor)

    @torch.no_grad()
    def fit_scale_factor(self, images: torch.Tensor, batch_size: int = 8) -> float:
        """Set s = 1 / std(μ_E(x)) over ``images`` (scaled, (N, 1, X, Y, Z)) so latents have unit SD."""
        self.scale_factor.fill_(1.0)
        latents = torch.cat([self.encode(images[i:i + batch_size].to(self.device))
                             for i in range(0, len(images), batch_size)])
        self.scale_factor.fill_(1.0 / float(latents.std()))
        return float(self.scale_factor)

    # -- noise prediction and losses ----------------------------------------------------
    def predict_noise(self, latents, t, condition, masks=None, null=None) -> torch.Tensor:
        """ε_θ(z_t, t, c[, m]); ``null`` (B,) bool swaps in the null context for flagged rows."""
        context = self.embedding(condition, null)
        if masks is None:
            return self.unet(latents, t, context=context)
        down, mid = self.controlnet(latents, t, controlnet_cond=masks, context=context)
        return self.unet(latents, t, context=context, down_block_additional_residuals=down,
                         mid_block_additional_residual=mid)

    def guided_noise(self, latents, t, condition, masks=None, guidance: float = 1.0) -> torch.Tensor:
        """Classifier-free guidance ε = ε(∅) + w (ε(c) - ε(∅)); w = 1 is the conditional model."""
        if guidance == 1.0:
            return self.predict_noise(latents, t, condition, masks)
        both = lambda x: torch.cat([x, x]) if x is not None else None  # noqa: E731
        null = torch.cat([torch.zeros(len(latents), dtype=torch.bool, device=latents.device),
                          torch.ones(len(latents), dtype=torch.bool, device=latents.device)])
        eps_c, eps_0 = self.predict_noise(both(latents), both(t), both(condition), both(masks), null).chunk(2)
        return eps_0 + guidance * (eps_c - eps_0)

    def autoencoder_loss(self, images: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """L1 reconstruction + ``kl_weight`` · KL(N(μ, σ²) ‖ N(0, 1)) (summed over latent voxels,
        averaged over the batch), and the two terms (detached)."""
        mu, sigma = self.autoencoder.encode(images)
        recon = self.autoencoder.decode(self.autoencoder.sampling(mu, sigma))
        l1 = (recon - images).abs().mean()
        kl = 0.5 * (mu.pow(2) + sigma.pow(2) - torch.log(sigma.pow(2) + 1e-12) - 1).flatten(1).sum(1).mean()
        return l1 + self.config.kl_weight * kl, {"l1": l1.detach(), "kl": kl.detach()}

    def denoising_loss(self, images, condition, masks=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """E‖ε - ε_θ(z_t, t, c[, m])‖² at uniform t, with condition dropout (module docstring)."""
        with torch.no_grad():
            latents = self.encode(images)
        n = len(latents)
        device = generator.device if generator is not None else "cpu"  # draw t, ε and the dropout there
        t = torch.randint(0, self.schedule.num_train_timesteps, (n,), generator=generator, device=device)
        t = t.to(latents.device)
        noise = torch.randn(latents.shape, generator=generator, device=device).to(latents.device, latents.dtype)
        null = (torch.rand(n, generator=generator, device=device) < self.config.condition_dropout).to(latents.device)
        eps = self.predict_noise(self.schedule.add_noise(latents, noise, t), t, condition, masks, null)
        return torch.nn.functional.mse_loss(eps.float(), noise.float())

    def trainable(self, stage: str) -> list[nn.Parameter]:
        """Parameters trained in ``stage``; the UNet and embedding are frozen for the ControlNet."""
        modules = {"autoencoder": [self.autoencoder], "unet": [self.unet, self.embedding],
                   "controlnet": [self.controlnet]}
        if stage not in modules:
            raise ValueError(f"unknown stage {stage!r}; choose one of {STAGES}")
        return [p for m in modules[stage] for p in m.parameters()]

    def init_controlnet(self) -> None:
        """Copy the trained UNet's weights into the ControlNet where names match (its encoder
        and middle block); the mask embedding and zero convolutions keep their initialization."""
        self.controlnet.load_state_dict(self.unet.state_dict(), strict=False)

    # -- generation ------------------------------------------------------------------------
    def _images(self, mri) -> torch.Tensor:
        x = np.asarray(mri, dtype=np.float32)
        if x.ndim == 3:
            x = x[None]
        self._check_grid(x.shape[1:], "mri")
        if not np.all(np.isfinite(x)):
            raise ValueError("mri has non-finite voxels")
        return torch.from_numpy(x / IMAGE_SCALE)[:, None].to(self.device)

    def _masks(self, masks, name: str, n: int) -> torch.Tensor:
        """Label maps ((X,Y,Z) or (B,X,Y,Z) integers) or mask channels ((C,X,Y,Z), (B,C,X,Y,Z))."""
        m = np.asarray(masks)
        if np.issubdtype(m.dtype, np.integer) and m.ndim in (3, 4):
            m = masks_from_labels(m)
        m = np.asarray(m, dtype=np.float32)
        if m.ndim == 4:
            m = m[None]
        if m.ndim != 5 or m.shape[1] != N_MASKS:
            raise ValueError(f"{name}: expected an integer label map (X,Y,Z) or {N_MASKS} mask channels "
                             f"(C,X,Y,Z), got shape {np.shape(masks)} of {np.asarray(masks).dtype}")
        self._check_grid(m.shape[2:], name)
        if len(m) == 1 and n > 1:
            m = np.repeat(m, n, axis=0)
        if len(m) != n:
            raise ValueError(f"{name} holds {len(m)} subjects, the metadata {n}")
        return torch.from_numpy(m).to(self.device)

    def _conditions(self, metadata, n: int | None = None) -> torch.Tensor:
        c = condition_vector(metadata)
        if n is not None and len(c) == 1 and n > 1:
            c = np.repeat(c, n, axis=0)
        if n is not None and len(c) != n:
            raise ValueError(f"metadata has {len(c)} rows for {n} images")
        return torch.from_numpy(c).to(self.device)

    def _check_grid(self, shape, name: str) -> None:
        if tuple(shape) != (self.config.shape,) * 3:
            raise ValueError(f"{name} has grid {tuple(shape)}; this model works on {(self.config.shape,) * 3}")

    def _noise_fn(self, condition, masks, guidance):
        return lambda x, t: self.guided_noise(x, t, condition, masks, guidance)

    def _out(self, images: torch.Tensor, single: bool) -> np.ndarray:
        out = (images[:, 0].float() * IMAGE_SCALE).cpu().numpy()
        return out[0] if single else out

    @torch.no_grad()
    def sample(self, metadata, masks, *, steps: int | None = None, guidance: float | None = None,
               random_state: int | None = 0) -> np.ndarray:
        """New images for subjects with ``metadata`` (mapping or DataFrame: age, sex, diagnosis)
        and ``masks`` (label maps or mask channels, one or one per subject): (B, X, Y, Z) in
        phantom units. ``steps`` DDIM steps (default ``config.ddim_steps``), ``guidance`` the
        classifier-free guidance weight (default ``config.guidance_scale``)."""
        condition = self._conditions(metadata)
        m = self._masks(masks, "masks", len(condition))
        generator = torch.Generator().manual_seed(0 if random_state is None else int(random_state))
        x_T = torch.randn((len(condition), *self.config.latent_shape), generator=generator).to(self.device)
        guidance = self.config.guidance_scale if guidance is None else guidance
        z = self.schedule.sample(self._noise_fn(condition, m, guidance), x_T, steps or self.config.ddim_steps)
        return self._out(self.decode(z), single=False)

    @torch.no_grad()
    def invert(self, mri, masks, metadata, *, steps: int | None = None, iterations: int = 5
               ) -> tuple[torch.Tensor, float]:
        """DDIM-invert ``mri`` under its factual (metadata, masks): (z_T, worst step residual)."""
        return self._invert(mri, masks, metadata, steps or self.config.ddim_steps, iterations)

    def _invert(self, mri, masks, metadata, steps, iterations, trajectory=None):
        x = self._images(mri)
        condition, m = self._conditions(metadata, len(x)), self._masks(masks, "masks", len(x))
        return self.schedule.invert(self._noise_fn(condition, m, 1.0), self.encode(x), steps, iterations,
                                    trajectory=trajectory)

    @torch.no_grad()
    def counterfactual(self, mri, masks_factual, masks_cf, metadata, metadata_cf, *, steps: int | None = None,
                       iterations: int = 5, mode: str = "local", radius: float = 1.0, seam: float = 2.0
                       ) -> np.ndarray:
        """The image ``mri`` would be with counterfactual masks and metadata (module docstring).

        ``mri``: (X, Y, Z) or (B, X, Y, Z) in phantom units; masks: label maps or mask channels
        (e.g. :func:`~roisynth.imaging.bridge.counterfactual_masks`' ``labels``); metadata:
        mapping or DataFrame with age, sex, diagnosis. Returns the same shape as ``mri``.
        No guidance (w = 1).

        ``mode="local"`` (the default; label maps needed): local by construction. With w the
        seam weights of the voxels whose label changed (:func:`~roisynth.imaging.blending.blend_weights`,
        full weight within ``radius`` voxels, a cos² seam ``seam`` voxels wide), the latent
        trajectory is the factual one outside the latent band
        (:func:`~roisynth.imaging.blending.latent_keep`; blended :meth:`DDIMSchedule.sample`), and
        the output is w · D(z) + (1 - w) · mri: the input itself wherever w = 0, and exactly the
        input for the null intervention (no label changed; the metadata alone cannot act).
        ``mode="global"``: D(z) everywhere (the factual inputs give back D(E(mri)), not mri).
        """
        if mode not in ("local", "global"):
            raise ValueError(f"mode must be 'local' or 'global', got {mode!r}")
        single = np.ndim(mri) == 3
        steps = steps or self.config.ddim_steps
        self._images(mri)  # the grid and values are checked before anything else
        weights = None
        if mode == "local":
            before, after = np.asarray(masks_factual), np.asarray(masks_cf)
            if not (np.issubdtype(before.dtype, np.integer) and np.issubdtype(after.dtype, np.integer)):
                raise ValueError("mode='local' needs the factual and counterfactual label maps (integer arrays), "
                                 "not mask channels")
            pairs = zip(before.reshape(-1, *before.shape[-3:]), np.broadcast_to(after, before.shape).reshape(
                -1, *before.shape[-3:]))
            weights = np.stack([blend_weights(b, a, radius=radius, seam=seam) for b, a in pairs]).reshape(before.shape)
            if not weights.any():
                return np.array(mri, dtype=np.float32)
        trajectory = [] if mode == "local" else None
        x_T, _ = self._invert(mri, masks_factual, metadata, steps, iterations, trajectory)
        condition = self._conditions(metadata_cf, len(x_T))
        m = self._masks(masks_cf, "masks_cf", len(x_T))
        keep = None if weights is None else latent_keep(weights, self.config.ae_factor).to(self.device)
        z = self.schedule.sample(self._noise_fn(condition, m, 1.0), x_T, steps, keep=keep, trajectory=trajectory)
        out = self._out(self.decode(z), single)
        if weights is None:
            return out
        return (weights * out + (1 - weights) * np.asarray(mri, dtype=np.float32)).astype(np.float32)

    # -- persistence ---------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write weights and config (torch file, loadable with ``weights_only=True``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in self.state_dict().items()}
        torch.save({"format": FORMAT, "config": json.dumps(self.config.to_dict()), "state_dict": state}, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, map_location="cpu") -> MaskGuidedDiffusion:
        """Read a model written by :meth:`save` (or the ``model.pt`` of a training folder)."""
        path = Path(path)
        if path.is_dir():
            path = path / "model.pt"
        if not path.is_file():
            raise FileNotFoundError(f"no model file at {path}")
        data = torch.load(path, map_location=map_location, weights_only=True)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"{path} is not a MaskGuidedDiffusion file")
        model = cls(DiffusionConfig.from_dict(json.loads(data["config"])))
        model.load_state_dict(data["state_dict"])
        return model.eval()
