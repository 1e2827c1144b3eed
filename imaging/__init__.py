"""roisynth.imaging: from ROI counterfactuals to 3D images.

- :mod:`~roisynth.imaging.phantoms`: phantom subjects (T1-like image, label map, posteriors)
  from procedural anatomy or a real label map, seeded;
- :mod:`~roisynth.imaging.masks`: the Counterfactual Mask Generator (PCGM §3.2), growing or
  shrinking ROIs to exact volumes at their boundary with CSF only;
- :mod:`~roisynth.imaging.labels`: FreeSurfer/SynthSeg label codes and the MUSE ROIs they express;
- :mod:`~roisynth.imaging.nifti`: NIfTI in and out, affines preserved.

Installed as ``roisynth.imaging`` from the top-level ``imaging/`` folder of the repository.
"""

from .labels import label_for, label_name, roi_codes
from .masks import MaskEdit, edit_masks
from .nifti import load_nifti, save_nifti, voxel_volume
from .phantoms import Phantom, make_phantom
from .phantoms import load as load_phantom
from .phantoms import save as save_phantom

__all__ = [
    "MaskEdit",
    "Phantom",
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
