"""roisynth.imaging: from ROI counterfactuals to 3D images.

- :mod:`~roisynth.imaging.phantoms`: phantom subjects (T1-like image, label map, posteriors)
  from procedural anatomy or a real label map, seeded;
- :mod:`~roisynth.imaging.masks`: the Counterfactual Mask Generator (PCGM §3.2), growing or
  shrinking ROIs to exact volumes at their boundary with CSF only;
- :mod:`~roisynth.imaging.labels`: FreeSurfer/SynthSeg label codes and the MUSE ROIs they express;
- :mod:`~roisynth.imaging.nifti`: NIfTI in and out, affines preserved;
- :mod:`~roisynth.imaging.bridge`: a row of ROI volumes (e.g. a counterfactual of
  :class:`~roisynth.ContrastiveVAE` or :class:`~roisynth.CausalROIModel`) → counterfactual masks;
- :mod:`~roisynth.imaging.cli`: ``roisynth imaging phantom | masks``.

Installed as ``roisynth.imaging`` from the top-level ``imaging/`` folder of the repository.
"""

from .bridge import CounterfactualMasks, counterfactual_masks
from .labels import label_for, label_name, roi_codes
from .masks import MaskEdit, edit_masks
from .nifti import load_nifti, save_nifti, voxel_volume
from .phantoms import Phantom, make_phantom
from .phantoms import load as load_phantom
from .phantoms import save as save_phantom

__all__ = [
    "CounterfactualMasks",
    "MaskEdit",
    "Phantom",
    "counterfactual_masks",
    "edit_masks",
    "label_for",
    "label_name",
    "load_nifti",
    "load_phantom",
    "make_phantom",
    "roi_codes",
    "save_nifti",
    "save_phantom",
    "voxel_volume",
]
