"""roisynth.imaging: from ROI counterfactuals to 3D images (phantom subjects, counterfactual
masks; the mask-guided diffusion model comes with the GPU backend).

Installed as ``roisynth.imaging`` from the top-level ``imaging/`` folder of the repository.
"""
