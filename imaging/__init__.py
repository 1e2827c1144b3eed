"""roisynth.imaging: from ROI counterfactuals to 3D images.

- :mod:`~roisynth.imaging.phantoms`: phantom subjects (T1-like image, label map, posteriors)
  from procedural anatomy or a real label map, seeded;
- :mod:`~roisynth.imaging.masks`: the Counterfactual Mask Generator (PCGM §3.2), growing or
  shrinking ROIs to exact volumes at their boundary with CSF only;
- :mod:`~roisynth.imaging.labels`: FreeSurfer/SynthSeg label codes and the MUSE ROIs they express;
- :mod:`~roisynth.imaging.nifti`: NIfTI in and out, affines preserved;
- :mod:`~roisynth.imaging.bridge`: a row of ROI volumes (e.g. a counterfactual of
  :class:`~roisynth.ContrastiveVAE` or :class:`~roisynth.CausalROIModel`) → counterfactual masks;
- :mod:`~roisynth.imaging.diffusion`: :class:`MaskGuidedDiffusion`, the mask-guided latent
  diffusion model (PCGM §3.3–3.4) that turns counterfactual masks and metadata into a
  counterfactual MRI; :mod:`~roisynth.imaging.ddim` its DDIM sampling and exact inversion,
  :mod:`~roisynth.imaging.networks` / :mod:`~roisynth.imaging.config` its MONAI networks and presets,
  :mod:`~roisynth.imaging.condition` its metadata and mask inputs;
- :mod:`~roisynth.imaging.cohort`: phantom cohorts with age, sex and diagnosis driving ROI
  volumes (the training data); :mod:`~roisynth.imaging.training`: ``train`` (DDP, bf16,
  checkpoints, resume) and ``evaluate``; :mod:`~roisynth.imaging.segmenter` and
  :mod:`~roisynth.imaging.verification`: the checks of counterfactual images (re-segmented
  volumes, locality, null intervention, SSIM, FID on segmenter features);
- :mod:`~roisynth.imaging.cli`: ``roisynth imaging phantom | masks | train | sample |
  counterfactual | evaluate``.

The diffusion pipeline needs MONAI (``pip install 'roisynth[imaging]'``); its names are
imported on first use, so the phantom and mask tools work without it.

Installed as ``roisynth.imaging`` from the top-level ``imaging/`` folder of the repository.
"""

from .bridge import CounterfactualMasks, counterfactual_masks
from .labels import label_for, label_name, roi_codes
from .masks import MaskEdit, edit_masks
from .nifti import load_nifti, save_nifti, voxel_volume
from .phantoms import Phantom, make_phantom
from .phantoms import load as load_phantom
from .phantoms import save as save_phantom

_LAZY = {"MaskGuidedDiffusion": ".diffusion", "DiffusionConfig": ".config", "get_config": ".config",
         "PhantomCohort": ".cohort", "make_cohort": ".cohort", "Segmenter": ".segmenter"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DiffusionConfig",
    "MaskGuidedDiffusion",
    "PhantomCohort",
    "Segmenter",
    "CounterfactualMasks",
    "MaskEdit",
    "Phantom",
    "counterfactual_masks",
    "edit_masks",
    "get_config",
    "label_for",
    "label_name",
    "load_nifti",
    "load_phantom",
    "make_cohort",
    "make_phantom",
    "roi_codes",
    "save_nifti",
    "save_phantom",
    "voxel_volume",
]
