"""roisynth.imaging: from ROI counterfactuals to 3D images.

- :mod:`~roisynth.imaging.phantoms`: phantom subjects (T1-like image, label map, posteriors)
  from procedural anatomy or a real label map, seeded;
- :mod:`~roisynth.imaging.masks`: the Counterfactual Mask Generator (PCGM §3.2), growing or
  shrinking ROIs to exact volumes at their boundary with CSF only;
- :mod:`~roisynth.imaging.deformation`: :func:`deform`, the training-free counterfactual: a
  diffeomorphic warp of the subject's own image whose Jacobian gives each edited ROI its target
  volume, CSF taking up the difference (any resolution, CPU);
- :mod:`~roisynth.imaging.subject`: a real T1 and its label map (:func:`load_subject`, any
  orientation, the map aligned by affine) and its counterfactuals in its own space;
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

The diffusion pipeline needs MONAI (``pip install 'roisynth[imaging]'``). Every public name is
imported on first use, so the phantom and mask tools work without MONAI and ``import
roisynth.imaging`` loads no array library.

Installed as ``roisynth.imaging`` from the top-level ``imaging/`` folder of the repository.
"""

# public name -> (module, name in it); imported on first use (PEP 562), so that `import roisynth.imaging`
# and `roisynth --help` (whose parser includes `roisynth imaging`) load neither nibabel nor MONAI
_LAZY = {
    "CounterfactualMasks": (".bridge", "CounterfactualMasks"),
    "counterfactual_masks": (".bridge", "counterfactual_masks"),
    "label_for": (".labels", "label_for"),
    "label_name": (".labels", "label_name"),
    "roi_codes": (".labels", "roi_codes"),
    "Deformation": (".deformation", "Deformation"),
    "deform": (".deformation", "deform"),
    "MaskEdit": (".masks", "MaskEdit"),
    "edit_masks": (".masks", "edit_masks"),
    "load_nifti": (".nifti", "load_nifti"),
    "save_nifti": (".nifti", "save_nifti"),
    "voxel_volume": (".nifti", "voxel_volume"),
    "Phantom": (".phantoms", "Phantom"),
    "make_phantom": (".phantoms", "make_phantom"),
    "load_phantom": (".phantoms", "load"),
    "save_phantom": (".phantoms", "save"),
    "Subject": (".subject", "Subject"),
    "load_subject": (".subject", "load_subject"),
    "MaskGuidedDiffusion": (".diffusion", "MaskGuidedDiffusion"),
    "DiffusionConfig": (".config", "DiffusionConfig"),
    "get_config": (".config", "get_config"),
    "PhantomCohort": (".cohort", "PhantomCohort"),
    "make_cohort": (".cohort", "make_cohort"),
    "Segmenter": (".segmenter", "Segmenter"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module, __name__), attribute)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_LAZY})


__all__ = [
    "DiffusionConfig",
    "MaskGuidedDiffusion",
    "PhantomCohort",
    "Segmenter",
    "Subject",
    "CounterfactualMasks",
    "Deformation",
    "MaskEdit",
    "Phantom",
    "counterfactual_masks",
    "deform",
    "edit_masks",
    "get_config",
    "label_for",
    "label_name",
    "load_nifti",
    "load_phantom",
    "load_subject",
    "make_cohort",
    "make_phantom",
    "roi_codes",
    "save_nifti",
    "save_phantom",
    "voxel_volume",
]
